#!/usr/bin/env python3
"""caje soak -- a bounded run at a steady mix, reporting caje's RSS, open file descriptors and error
counts every window (10 s by default).

Starts the bundled demo origin and one caje (three example policies, admin token, everything under
--workdir), then, until --minutes have passed:
  * wrk runs the mix of bench/lib/soak.lua for one window at a time (hits, fills, revalidations,
    stale-while-revalidate, Vary, origin 503s, invalidating POSTs, uncacheable pages);
  * a purger POSTs /_caje/purge once a second, in turn: a hot URL, a /fast prefix, a soft purge of a
    revalidated page, a tag (tag-by-path tags pages `path:<first segment>` while it is in the chain);
  * a reloader renames one of two policy modules over 30-swap.wasm every --reload-every seconds.
After each window one line: elapsed, RSS, fds, requests, 2xx/3xx/4xx, origin 5xx, caje 5xx, socket
errors, p99, purges and reloads (failed ones counted). At the end a summary compares RSS and fds after
--warmup with the last window. Exit status 1 when caje answered any 5xx of its own, a purge or reload
failed, or caje died.

Usage: soak.py --caje target/release/caje --policies policies/target/wasm32-wasip2/release
               [--minutes 10] [--window 10] [--warmup 60] [--connections 16] [--threads 2]
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ORIGIN = "127.0.0.1:19401"
CAJE = "127.0.0.1:19404"
TOKEN = "soak-token"
CHAIN = {"10-route.wasm": "route_by_path.wasm", "20-private.wasm": "bypass_private.wasm"}
SWAP = "30-swap.wasm"
SWAPPED = ("ttl_override.wasm", "tag_by_path.wasm")
PURGES = (
    {"url": f"http://{CAJE}/bytes/1024?k=7"},
    {"prefix": f"http://{CAJE}/fast?b=3-"},
    {"url": f"http://{CAJE}/etag?k=5", "soft": True},
    {"tag": "path:bytes"},
)


def config(workdir, policies_dir):
    return f"""listen = "{CAJE}"
cache_dir = "{workdir}/cache"
database = "{workdir}/manifest.db"
policies_dir = "{policies_dir}"
default_origin = "demo"

[origins.demo]
url = "http://{ORIGIN}"

[origins.api]
url = "http://{ORIGIN}"

