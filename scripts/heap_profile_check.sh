#!/usr/bin/env bash
# Heap profiling end to end: builds the gateway with jemalloc (--config=jemalloc), runs it
# with profiling on, sends a few requests, dumps a profile through POST /debug/heap/dump,
# checks the file is there and not empty, and prints the top of `jeprof --text`.
# Needs libjemalloc-dev (scripts/setup.sh; it ships jeprof). Not part of
# `bazel test //tests/...`: it needs a second build of the gateway.
set -euo pipefail
cd "$(dirname "$0")/.."

bazel build --config=jemalloc //gateway:gateway
# A copy: the next default build replaces bazel-bin's binary (jeprof needs this one).
dir=$(mktemp -d)
bin="$dir/gateway-jemalloc"
cp bazel-bin/gateway/gateway "$bin"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
listen=$(port)
admin=$(port)
upstream=$(port)

python3 -m http.server "$upstream" --bind 127.0.0.1 --directory "$dir" >/dev/null 2>&1 &
up_pid=$!
GATEWAY_HEAP_DIR="$dir" MALLOC_CONF=prof:true,lg_prof_sample:19 \
  "$bin" --listen "127.0.0.1:$listen" --upstream "127.0.0.1:$upstream" --workers 1 \
  --admin "127.0.0.1:$admin" >"$dir/gateway.log" 2>&1 &
gw_pid=$!
trap 'kill $gw_pid $up_pid 2>/dev/null || true' EXIT

for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$admin/ready" >/dev/null 2>&1 && break
  sleep 0.1
done
for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$listen/"; done

echo "--- GET /debug/memory (jemalloc part)"
curl -fsS "http://127.0.0.1:$admin/debug/memory" |
  python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["jemalloc"]))'
echo "--- POST /debug/heap/dump"
reply=$(curl -sS -X POST "http://127.0.0.1:$admin/debug/heap/dump")
echo "$reply"
file=$(echo "$reply" | python3 -c 'import json,sys; print(json.load(sys.stdin)["path"])')
test -s "$file" || { echo "FAIL: $file missing or empty" >&2; exit 1; }
echo "--- $file: $(stat -c %s "$file") bytes"
echo "--- jeprof --text (top 10)"
jeprof --text "$bin" "$file" 2>/dev/null | head -12
echo "OK"
