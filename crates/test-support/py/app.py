#!/usr/bin/env python3
"""A small app for `tapwire record`: for each inbound GET it calls an HTTPS
dependency with `requests` (which finds HTTPS_PROXY and REQUESTS_CA_BUNDLE
in the environment tapwire sets) and answers with the dependency's body.
Exits with --exit-code after --requests requests.

It answers HTTP/1.0 style (one request per connection) so that exactly
--requests connections are served; it writes --ready-file once listening."""

import argparse
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

import requests

ARGS = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def do_GET(self):
        try:
            r = requests.get(ARGS.dep + self.path, timeout=15)
            status, body = r.status_code, r.content
        except Exception as e:  # the test reads this in the response
            status, body = 599, ("dependency call failed: %r" % e).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dep", required=True)
    ap.add_argument("--requests", type=int, required=True)
    ap.add_argument("--exit-code", type=int, default=0)
    ap.add_argument("--ready-file", required=True)
    ARGS = ap.parse_args()
    srv = HTTPServer(("127.0.0.1", ARGS.port), Handler)
    with open(ARGS.ready_file, "w") as f:
        f.write("ready\n")
    for _ in range(ARGS.requests):
        srv.handle_request()
    srv.server_close()
    return ARGS.exit_code


if __name__ == "__main__":
    sys.exit(main())
