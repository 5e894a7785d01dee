#!/usr/bin/env python3
"""Peer for bench/dlp.sh: scrubadub (PyPI) cleaning the same JSON bodies as
tapwire's redactor. Prints `case<TAB>bytes<TAB>findings<TAB>MB/s<TAB>iterations`
like the Rust bench, MB/s being 10^6 bytes per CPU second of this process.

scrubadub scans text: it has no JSON, form or header awareness, so it gets
each body as one string (its intended use).
"""
import sys
import time

import scrubadub


def main() -> None:
    secs = float(sys.argv[1])
    sample = int(sys.argv[2])
    scrubber = scrubadub.Scrubber()
    print(f"# scrubadub {scrubadub.__version__}; detectors: {', '.join(sorted(scrubber._detectors))}", flush=True)
    for path in sys.argv[3:]:
        name = path.rsplit("/", 1)[-1].removesuffix(".json")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        # Whole records only: cut after the last `},` before `sample` bytes.
        cut = text.rfind("},{", 0, sample)
        body = text[: cut + 1] + "]}" if 0 < cut < len(text) - 3 else text
        findings = sum(1 for _ in scrubber.iter_filth(body))
        start = time.process_time()
        iters = 0
        while time.process_time() - start < secs:
            scrubber.clean(body)
            iters += 1
        el = time.process_time() - start
        print(f"scrubadub_json_{name}\t{len(body.encode())}\t{findings}\t{len(body.encode()) * iters / el / 1e6:.3f}\t{iters}", flush=True)


if __name__ == "__main__":
    main()