[log]
access = false
"""


def admin(path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://{CAJE}/_caje/{path}", data=data)
    request.add_header("Authorization", f"Bearer {TOKEN}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


def wait_until_up(process, what):
    for _ in range(200):
        if process.poll() is not None:
            sys.exit(f"soak.py: {what} exited with {process.returncode} while starting")
        try:
            admin("health")
            return
        except (OSError, urllib.error.URLError):
            time.sleep(0.1)
    sys.exit(f"soak.py: {what} did not answer /_caje/health within 20 s")


def install(policies_dir, modules, source, name):
    """Copy to a hidden name, then rename over `name`: caje never sees a half-written module."""
    staged = os.path.join(policies_dir, f".{name}.tmp")
    shutil.copyfile(os.path.join(modules, source), staged)
    os.replace(staged, os.path.join(policies_dir, name))


class Background(threading.Thread):
    """Runs `action(step)` every `every` seconds until stopped; counts calls and failures."""

    def __init__(self, every, action):
        super().__init__(daemon=True)
        self.every, self.action = every, action
        self.done = self.failed = 0
        self.errors = []
        self.stopping = threading.Event()

    def run(self):
        step = 0
        while not self.stopping.wait(self.every):
            try:
                self.action(step)
                self.done += 1
            except (OSError, urllib.error.URLError) as err:
                self.failed += 1
                self.errors.append(str(err))
            step += 1


def process_stats(pid):
    with open(f"/proc/{pid}/status") as status:
        rss_kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return rss_kib / 1024, len(os.listdir(f"/proc/{pid}/fd"))


def window(seconds, args):
    command = ["wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", f"{seconds}s",
               "--timeout", "5s", "-s", os.path.join(HERE, "lib", "soak.lua"), f"http://{CAJE}/"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next((l for l in out.splitlines() if l.startswith("SOAK ")), None)
    if line is None:
        sys.exit(f"soak.py: wrk printed no SOAK line:\n{out}")
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--caje", required=True)
    parser.add_argument("--policies", required=True, help="directory of the built policy modules")
    parser.add_argument("--workdir", default="/tmp/caje-soak")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=60)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reload-every", type=float, default=5)
    args = parser.parse_args()

    shutil.rmtree(args.workdir, ignore_errors=True)
    policies_dir = os.path.join(args.workdir, "policies")
    os.makedirs(policies_dir)
    for name, source in CHAIN.items():
        install(policies_dir, args.policies, source, name)
    install(policies_dir, args.policies, SWAPPED[0], SWAP)
    config_path = os.path.join(args.workdir, "caje.toml")
    with open(config_path, "w") as f:
        f.write(config(args.workdir, policies_dir))

    log = open(os.path.join(args.workdir, "caje.log"), "w")
    origin = subprocess.Popen([args.caje, "demo-origin", "--listen", ORIGIN, "--slow-delay", "50ms"],
                              stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    env = dict(os.environ, CAJE_ADMIN_TOKEN=TOKEN)
    caje = subprocess.Popen([args.caje, "serve", "--config", config_path], stdout=log, stderr=log,
                            env=env, start_new_session=True)
    try:
        wait_until_up(caje, "caje")
        purger = Background(1, lambda step: admin("purge", PURGES[step % len(PURGES)]))
        reloader = Background(args.reload_every, lambda step: install(
            policies_dir, args.policies, SWAPPED[(step + 1) % 2], SWAP))
        purger.start()
        reloader.start()
        soak(args, caje, purger, reloader)
    finally:
        for process in (caje, origin):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=60)


def soak(args, caje, purger, reloader):
    print(f"{'t_s':>5} {'rss_mib':>8} {'fds':>5} {'requests':>9} {'2xx':>8} {'3xx':>5} {'4xx':>5} "
          f"{'o5xx':>5} {'c5xx':>5} {'sockerr':>7} {'p99_ms':>7} {'purges':>7} {'reloads':>7}",
          flush=True)
    rows = []
    started = time.monotonic()
    while time.monotonic() - started < args.minutes * 60:
        counts = window(args.window, args)
        if caje.poll() is not None:
            sys.exit(f"soak.py: caje exited with {caje.returncode}; see {args.workdir}/caje.log")
        rss, fds = process_stats(caje.pid)
        elapsed = time.monotonic() - started
        socket_errors = sum(counts[k] for k in ("err_connect", "err_read", "err_write", "err_timeout"))
        rows.append((elapsed, rss, fds, counts, socket_errors))
        print(f"{elapsed:5.0f} {rss:8.1f} {fds:5d} {counts['requests']:9d} {counts['ok']:8d} "
              f"{counts['redirect']:5d} {counts['client']:5d} {counts['origin5xx']:5d} "
              f"{counts['caje5xx']:5d} {socket_errors:7d} {counts['p99_us'] / 1000:7.1f} "
              f"{purger.done}/{purger.failed:<3d} {reloader.done}/{reloader.failed}", flush=True)
    purger.stopping.set()
    reloader.stopping.set()
    summarize(args, rows, purger, reloader)


def summarize(args, rows, purger, reloader):
    settled = [row for row in rows if row[0] >= args.warmup] or rows[-1:]
    first, last = settled[0], settled[-1]
    rss = [row[1] for row in settled]
    fds = [row[2] for row in settled]
    total = lambda key: sum(row[3][key] for row in rows)
    caje_5xx = total("caje5xx")
    socket_errors = sum(row[4] for row in rows)
    print(f"SUMMARY windows={len(rows)} requests={total('requests')} "
          f"rss_after_warmup_mib={first[1]:.1f} rss_last_mib={last[1]:.1f} "
          f"rss_min_mib={min(rss):.1f} rss_max_mib={max(rss):.1f} "
          f"fds_after_warmup={first[2]} fds_last={last[2]} fds_min={min(fds)} fds_max={max(fds)} "
          f"origin5xx={total('origin5xx')} caje5xx={caje_5xx} socket_errors={socket_errors} "
          f"purges={purger.done} purge_failures={purger.failed} "
          f"reloads={reloader.done} reload_failures={reloader.failed}")
    for error in (purger.errors + reloader.errors)[:5]:
        print(f"  failure: {error}")
    if caje_5xx or purger.failed or reloader.failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
