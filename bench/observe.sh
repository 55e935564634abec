#!/usr/bin/env bash
# The cost of observability: in one run, with the same wrk settings, requests/s of the
# gateway (1 worker, one route, the 13-byte body) in three variants:
#   off          [metrics] enabled = false (no per-route/pool histograms, no timing) and
#                no access log
#   metrics      the default: per-route and per-pool counters and duration histograms
#   metrics+log  metrics and a JSON access log (every field) to a file
#   trace        metrics, the trace filter on the route (every request sampled) and OTLP
#                span export ([tracing] otlp_endpoint) to the upstream nginx, which
#                answers 200 to POST /v1/traces
#   all          metrics, the JSON access log, the trace filter and OTLP export
# Each variant runs ROUNDS times, interleaved (off, metrics, metrics+log, off, ...), so a
# drift of the shared machine spreads over all of them; the table shows the median of
# each and its ratio to `off`. Targets: metrics >= 0.97, metrics+log >= 0.90.
# --variants "off all" runs only those.
#
# --instructions: instead, user-space instructions per request of each variant, counted
# by callgrind as the slope between a SHORT (default 3 s) and a LONG (default 9 s) wrk
# run (as bench/instructions.sh does): a figure the machine's noise hardly moves.
#
# Usage: bench/observe.sh [--quick] [--rounds N] [--duration SECONDS] [--warmup SECONDS]
#                         [--instructions] [--variants "V..."] [--no-setup] [--no-build]
# Environment as bench/run.sh (DURATION WARMUP CONNECTIONS WRK_THREADS BENCH_PORT_BASE ...).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_DIR="$ROOT/bench"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
ROUNDS="${ROUNDS:-3}"
CONNECTIONS="${CONNECTIONS:-256}"
WRK_THREADS="${WRK_THREADS:-1}"
PORT_BASE="${BENCH_PORT_BASE:-18280}"
UPSTREAM_PORT="$PORT_BASE"
NGINX_PORT="$((PORT_BASE + 1))"
HAPROXY_PORT="$((PORT_BASE + 2))"
GATEWAY_PORT="$((PORT_BASE + 3))"
WRK_CPU="${WRK_CPU:-0}"
SERVER_CPU="${SERVER_CPU:-1}"
NGINX_KEEPALIVE="${NGINX_KEEPALIVE:-$CONNECTIONS}"
GATEWAY_BIN="${GATEWAY_BIN:-$ROOT/bazel-bin/gateway/gateway}"
SHORT="${SHORT:-3}"
LONG="${LONG:-9}"
DO_SETUP=1
DO_BUILD=1
INSTRUCTIONS=0
VARIANT_LIST="off metrics metrics+log trace all"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) DURATION=3; WARMUP=0; ROUNDS=1 ;;
    --rounds) ROUNDS="${2:?}"; shift ;;
    --duration) DURATION="${2:?}"; shift ;;
    --warmup) WARMUP="${2:?}"; shift ;;
    --instructions) INSTRUCTIONS=1 ;;
    --variants) VARIANT_LIST="${2:?}"; shift ;;
    --no-setup) DO_SETUP=0 ;;
    --no-build) DO_BUILD=0 ;;
    -h | --help) sed -n 2,25p "$0"; exit 0 ;;
    *) echo "observe.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
[ "$DO_SETUP" = 1 ] && bash "$ROOT/scripts/setup.sh"
require_tools wrk curl taskset timeout nginx python3
make_workdir
build_gateway "$DO_BUILD"
[ "$GATEWAY_OK" = 1 ] || die "no gateway binary"
setup_pinning
check_ports_free "$UPSTREAM_PORT" "$GATEWAY_PORT"
start_upstream

gateway_config() {  # gateway_config FILE VARIANT
  {
    echo 'workers = 1'
    echo '[admin]'
    echo 'listen = ""'
    if [ "$2" = off ]; then
      echo '[metrics]'
      echo 'enabled = false'
    fi
    if [ "$2" = metrics+log ] || [ "$2" = all ]; then
      echo '[access_log]'
      echo "path = \"$TMP/access.log\""
    fi
    if [ "$2" = trace ] || [ "$2" = all ]; then
      echo '[tracing]'
      echo "otlp_endpoint = \"127.0.0.1:$UPSTREAM_PORT\""
    fi
    echo '[[listeners]]'
    echo "listen = \"127.0.0.1:$GATEWAY_PORT\""
    echo '[[routes]]'
    echo 'name = "api"'
    echo 'service = "up"'
    if [ "$2" = trace ] || [ "$2" = all ]; then echo 'filters = [{ type = "trace" }]'; fi
    echo '[services.up]'
    echo "pools.main.endpoints = [\"127.0.0.1:$UPSTREAM_PORT\"]"
  } >"$1"
}
read -r -a VARIANTS <<<"$VARIANT_LIST"
for v in "${VARIANTS[@]}"; do gateway_config "$TMP/$v.toml" "$v"; done

