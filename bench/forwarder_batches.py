#!/usr/bin/env python3
"""Writes ingest batches for bench/forwarder.sh: JSON Lines of exchanges
(schema v1, docs/specs/exchange.md) shaped like a JSON API's traffic.

Two variants of the same shape and about the same size:

  pii    customers, orders and payments carrying names, emails, phone
         numbers (E.164 and North American), Luhn-valid card numbers, IBANs,
         client IPs and bearer tokens in the Authorization header
  clean  the same endpoints with catalogue, stock and metrics payloads:
         ids, SKUs, prices, counters, timestamps; nothing the default DLP
         policy redacts (the forwarder's answer proves it: 0 redactions)

Usage: forwarder_batches.py OUT_DIR [--exchanges N] [--seed S]
Writes OUT_DIR/{pii,clean}.jsonl (uncompressed; the caller compresses with
`zstd -3`, the level tapwire's own segments use).
"""

import argparse
import json
import os
import random
import uuid

SERVICE = {"name": "orders", "namespace": "shop", "pod": "orders-7c9f6d-x2k4p", "node": "node-a", "cluster": "prod-eu"}
# Every exchange starts inside one hour, so a batch is one partition (one object).
BASE_MS = 1_763_647_200_000  # 2025-11-20T14:00:00Z

FIRST = ["Alice", "Bruno", "Chen", "Dana", "Emeka", "Fatima", "Gustav", "Hana", "Ivan", "Jamal", "Keiko", "Lena",
         "Marco", "Nadia", "Omar", "Priya", "Quentin", "Rosa", "Sven", "Tariq", "Uma", "Victor", "Wen", "Yara"]
LAST = ["Andersson", "Okafor", "Schmidt", "Tanaka", "Rossi", "Haddad", "Novak", "Garcia", "Kowalski", "Nguyen",
        "Müller", "Dubois", "Silva", "Ivanova", "Cohen", "Patel", "O'Brien", "Lindqvist", "Moreau", "Yilmaz"]
STREETS = ["Baker Street", "Rue de Rivoli", "Hauptstraße", "Via Roma", "Calle Mayor", "Kungsgatan", "Elm Avenue"]
CITIES = [("London", "GB"), ("Paris", "FR"), ("Berlin", "DE"), ("Milan", "IT"), ("Madrid", "ES"), ("Stockholm", "SE")]
MAIL = ["example.com", "mail.example.org", "corp.example.net", "inbox.example.co.uk"]
PRODUCTS = ["espresso machine", "burr grinder", "milk jug", "tamper", "descaler", "filter papers", "kettle",
            "scale", "cold brew jar", "travel mug", "knock box", "cleaning tablets"]
WORDS = ["ready", "pending", "shipped", "backordered", "packed", "returned", "in transit", "delivered"]


def uuid7(ms, rnd):
    b = bytearray(ms.to_bytes(6, "big") + rnd.randbytes(10))
    b[6] = 0x70 | (b[6] & 0x0F)
    b[8] = 0x80 | (b[8] & 0x3F)
    return str(uuid.UUID(bytes=bytes(b)))


def luhn_card(rnd):
    prefix = rnd.choice(["4", "51", "52", "53", "54", "55", "37", "6011"])
    length = 15 if prefix == "37" else 16
    digits = [int(c) for c in prefix] + [rnd.randrange(10) for _ in range(length - len(prefix) - 1)]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return "".join(map(str, digits)) + str((10 - total % 10) % 10)


def iban_de(rnd):
    bban = "".join(str(rnd.randrange(10)) for _ in range(18))
    # mod-97 check digits over BBAN + "DE00" with letters as numbers (D=13, E=14).
    check = 98 - int(bban + "131400") % 97
    return f"DE{check:02d}{bban}"


def phone(rnd):
    if rnd.random() < 0.5:
        return f"+44 20 {rnd.randrange(7000, 8000)} {rnd.randrange(1000, 10000)}"
    return f"({rnd.randrange(201, 990)}) {rnd.randrange(200, 1000)}-{rnd.randrange(1000, 10000)}"


def ascii_name(n):
    return n.lower().replace("ü", "ue").replace("'", "")


