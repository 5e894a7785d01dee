#!/usr/bin/env python3
"""A gRPC server with a generic handler (raw bytes, no .proto needed).

Service tapwire.test.Echo:
  Unary(bytes)        -> b"echo:" + request, trailing metadata x-echo: yes
  ServerStream(bytes) -> five messages b"part-<i>:" + request
  Fail(bytes)         -> status NOT_FOUND, details "no such thing" (trailers-only)
  StreamFail(bytes)   -> two messages, then status RESOURCE_EXHAUSTED,
                         details "quota exceeded" (in trailers, after data)
Plaintext (h2c) by default; with --tls-cert and --tls-key, TLS.
Prints "READY <port>" once listening.
"""

import argparse
import sys
from concurrent import futures

import grpc


def unary(request, context):
    context.set_trailing_metadata((("x-echo", "yes"),))
    return b"echo:" + request


def server_stream(request, context):
    for i in range(5):
        yield b"part-%d:" % i + request


def fail(request, context):
    context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")


def stream_fail(request, context):
    for i in range(2):
        yield b"part-%d:" % i + request
    context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "quota exceeded")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    args = ap.parse_args()
    handler = grpc.method_handlers_generic_handler(
        "tapwire.test.Echo",
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
            "Fail": grpc.unary_unary_rpc_method_handler(fail),
            "StreamFail": grpc.unary_stream_rpc_method_handler(stream_fail),
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((handler,))
    if args.tls_cert:
        with open(args.tls_cert, "rb") as c, open(args.tls_key, "rb") as k:
            creds = grpc.ssl_server_credentials([(k.read(), c.read())])
        port = server.add_secure_port("127.0.0.1:0", creds)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print("READY %d" % port, flush=True)
    server.wait_for_termination()
    return 0


if __name__ == "__main__":
    sys.exit(main())