if [ "$INSTRUCTIONS" = 1 ]; then
  require_tools valgrind
  # One callgrind run of VARIANT under wrk for SECONDS; sets M_IR and M_REQUESTS.
  callgrind_run() {
    local v="$1" seconds="$2" tag="$1-$2s"
    start_server "gateway-$tag" valgrind --tool=callgrind "--callgrind-out-file=$TMP/callgrind.$tag" \
      "--log-file=$TMP/valgrind.$tag.log" "$GATEWAY_BIN" --config "$TMP/$v.toml"
    local pid="$STARTED_PID"
    wait_ready "gateway-$tag" "$pid" 60 || die "gateway ($v) did not start under valgrind"
    log "$v: under callgrind, wrk ${seconds}s"
    run_load "$TMP/wrk-$tag.txt" "$seconds" wrk -t1 -c"$CONNECTIONS" -d"${seconds}s" --timeout 10s \
      "http://127.0.0.1:$GATEWAY_PORT/small"
    stop_pid "$pid" 300
    M_REQUESTS="$(awk '/ requests in / {print $1; exit}' "$TMP/wrk-$tag.txt")"
    M_IR="$(awk '/^totals:/ {print $2; exit}' "$TMP/callgrind.$tag")"
    [ -n "$M_REQUESTS" ] && [ -n "$M_IR" ] || die "$v: no callgrind result"
    rm -f "$TMP/access.log"
  }
  echo
  echo "Instructions per request (callgrind, slope between wrk ${SHORT}s and ${LONG}s, -c$CONNECTIONS, /small)"
  printf '%-12s %10s %10s %12s %10s\n' variant "req short" "req long" "Ir/request" "vs off"
  off_per=""
  for v in "${VARIANTS[@]}"; do
    callgrind_run "$v" "$SHORT"
    ir_s="$M_IR" req_s="$M_REQUESTS"
    callgrind_run "$v" "$LONG"
    per="$(awk -v a="$ir_s" -v b="$M_IR" -v x="$req_s" -v y="$M_REQUESTS" \
      'BEGIN { if (y > x) printf "%.0f", (b - a) / (y - x); else print "-" }')"
    [ "$v" = off ] && off_per="$per"
    printf '%-12s %10s %10s %12s %10s\n' "$v" "$req_s" "$M_REQUESTS" "$per" \
      "$(awk -v p="$per" -v o="$off_per" 'BEGIN { if (o > 0 && p > 0) printf "%.3f", p / o; else print "-" }')"
  done
  exit 0
fi

RAW="$TMP/results.tsv"
: >"$RAW"
measure() {  # measure NAME ROUND
  local name="$1" url="http://127.0.0.1:$GATEWAY_PORT/small" out="$TMP/wrk-$1-$2.txt"
  local got
  got="$(curl -s -o /dev/null -w '%{http_code}' "$url")"
  [ "$got" = 200 ] || die "$name answered $got"
  if [ "$WARMUP" -gt 0 ]; then
    run_load /dev/null "$WARMUP" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" "$url"
  fi
  log "$name (round $2): measuring ${DURATION}s"
  run_load "$out" "$DURATION" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$url"
  local rps p99 errors
  rps="$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")"
  p99="$(awk '$1 == "99%" {print $2; exit}' "$out")"
  errors="$(awk '/Socket errors:/ { gsub(/,/, ""); e += $4 + $6 + $8 + $10 } /Non-2xx or 3xx responses:/ { e += $5 } END { print e + 0 }' "$out")"
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$2" "${rps:-0}" "${p99:--}" "$errors" >>"$RAW"
}

for round in $(seq 1 "$ROUNDS"); do
  for v in "${VARIANTS[@]}"; do
    start_server "gateway-$v" "$GATEWAY_BIN" --config "$TMP/$v.toml"
    pid="$STARTED_PID"
    wait_ready "gateway-$v" "$pid" 15 || die "gateway ($v) did not start"
    measure "$v" "$round"
    stop_pid "$pid"
    if [ -f "$TMP/access.log" ]; then
      lines="$(wc -l <"$TMP/access.log")"
      log "$v: $lines access log lines"
      rm -f "$TMP/access.log"
    fi
  done
done

echo
echo "Observability benchmark $(date -u +%FT%TZ): wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s, warm-up ${WARMUP}s," \
  "$ROUNDS round(s), 13-byte body; wrk on CPU $WRK_CPU, gateway + upstream on CPU $SERVER_CPU (a shared, noisy machine: compare ratios within one run)"
sort -t$'\t' -k1,1 -k3,3n "$RAW" | awk -F'\t' -v order="${VARIANTS[*]}" '
  { n[$1]++; r[$1, n[$1]] = $3; all[$1] = all[$1] " " $3; err[$1] += $5 }
  END {
    split(order, names, " ")
    for (i in names) { v = names[i]; k = n[v]; med[v] = (k % 2) ? r[v, (k + 1) / 2] : (r[v, k / 2] + r[v, k / 2 + 1]) / 2 }
    printf "%-12s %12s %10s %8s   %s\n", "variant", "median r/s", "vs off", "errors", "each round"
    for (i = 1; i <= length(names); i++) {
      v = names[i]
      printf "%-12s %12.0f %10s %8s  %s\n", v, med[v], (med["off"] > 0 ? sprintf("%.3f", med[v] / med["off"]) : "-"), err[v], all[v]
    }
  }'