def person(rnd):
    first, last = rnd.choice(FIRST), rnd.choice(LAST)
    city, country = rnd.choice(CITIES)
    return {
        "id": f"cus_{rnd.randrange(10**9):09d}",
        "name": f"{first} {last}",
        "email": f"{ascii_name(first)}.{ascii_name(last)}{rnd.randrange(100)}@{rnd.choice(MAIL)}",
        "phone": phone(rnd),
        "address": {"line1": f"{rnd.randrange(1, 200)} {rnd.choice(STREETS)}", "city": city,
                    "postcode": f"{rnd.randrange(10000, 99999)}", "country": country},
        "date_of_birth": f"19{rnd.randrange(50, 99)}-{rnd.randrange(1, 13):02d}-{rnd.randrange(1, 29):02d}",
        "last_login_ip": f"203.0.113.{rnd.randrange(1, 255)}",
        "marketing_opt_in": rnd.random() < 0.3,
    }


def line_items(rnd, n):
    return [{"sku": f"SKU-{rnd.randrange(10**6):06d}", "name": rnd.choice(PRODUCTS), "quantity": rnd.randrange(1, 5),
             "unit_price": {"amount": rnd.randrange(299, 49999), "currency": "EUR"},
             "status": rnd.choice(WORDS), "warehouse": f"WH-{rnd.randrange(1, 9)}"} for _ in range(n)]


def pii_payloads(rnd):
    """(method, path, query, request body or None, response status, response body)."""
    kind = rnd.randrange(4)
    cust = person(rnd)
    if kind == 0:
        orders = [{"id": f"ord_{rnd.randrange(10**9)}", "placed_at": "2025-11-19T10:11:12Z",
                   "items": line_items(rnd, rnd.randrange(3, 8)), "ship_to": person(rnd)["address"]}
                  for _ in range(rnd.randrange(2, 6))]
        return "GET", f"/api/v1/customers/{cust['id']}", "expand=orders", None, 200, {"customer": cust, "orders": orders}
    if kind == 1:
        body = {"customer": cust, "items": line_items(rnd, rnd.randrange(6, 16)),
                "payment": {"method": "card", "card_number": luhn_card(rnd), "expiry": f"{rnd.randrange(1, 13):02d}/2{rnd.randrange(6, 10)}",
                            "cardholder": cust["name"]},
                "notes": f"Call {cust['phone']} before delivery, or email {cust['email']}."}
        resp = {"id": f"ord_{rnd.randrange(10**9)}", "status": "accepted", "customer_email": cust["email"],
                "total": {"amount": rnd.randrange(1000, 90000), "currency": "EUR"}, "items": body["items"]}
        return "POST", "/api/v1/orders", None, body, 201, resp
    if kind == 2:
        body = {"name": cust["name"], "email": cust["email"], "phone": cust["phone"], "address": cust["address"],
                "iban": iban_de(rnd), "preferences": {"newsletter": False, "language": "en", "sms": True}}
        resp = dict(body, id=cust["id"], updated_at="2025-11-20T14:00:00Z",
                    history=[{"at": f"2025-10-{d:02d}T09:00:00Z", "field": "address", "by": cust["email"]}
                             for d in range(1, rnd.randrange(20, 31))])
        return "PUT", f"/api/v1/customers/{cust['id']}/profile", None, body, 200, resp
    page = [person(rnd) for _ in range(rnd.randrange(8, 16))]
    return "GET", "/api/v1/customers", f"page={rnd.randrange(1, 50)}&per_page={len(page)}", None, 200, {"data": page, "has_more": True}


