#!/usr/bin/env python3
"""Calls every method of grpc_server.py at TARGET (host:port) and prints
one JSON object describing what came back, so that a direct run and a run
through the proxy can be compared for equality.

usage: grpc_client.py TARGET [--tls-ca PEM] [--proxy http://host:port] [--stream-fail]
Plaintext h2c unless --tls-ca is given; --proxy tunnels with CONNECT;
--stream-fail also calls StreamFail (a non-OK status in trailers)."""

import argparse
import json
import sys

import grpc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("target")
    ap.add_argument("--tls-ca")
    ap.add_argument("--proxy")
    ap.add_argument("--stream-fail", action="store_true")
    args = ap.parse_args()
    # Only the proxy given here, never one from the environment.
    options = [("grpc.http_proxy", args.proxy)] if args.proxy else [("grpc.enable_http_proxy", 0)]
    if args.tls_ca:
        with open(args.tls_ca, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        channel = grpc.secure_channel(args.target, creds, options=options)
    else:
        channel = grpc.insecure_channel(args.target, options=options)
    grpc.channel_ready_future(channel).result(timeout=10)
    out = {}

    unary = channel.unary_unary("/tapwire.test.Echo/Unary")
    resp, call = unary.with_call(b"hello grpc", metadata=(("x-client", "test"),), timeout=10)
    out["unary"] = {
        "response": resp.decode(),
        "code": call.code().name,
        "trailing": sorted([k, v] for k, v in call.trailing_metadata() if k == "x-echo"),
    }

    stream = channel.unary_stream("/tapwire.test.Echo/ServerStream")
    call = stream(b"stream me", timeout=10)
    out["stream"] = {"responses": [m.decode() for m in call], "code": call.code().name}

    fail = channel.unary_unary("/tapwire.test.Echo/Fail")
    try:
        fail(b"x", timeout=10)
        out["fail"] = {"code": "OK"}
    except grpc.RpcError as e:
        out["fail"] = {"code": e.code().name, "details": e.details()}

    if args.stream_fail:
        call = channel.unary_stream("/tapwire.test.Echo/StreamFail")(b"x", timeout=10)
        got = []
        try:
            for m in call:
                got.append(m.decode())
            out["stream_fail"] = {"responses": got, "code": "OK"}
        except grpc.RpcError as e:
            out["stream_fail"] = {"responses": got, "code": e.code().name, "details": e.details()}

    print(json.dumps(out, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
