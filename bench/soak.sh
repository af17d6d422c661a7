#!/usr/bin/env bash
# soak.sh -- a bounded soak of one caje at a steady mix (hits, fills, revalidations, purges, policy
# reloads), printing caje's RSS, open file descriptors and error counts every 10 s, then a summary.
# A command to run by hand, not a test: it takes --minutes (default 10) plus the build.
#
# USAGE   bench/soak.sh [--minutes N] [--window S] [--warmup S] [--connections N] [--threads N]
#                       [--reload-every S] [--workdir DIR]      (see bench/soak.py --help)
# Builds caje (release) and the example policies, then runs bench/soak.py; exits 1 when caje
# answered a 5xx of its own, a purge or a policy reload failed, or caje died.
# Needs wrk and python3.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
for x in cargo wrk python3; do command -v "$x" >/dev/null || { echo "soak.sh: missing $x" >&2; exit 1; }; done
(cd "$ROOT" && cargo build --release -p caje && cargo xtask policies >/dev/null)
exec python3 "$HERE/soak.py" --caje "$ROOT/target/release/caje" \
  --policies "$ROOT/policies/target/wasm32-wasip2/release" "$@"