def clean_payloads(rnd):
    kind = rnd.randrange(4)
    if kind == 0:
        sku = f"SKU-{rnd.randrange(10**6):06d}"
        stock = [{"warehouse": f"WH-{w}", "on_hand": rnd.randrange(500), "reserved": rnd.randrange(50),
                  "reorder_level": 20, "updated_at": "2025-11-20T13:59:00Z"} for w in range(1, 9)]
        return "GET", f"/api/v1/products/{sku}", "expand=stock", None, 200, {
            "sku": sku, "name": rnd.choice(PRODUCTS), "description": " ".join(rnd.choice(PRODUCTS) for _ in range(60)),
            "price": {"amount": rnd.randrange(299, 49999), "currency": "EUR"}, "stock": stock,
            "related": line_items(rnd, rnd.randrange(6, 14))}
    if kind == 1:
        body = {"cart_id": f"cart_{rnd.randrange(10**9)}", "items": line_items(rnd, rnd.randrange(6, 16)),
                "shipping": {"method": rnd.choice(["standard", "express"]), "zone": rnd.randrange(1, 9)},
                "coupon": f"WINTER{rnd.randrange(10, 40)}"}
        resp = {"id": f"quo_{rnd.randrange(10**9)}", "status": "priced", "items": body["items"],
                "total": {"amount": rnd.randrange(1000, 90000), "currency": "EUR"}}
        return "POST", "/api/v1/quotes", None, body, 201, resp
    if kind == 2:
        body = {"sku": f"SKU-{rnd.randrange(10**6):06d}", "adjustments": [
            {"warehouse": f"WH-{rnd.randrange(1, 9)}", "delta": rnd.randrange(-20, 40), "reason": rnd.choice(WORDS)}
            for _ in range(rnd.randrange(15, 40))]}
        resp = dict(body, applied=True, version=rnd.randrange(10**6),
                    levels=[{"warehouse": f"WH-{w}", "on_hand": rnd.randrange(500)} for w in range(1, 9)])
        return "PUT", f"/api/v1/stock/{body['sku']}", None, body, 200, resp
    page = [{"sku": f"SKU-{rnd.randrange(10**6):06d}", "name": rnd.choice(PRODUCTS), "rating": round(rnd.uniform(1, 5), 1),
             "reviews": rnd.randrange(2000), "price": {"amount": rnd.randrange(299, 49999), "currency": "EUR"},
             "tags": rnd.sample(WORDS, 3)} for _ in range(rnd.randrange(18, 36))]
    return "GET", "/api/v1/products", f"page={rnd.randrange(1, 50)}&per_page={len(page)}", None, 200, {"data": page, "has_more": True}


def exchange(i, rnd, pii):
    ms = BASE_MS + i * 3  # ~330 exchanges/s of traffic, all within one hour
    method, path, query, req_body, status, resp_body = (pii_payloads if pii else clean_payloads)(rnd)
    outbound = rnd.random() < 0.3
    host, port = ("payments.internal", 443) if outbound else ("orders.shop.svc", 8080)
    rid = uuid7(ms, rnd)
    req_headers = [["host", host], ["user-agent", "orders-client/2.4.1 (okhttp)"], ["accept", "application/json"],
                   ["x-request-id", rid], ["traceparent", f"00-{rnd.randbytes(16).hex()}-{rnd.randbytes(8).hex()}-01"]]
    if pii:
        req_headers.append(["authorization", "Bearer " + rnd.randbytes(24).hex()])
    req = {"method": method, "scheme": "https" if outbound else "http", "authority": host, "path": path,
           "version": "HTTP/1.1", "headers": req_headers}
    if query is not None:
        req["query"] = query
    if req_body is not None:
        text = json.dumps(req_body, ensure_ascii=False, separators=(",", ":"))
        req["headers"] += [["content-type", "application/json"], ["content-length", str(len(text.encode()))]]
        req["body"] = {"text": text, "size": len(text.encode())}
    text = json.dumps(resp_body, ensure_ascii=False, separators=(",", ":"))
    resp = {"status": status, "version": "HTTP/1.1", "headers": [
        ["content-type", "application/json"], ["content-length", str(len(text.encode()))],
        ["date", "Thu, 20 Nov 2025 14:00:00 GMT"], ["server", "envoy"], ["x-request-id", rid],
        ["cache-control", "no-store"]], "body": {"text": text, "size": len(text.encode())}}
    secs, frac = divmod(ms, 1000)
    mins, s = divmod(secs % 3600, 60)
    return {
        "v": 1, "id": uuid7(ms, rnd),
        "start": f"2025-11-20T14:{mins:02d}:{s:02d}.{frac:03d}{rnd.randrange(1000):03d}Z",
        "duration_us": rnd.randrange(800, 60000), "direction": "outbound" if outbound else "inbound",
        "service": SERVICE, "protocol": "http/1.1", "client_addr": f"10.42.1.{rnd.randrange(2, 250)}:{rnd.randrange(30000, 60000)}",
        "server_addr": "10.96.4.20:8080", "upstream": {"host": host, "port": port},
        "request": req, "response": resp, "tags": {"proxy_mode": "outbound" if outbound else "reverse"},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--exchanges", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for name, pii in (("pii", True), ("clean", False)):
        rnd = random.Random(f"{a.seed}-{name}")
        with open(os.path.join(a.out, f"{name}.jsonl"), "w", encoding="utf-8") as f:
            for i in range(a.exchanges):
                f.write(json.dumps(exchange(i, rnd, pii), ensure_ascii=False, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
