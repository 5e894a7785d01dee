#!/usr/bin/env python3
"""Turns a HAR exported by `tapwire export --har` into the peers' own stub
formats, so that every mock server in bench/mock.sh answers from the same
recorded exchanges:

  wiremock ROOT    ROOT/mappings/recorded.json: one stub per exchange,
                   matched on method + exact URL (path and query)
  mountebank FILE  an imposters file for `mb --configfile FILE --noParse`:
                   one stub per exchange, `equals` on method, path and query
  bodies FILE      "path<TAB>sha256 of the recorded body" per exchange, for
                   the correctness gate

mitmproxy needs nothing: `mitmdump --server-replay` reads the HAR itself.
Response headers are kept except those that describe one connection or one
transfer (each server sets its own).

Usage: mock_peers.py HAR wiremock ROOT | mountebank FILE PORT | bodies FILE
"""

import hashlib
import json
import os
import sys
from urllib.parse import parse_qsl, urlsplit

DROP = {"connection", "keep-alive", "transfer-encoding", "content-length", "date"}


def exchanges(har):
    for e in json.load(open(har))["log"]["entries"]:
        rq, rs = e["request"], e["response"]
        u = urlsplit(rq["url"])
        text = rs["content"].get("text", "")
        if rs["content"].get("encoding") == "base64":
            sys.exit("mock_peers.py: binary bodies are not supported here")
        headers = {h["name"]: h["value"] for h in rs["headers"] if h["name"].lower() not in DROP}
        yield rq["method"], u.path, u.query, rs["status"], headers, text


def wiremock(har, root):
    os.makedirs(os.path.join(root, "mappings"), exist_ok=True)
    stubs = []
    for method, path, query, status, headers, body in exchanges(har):
        stubs.append({
            "request": {"method": method, "url": path + ("?" + query if query else "")},
            "response": {"status": status, "headers": headers, "body": body},
        })
    with open(os.path.join(root, "mappings", "recorded.json"), "w") as f:
        json.dump({"mappings": stubs}, f)


def mountebank(har, out, port):
    stubs = []
    for method, path, query, status, headers, body in exchanges(har):
        pred = {"method": method, "path": path}
        if query:
            pred["query"] = dict(parse_qsl(query))
        # mountebank closes the connection after every response unless told
        # otherwise; the other servers keep it, so keep it here too.
        headers = dict(headers, Connection="keep-alive")
        stubs.append({
            "predicates": [{"equals": pred}],
            "responses": [{"is": {"statusCode": status, "headers": headers, "body": body}}],
        })
    imposter = {
        "protocol": "http",
        "port": int(port),
        "host": "127.0.0.1",
        "recordRequests": False,
        # A miss must not look like a hit: mountebank's default is 200 with
        # an empty body.
        "defaultResponse": {"statusCode": 404, "headers": {"Connection": "keep-alive"},
                            "body": "no stub matched"},
        "stubs": stubs,
    }
    with open(out, "w") as f:
        json.dump({"imposters": [imposter]}, f)


def bodies(har, out):
    with open(out, "w") as f:
        for _, path, query, _, _, body in exchanges(har):
            p = path + ("?" + query if query else "")
            f.write(f"{p}\t{hashlib.sha256(body.encode()).hexdigest()}\n")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    har, kind = sys.argv[1], sys.argv[2]
    if kind == "wiremock":
        wiremock(har, sys.argv[3])
    elif kind == "mountebank" and len(sys.argv) == 5:
        mountebank(har, sys.argv[3], sys.argv[4])
    elif kind == "bodies":
        bodies(har, sys.argv[3])
    else:
        sys.exit(__doc__)
