#!/usr/bin/env bash
# TLS termination in front of the plain upstream nginx: the gateway vs nginx (and
# HAProxy) with the same certificate (ECDSA P-256 from scripts/make_test_certs.sh), the
# same protocols (TLS 1.2 + 1.3; wrk negotiates 1.3) and the same wrk settings, in one run:
#   keepalive  wrk -c$CONNECTIONS keep-alive connections: the cost of encryption
#   close      wrk -H 'Connection: close' -c$CLOSE_CONNECTIONS: a full handshake per
#              request (wrk does not resume sessions), i.e. the handshake rate
# Layout as bench/run.sh: wrk on CPU 0, the proxy and the upstream on CPU 1; 1 worker each.
# The machine is shared and noisy: compare the ratios within one run, not absolute figures.
#
# Usage: bench/tls.sh [--quick] [--targets LIST] [--modes LIST] [--duration SECONDS]
#                     [--no-setup] [--no-build]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_DIR="$ROOT/bench"
ALL_TARGETS="nginx,haproxy,gateway"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
CONNECTIONS="${CONNECTIONS:-256}"
CLOSE_CONNECTIONS="${CLOSE_CONNECTIONS:-32}"
WRK_THREADS=1
TARGETS="${TARGETS:-$ALL_TARGETS}"
MODES="${MODES:-keepalive,close}"
PORT_BASE="${BENCH_PORT_BASE:-18180}"
UPSTREAM_PORT="$PORT_BASE"
NGINX_PORT="$((PORT_BASE + 1))"
HAPROXY_PORT="$((PORT_BASE + 2))"
GATEWAY_PORT="$((PORT_BASE + 3))"
WRK_CPU="${WRK_CPU:-0}"
SERVER_CPU="${SERVER_CPU:-1}"
NGINX_KEEPALIVE="${NGINX_KEEPALIVE:-$CONNECTIONS}"
GATEWAY_BIN="${GATEWAY_BIN:-$ROOT/bazel-bin/gateway/gateway}"
RESULTS_DIR="${RESULTS_DIR:-$BENCH_DIR/results}"
DO_SETUP=1
DO_BUILD=1

while [ $# -gt 0 ]; do
  case "$1" in
    --quick) DURATION=3; WARMUP=0 ;;
    --targets) TARGETS="${2:?}"; shift ;;
    --modes) MODES="${2:?}"; shift ;;
    --duration) DURATION="${2:?}"; shift ;;
    --no-setup) DO_SETUP=0 ;;
    --no-build) DO_BUILD=0 ;;
    -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "tls.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
IFS=',' read -r -a TARGET_LIST <<<"$TARGETS"
IFS=',' read -r -a MODE_LIST <<<"$MODES"
[[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || die "DURATION must be a positive whole number of seconds"

if [ "$DO_SETUP" = 1 ]; then bash "$ROOT/scripts/setup.sh"; fi
require_tools wrk curl taskset timeout nginx openssl
[[ ",$TARGETS," == *",haproxy,"* ]] && require_tools haproxy

make_workdir
bash "$ROOT/scripts/make_test_certs.sh" "$TMP/certs" >/dev/null
cat "$TMP/certs/localhost.pem" "$TMP/certs/localhost.key" >"$TMP/certs/localhost.both.pem"
render tls-proxy.nginx.conf.in tls-nginx.conf
render tls-haproxy.cfg.in tls-haproxy.cfg
render tls-gateway.toml.in tls-gateway.toml
build_gateway "$DO_BUILD"
setup_pinning
check_ports_free "$UPSTREAM_PORT" "$NGINX_PORT" "$HAPROXY_PORT" "$GATEWAY_PORT"
start_upstream

CURL_TLS=(--cacert "$TMP/certs/ca.pem" --resolve "localhost:$NGINX_PORT:127.0.0.1"
  --resolve "localhost:$HAPROXY_PORT:127.0.0.1" --resolve "localhost:$GATEWAY_PORT:127.0.0.1")

# Waits until https://localhost:PORT/small answers 200 with the 13-byte body (verified).
wait_https() {
  local port="$1" pid="$2" name="$3" got=""
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { log "$name exited; its stderr:"; tail -n 20 "$TMP/$name.err" >&2; return 1; }
    got="$(curl -s "${CURL_TLS[@]}" -o /dev/null --max-time 1 -w '%{http_code} %{size_download}' \
      "https://localhost:$port/small" || true)"
    [ "$got" = "200 13" ] && return 0
    sleep 0.1
  done
  log "$name did not answer https://localhost:$port/small (last: '$got')"
  return 1
}

start_tls_target() {
  case "$1" in
    nginx)
      TARGET_PORT="$NGINX_PORT"
      start_server tls-nginx nginx -e "$TMP/tls-nginx-error.log" -p "$TMP" -c "$TMP/tls-nginx.conf"
      ;;
    haproxy)
      TARGET_PORT="$HAPROXY_PORT"
      start_server tls-haproxy haproxy -db -f "$TMP/tls-haproxy.cfg"
      ;;
    gateway)
      TARGET_PORT="$GATEWAY_PORT"
      [ "${GATEWAY_OK:-0}" = 1 ] || return 1
      start_server tls-gateway "$GATEWAY_BIN" --config "$TMP/tls-gateway.toml"
      ;;
  esac
  TARGET_PID="$STARTED_PID"
  wait_https "$TARGET_PORT" "$TARGET_PID" "tls-$1"
}

