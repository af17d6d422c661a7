#!/usr/bin/env bash
# policies.sh -- what wasm policies cost caje, measured in one run:
#   1. the bench.sh hit test against three caje processes, one interleaved run, so the ratios come
#      from the same run:  caje-0  127.0.0.1:19004  no policy (the baseline of every ratio)
#                          caje-1  127.0.0.1:19005  route-by-path
#                          caje-3  127.0.0.1:19006  route-by-path, bypass-private, ttl-override
#   2. hot-reload latency (bench/reload.py against caje-1): a module renamed into the policies
#      directory, timed until the first response that shows it; --reloads times, caje idle;
#   3. --load-reloads more reloads while wrk loads caje-1 with hits: wrk's errors and non-2xx
#      responses and the probe's failures must all be 0.
#
# USAGE   bench/policies.sh [--reloads N] [--load-reloads N] [--skip-hit] [bench.sh options]
#         bench.sh options default to: --tests hit -s 1k,64k   (see bench/bench.sh --help)
# Builds caje (release) and the policies first. Starts the origin with bench/servers.sh (and stops
# what it started); each caje runs under setsid in /tmp/caje-bench/policies/caje-N and is stopped
# at exit by its pid. Results: the bench.sh summary, then two RELOAD lines and the wrk totals.
# Needs what bench.sh needs (nginx, wrk, curl, python3, iproute2, util-linux).
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
RUN=/tmp/caje-bench/policies
WASM=$ROOT/policies/target/wasm32-wasip2/release
RELOADS=30; LOAD_RELOADS=100; HIT=1
BENCH_ARGS=()

die() { echo "policies.sh: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --reloads) RELOADS=$2; shift 2 ;;
    --load-reloads) LOAD_RELOADS=$2; shift 2 ;;
    --skip-hit) HIT=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) BENCH_ARGS+=("$1"); shift ;;
  esac
done
for v in RELOADS LOAD_RELOADS; do
  [[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -ge 1 ] && [ "${!v}" -le 1000 ] || die "$v must be 1..1000"
done
[ ${#BENCH_ARGS[@]} -gt 0 ] || BENCH_ARGS=(--tests hit -s 1k,64k)
for x in cargo wrk curl python3 setsid; do command -v "$x" >/dev/null || die "missing $x"; done

log "building caje (release) and the policies"
(cd "$ROOT" && cargo build --release -p caje && cargo xtask policies >/dev/null)
CAJE=$ROOT/target/release/caje

# ---------------------------------------------------------------- cleanup
PIDS=(); STARTED=(); WRKPID=""
cleanup() {
  local rc=$?
  [ -z "$WRKPID" ] || kill "$WRKPID" 2>/dev/null || true
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ ${#STARTED[@]} -eq 0 ] || "$HERE/servers.sh" stop "${STARTED[@]}" >&2 || true
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

while read -r line; do
  echo "$line" >&2
  case "$line" in *": started on"*) STARTED+=("${line%%:*}") ;; esac
done < <("$HERE/servers.sh" start slow origin)

# ---------------------------------------------------------------- three cajes
# install DIR FILE CRATE: copy beside, then rename (what authors should do)
install() { cp "$WASM/${3//-/_}.wasm" "$1/.$2.tmp" && mv "$1/.$2.tmp" "$1/$2"; }
start_caje() {  # N PORT CRATE...
  local n=$1 port=$2 dir=$RUN/caje-$1 i=10; shift 2
  rm -rf "$dir"; mkdir -p "$dir/policies"
  for crate in "$@"; do install "$dir/policies" "$i-$crate.wasm" "$crate"; i=$((i + 10)); done
  cat >"$dir/caje.toml" <<CONF
listen = "127.0.0.1:$port"
cache_dir = "cache"
database = "manifest.db"
policies_dir = "policies"
default_origin = "bench"

[origins.bench]
url = "http://127.0.0.1:19000"

[origins.api]
url = "http://127.0.0.1:19000"

[log]
level = "warn"
access = false
CONF
  # setsid: its own scheduler autogroup, so caje does not share wrk's CPU share (bench/README.md).
  setsid "$CAJE" serve --config "$dir/caje.toml" 2>"$dir/caje.log" &
  PIDS+=($!)
  for _ in $(seq 100); do curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$port/static/1k.bin" && return 0; sleep 0.1; done
  die "caje-$n did not answer on 127.0.0.1:$port within 10 s: $(tail -5 "$dir/caje.log")"
}
start_caje 0 19004
start_caje 1 19005 route-by-path
start_caje 3 19006 route-by-path bypass-private ttl-override
log "caje-0/1/3 serving with 0/1/3 policies (pids ${PIDS[*]})"

if [ "$HIT" = 1 ]; then
  "$HERE/bench.sh" "${BENCH_ARGS[@]}" \
    caje-0=http://127.0.0.1:19004 caje-1=http://127.0.0.1:19005 caje-3=http://127.0.0.1:19006
fi

# ---------------------------------------------------------------- reloads
reload() {  # extra reload.py args
  python3 "$HERE/reload.py" --base http://127.0.0.1:19005 --dir "$RUN/caje-1/policies" \
    --decorate "$WASM/decorate.wasm" --noop "$WASM/noop.wasm" "$@"
}
log "reload latency, caje-1 idle: $RELOADS reloads"
reload --reloads "$RELOADS"

log "reloads under load: $LOAD_RELOADS reloads while wrk -c32 loads caje-1 with hits"
WRK_OUT=$(mktemp)
timeout -k 5 900 wrk -t1 -c32 -d600s --timeout 10s -s "$HERE/lib/bench.lua" \
  http://127.0.0.1:19005/static/1k.bin >"$WRK_OUT" 2>&1 &
WRKPID=$!
sleep 1
status=0
reload --reloads "$LOAD_RELOADS" || status=$?
kill -INT "$WRKPID" 2>/dev/null || true
wait "$WRKPID" || true
WRKPID=""
grep '^BENCH ' "$WRK_OUT" | sed 's/^BENCH /WRK-UNDER-RELOADS /' || die "wrk printed no result: $(tail -5 "$WRK_OUT")"
grep -q 'err_connect=0 err_read=0 err_write=0 err_status=0 err_timeout=0' "$WRK_OUT" \
  || { echo "wrk saw failed requests during the reloads" >&2; status=1; }
rm -f "$WRK_OUT"
exit $status
