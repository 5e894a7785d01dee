#!/usr/bin/env python3
"""One call with `requests`, configured only by the environment
(HTTPS_PROXY, REQUESTS_CA_BUNDLE) as an app would be.

usage: requests_client.py METHOD URL [JSON_BODY]
Prints JSON {"status", "headers", "body"}; Date is left out so a direct
call and a proxied one can be compared."""

import json
import sys

import requests


def main():
    method, url = sys.argv[1], sys.argv[2]
    payload = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
    r = requests.request(method, url, json=payload, timeout=20)
    headers = sorted([k.lower(), v] for k, v in r.headers.items() if k.lower() != "date")
    print(json.dumps({"status": r.status_code, "headers": headers, "body": r.text}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