# Runs wrk; sets RPS, P99 (as printed by wrk) and ERRORS.
run_tls_wrk() {
  local out="$1" mode="$2" url="$3"
  local args=(-t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency)
  [ "$mode" = close ] && args=(-t"$WRK_THREADS" -c"$CLOSE_CONNECTIONS" -d"${DURATION}s" --latency -H "Connection: close")
  run_load "$out" "$DURATION" wrk "${args[@]}" "$url"
  RPS="$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")"
  P99="$(awk '$1 == "99%" {print $2; exit}' "$out")"
  ERRORS="$(awk '/Socket errors:/ { gsub(/,/, ""); e += $4 + $6 + $8 + $10 }
    /Non-2xx or 3xx responses:/ { e += $5 } END { print e + 0 }' "$out")"
  RPS="${RPS:-0}"
}

mkdir -p "$RESULTS_DIR"
OUT="$RESULTS_DIR/tls-$(date +%Y%m%d-%H%M%S).tsv"
RAW="$TMP/tls-results.tsv"
: >"$RAW"
log "duration ${DURATION}s, warm-up ${WARMUP}s, keepalive -c$CONNECTIONS, close -c$CLOSE_CONNECTIONS"
for mode in "${MODE_LIST[@]}"; do
  for target in "${TARGET_LIST[@]}"; do
    TARGET_PID=""
    if ! start_tls_target "$target"; then
      log "$target: SKIPPED"
      [ -n "$TARGET_PID" ] && stop_pid "$TARGET_PID"
      printf '%s\t%s\tskipped\n' "$target" "$mode" >>"$RAW"
      continue
    fi
    url="https://localhost:$TARGET_PORT/small"
    if [ "$WARMUP" -gt 0 ]; then
      run_load /dev/null "$WARMUP" wrk -t1 -c"$CLOSE_CONNECTIONS" -d"${WARMUP}s" "$url"
    fi
    log "$target $mode: measuring ${DURATION}s"
    run_tls_wrk "$TMP/wrk-tls-$target-$mode.txt" "$mode" "$url"
    stop_pid "$TARGET_PID"
    printf '%s\t%s\tok\t%s\t%s\t%s\n' "$target" "$mode" "$RPS" "$P99" "$ERRORS" >>"$RAW"
  done
done

awk -F'\t' -v OFS='\t' '
  { row[NR] = $0; if ($1 == "nginx" && $3 == "ok") base[$2] = $4 }
  END {
    print "target", "mode", "status", "requests_per_s", "p99", "ratio_vs_nginx", "errors"
    for (i = 1; i <= NR; i++) {
      split(row[i], f, "\t")
      if (f[3] != "ok") { print f[1], f[2], f[3]; continue }
      ratio = (f[2] in base && base[f[2]] > 0) ? sprintf("%.2f", f[4] / base[f[2]]) : "-"
      print f[1], f[2], "ok", f[4], f[5], ratio, f[6]
    }
  }' "$RAW" >"$OUT"
echo
echo "TLS termination $(date -u +%FT%TZ): wrk -t1, ${DURATION}s per run; keepalive -c$CONNECTIONS," \
  "close -c$CLOSE_CONNECTIONS with 'Connection: close'; wrk on CPU $WRK_CPU, servers on CPU $SERVER_CPU"
column -t -s $'\t' "$OUT"
echo
echo "Results: ${OUT#"$ROOT"/}. Shared, noisy machine: compare ratios within this run."
