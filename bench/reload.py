#!/usr/bin/env python3
"""caje bench -- policy hot-reload latency: how long after a module is renamed into the policies
directory the first response shows the new module.

Alternates two modules under one file name (DIR/50-swap.wasm), installed the way authors should:
copied to a hidden file in DIR, then renamed over the old one. After each rename it polls
GET BASE/synthetic on a keep-alive connection until the answer shows the new module: the
`decorate` test module answers /synthetic itself (418); with `noop` the request reaches the
origin (any other status). Prints one line per reload with --verbose, then the latency median,
p90 and max, and every failed request (connection errors, 5xx).

Usage: reload.py --base http://127.0.0.1:19005 --dir POLICIES_DIR \\
                 --decorate decorate.wasm --noop noop.wasm [--reloads 30] [--timeout 5]
"""
import argparse
import http.client
import os
import shutil
import statistics
import sys
import time
from urllib.parse import urlsplit

SWAP = "50-swap.wasm"
PROBE = "/synthetic"
DECORATED = 418


class Probe:
    """One keep-alive connection; a failed request counts and reconnects."""

    def __init__(self, base):
        parts = urlsplit(base)
        self.host, self.port = parts.hostname, parts.port or 80
        self.conn = None
        self.failures = []
        self.requests = 0

    def status(self):
        self.requests += 1
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
            self.conn.request("GET", PROBE)
            response = self.conn.getresponse()
            response.read()
            if response.status >= 500:
                self.failures.append(f"{response.status} {response.reason}")
            return response.status
        except (OSError, http.client.HTTPException) as err:
            self.failures.append(f"{type(err).__name__}: {err}")
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            return None


def install(directory, module):
    staged = os.path.join(directory, ".swap.tmp")
    shutil.copyfile(module, staged)
    start = time.perf_counter()
    os.rename(staged, os.path.join(directory, SWAP))
    return start


def wait_for(probe, decorated, deadline):
    while time.perf_counter() < deadline:
        status = probe.status()
        if status is not None and (status == DECORATED) == decorated:
            return time.perf_counter()
    return None


def main():
    args = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    args.add_argument("--base", required=True)
    args.add_argument("--dir", required=True)
    args.add_argument("--decorate", required=True)
    args.add_argument("--noop", required=True)
    args.add_argument("--reloads", type=int, default=30)
    args.add_argument("--timeout", type=float, default=5.0)
    args.add_argument("--verbose", action="store_true")
    opts = args.parse_args()
    if not 1 <= opts.reloads <= 1000:
        sys.exit("reload.py: --reloads must be 1..1000")

    probe = Probe(opts.base)
    # Start from a known state: noop installed and serving.
    install(opts.dir, opts.noop)
    if wait_for(probe, False, time.perf_counter() + 30) is None:
        sys.exit("reload.py: the noop module never became active (is caje watching --dir?)")

    latencies, missed = [], 0
    for i in range(opts.reloads):
        decorated = i % 2 == 0
        start = install(opts.dir, opts.decorate if decorated else opts.noop)
        seen = wait_for(probe, decorated, start + opts.timeout)
        if seen is None:
            missed += 1
            print(f"reload {i + 1}: not active after {opts.timeout} s", file=sys.stderr)
            continue
        latencies.append((seen - start) * 1000)
        if opts.verbose:
            print(f"reload {i + 1}: {latencies[-1]:.1f} ms")
    os.remove(os.path.join(opts.dir, SWAP))

    latencies.sort()
    if latencies:
        p90 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.9))]
        print(
            f"RELOAD reloads={opts.reloads} active={len(latencies)} missed={missed} "
            f"median_ms={statistics.median(latencies):.1f} p90_ms={p90:.1f} "
            f"min_ms={latencies[0]:.1f} max_ms={latencies[-1]:.1f} "
            f"probe_requests={probe.requests} probe_failures={len(probe.failures)}"
        )
    for failure in probe.failures[:20]:
        print(f"probe failure: {failure}", file=sys.stderr)
    return 0 if missed == 0 and not probe.failures else 1


if __name__ == "__main__":
    sys.exit(main())
