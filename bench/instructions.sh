#!/usr/bin/env bash
# instructions.sh -- user-space instructions per cache hit, counted by valgrind's callgrind:
# deterministic where req/s on a shared machine is not. One line per policy set, e.g.
#   bench/instructions.sh "" route-by-path "route-by-path bypass-private ttl-override" noop
# ("" = no policy). Each set: a release caje under callgrind (max_instances = 8: valgrind cannot
# reserve the default pool), warmed, counters zeroed, then wrk -t1 -c4 -d10s on /static/1k.bin
# hits; prints requests, instructions and instructions per request. Builds nothing: run
# `cargo build --release -p caje` and `cargo xtask policies` first. Needs valgrind, wrk, curl.
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
RUN=/tmp/caje-bench/instructions
WASM=$ROOT/policies/target/wasm32-wasip2/release
PORT=19030
for x in valgrind callgrind_control callgrind_annotate wrk curl; do
  command -v "$x" >/dev/null || { echo "instructions.sh: missing $x" >&2; exit 1; }
done
[ $# -gt 0 ] || set -- "" route-by-path

STARTED=(); PID=""
cleanup() {
  local rc=$?
  [ -z "$PID" ] || kill "$PID" 2>/dev/null || true
  [ ${#STARTED[@]} -eq 0 ] || "$HERE/servers.sh" stop "${STARTED[@]}" >&2 || true
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
while read -r line; do
  case "$line" in *": started on"*) STARTED+=("${line%%:*}") ;; esac
done < <("$HERE/servers.sh" start origin)

count() {  # CRATES (space-separated)
  local dir=$RUN/caje i=10 url=http://127.0.0.1:$PORT/static/1k.bin
  rm -rf "$dir"; mkdir -p "$dir/policies"
  for crate in $1; do
    cp "$WASM/${crate//-/_}.wasm" "$dir/policies/.$i.tmp" && mv "$dir/policies/.$i.tmp" "$dir/policies/$i-$crate.wasm"
    i=$((i + 10))
  done
  printf 'listen = "127.0.0.1:%s"\ncache_dir = "cache"\ndatabase = "manifest.db"\npolicies_dir = "policies"\ndefault_origin = "bench"\n\n[origins.bench]\nurl = "http://127.0.0.1:19000"\n\n[origins.api]\nurl = "http://127.0.0.1:19000"\n\n[log]\nlevel = "warn"\naccess = false\n\n[policies]\nmax_instances = 8\n' "$PORT" >"$dir/caje.toml"
  valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" "$ROOT/target/release/caje" serve \
    --config "$dir/caje.toml" 2>"$dir/valgrind.log" &
  PID=$!
  for _ in $(seq 300); do curl -sf -o /dev/null --max-time 2 "$url" && break; sleep 0.2; done
  for _ in 1 2 3; do curl -sf -o /dev/null "$url"; done
  callgrind_control -z "$PID" >/dev/null 2>&1
  local result requests total
  result=$(timeout 60 wrk -t1 -c4 -d10s -s "$HERE/lib/bench.lua" "$url" | grep '^BENCH ')
  callgrind_control -d "$PID" >/dev/null 2>&1
  kill -INT "$PID"; wait "$PID" || true; PID=""
  requests=$(echo "$result" | grep -o 'requests=[0-9]*' | cut -d= -f2)
  total=$(callgrind_annotate "$dir/callgrind.out.1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  printf '%-50s requests=%s instructions=%s per_request=%s\n' "policies: ${1:-(none)}" \
    "$requests" "$total" "$((total / requests))"
}
for set in "$@"; do count "$set"; done
