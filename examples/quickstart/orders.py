"""A small service ("orders") that calls its payments dependency over HTTPS.

It uses only the standard library: urllib honours HTTPS_PROXY and OpenSSL
honours SSL_CERT_FILE, which is how `tapwire record` sees its calls.
"""
import http.server
import json
import sys
import threading
import urllib.request

PAYMENTS = sys.argv[2]


def call(method, path, doc=None):
    data = json.dumps(doc).encode() if doc is not None else None
    req = urllib.request.Request(PAYMENTS + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


class Orders(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, status, doc):
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/quit":
            self._send(200, {"bye": True})
            threading.Thread(target=self.server.shutdown).start()
            return
        oid = self.path.rsplit("/", 1)[-1]
        self._send(200, {"order": oid, "payment": call("GET", "/payments/" + oid)})

    def do_POST(self):
        doc = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        paid = call("POST", "/charge", {"order": doc.get("id"), "amount": doc.get("amount")})
        self._send(201, {"order": doc.get("id"), "payment": paid})

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Orders).serve_forever()
