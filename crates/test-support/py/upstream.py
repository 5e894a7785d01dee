#!/usr/bin/env python3
"""HTTP/1.1 upstream for tapwire's tests, plain or TLS.

Every response is a pure function of the request line and body, so a
response fetched directly and one fetched through the proxy can be compared
byte for byte (only Date differs). Prints "READY <port>" once listening.

Routes (any method):
  /bytes?n=N[&chunked=1]   N bytes of the shared pattern (see data.rs)
  /upload[?chunked=1]      JSON {"size", "sha256"} of the request body
  /headers                 JSON list of the request's header fields
  /ws                      WebSocket echo (handshake and frames by hand)
  /many-headers?n=N        a small body with N extra response header fields
  /close-delimited?n=N     N pattern bytes, no length: the body ends at close
  /slow?ms=M               answers after M milliseconds
  /early                   413 before reading the body, then reads what comes
  anything else            JSON {"method", "path", "query", "body", ...}
Query `status=NNN` sets the status of the JSON routes.
"""

import argparse
import base64
import hashlib
import json
import ssl
import struct
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
BLOCK = bytes((i * 7 + 3) % 251 for i in range(251))


def pattern(n):
    return (BLOCK * (n // len(BLOCK) + 1))[:n]


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def version_string(self):
        return "tapwire-test-upstream/1"

    def log_message(self, *args):
        pass

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def reply(self, status, data, ctype, chunked=False, extra=()):
        self.send_response(status)
        for name, value in extra:
            self.send_header(name, value)
        self.send_header("Content-Type", ctype)
        self.send_header("X-Body-Sha256", sha256(data))
        self.send_header("X-Multi", "one")
        self.send_header("X-Multi", "two")
        self.send_header("Set-Cookie", "a=1; Path=/")
        self.send_header("Set-Cookie", "b=2; Path=/")
        self.send_header("Cache-Control", "no-store")
        if self.command == "HEAD" or status in (204, 304):
            if status not in (204, 304):
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
        elif chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            step = 7919
            for i in range(0, len(data), step):
                piece = data[i:i + step]
                self.wfile.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        self.wfile.flush()

    def dispatch(self):
        url = urlsplit(self.path)
        q = parse_qs(url.query)
        chunked = q.get("chunked", ["0"])[0] == "1"
        if url.path == "/ws":
            return self.websocket()
        if url.path == "/early":
            self.close_connection = True
            self.reply(413, b"too large\n", "text/plain", extra=[("Connection", "close")])
            try:
                self.read_body()
            except (OSError, ValueError):
                pass
            return None
        body = self.read_body()
        if url.path == "/bytes":
            return self.reply(200, pattern(int(q["n"][0])), "application/octet-stream", chunked)
        if url.path == "/many-headers":
            extra = [("X-Extra-%03d" % i, "v%d" % i) for i in range(int(q["n"][0]))]
            return self.reply(200, b"many headers\n", "text/plain", chunked, extra)
        if url.path == "/close-delimited":
            data = pattern(int(q["n"][0]))
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("X-Body-Sha256", sha256(data))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
            self.close_connection = True
            return None
        if url.path == "/slow":
            time.sleep(int(q["ms"][0]) / 1000.0)
            return self.reply(200, b"slow but done\n", "text/plain", chunked)
        if url.path == "/upload":
            info = {"size": len(body), "sha256": sha256(body)}
            return self.reply(200, json.dumps(info).encode(), "application/json", chunked)
        if url.path == "/headers":
            fields = [[k, v] for k, v in self.headers.items()]
            return self.reply(200, json.dumps(fields).encode(), "application/json", chunked)
        info = {
            "method": self.command,
            "path": url.path,
            "query": url.query,
            "body_size": len(body),
            "body_sha256": sha256(body),
            "body": body.decode("utf-8", "replace"),
        }
        status = int(q.get("status", ["200"])[0])
        return self.reply(status, json.dumps(info, sort_keys=True).encode(), "application/json", chunked)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = dispatch

    def websocket(self):
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        while True:
            frame = self.read_frame()
            if frame is None:
                return
            opcode, payload = frame
            if opcode == 8:
                self.send_frame(8, payload[:2])
                return
            if opcode in (1, 2):
                self.send_frame(opcode, payload)

    def read_frame(self):
        head = self.rfile.read(2)
        if len(head) < 2:
            return None
        opcode, masked, n = head[0] & 0x0F, head[1] & 0x80, head[1] & 0x7F
        if not masked:  # RFC 6455 5.1: a server must close on unmasked client frames
            return None
        if n == 126:
            n = struct.unpack(">H", self.rfile.read(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self.rfile.read(8))[0]
        mask = self.rfile.read(4)
        data = self.rfile.read(n)
        if len(data) < n:
            return None
        return opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(data))

    def send_frame(self, opcode, payload):
        n = len(payload)
        if n < 126:
            head = struct.pack(">BB", 0x80 | opcode, n)
        elif n < 65536:
            head = struct.pack(">BBH", 0x80 | opcode, 126, n)
        else:
            head = struct.pack(">BBQ", 0x80 | opcode, 127, n)
        self.wfile.write(head + payload)
        self.wfile.flush()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512
    tls = None

    def finish_request(self, request, client_address):
        # The TLS handshake runs on the connection's own thread, so a stalled
        # client cannot block accept().
        if self.tls is None:
            return super().finish_request(request, client_address)
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return None
        try:
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    args = ap.parse_args()
    srv = Server(("127.0.0.1", args.port), Handler)
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        ctx.set_alpn_protocols(["http/1.1"])
        srv.tls = ctx
    print("READY %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
