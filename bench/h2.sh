#!/usr/bin/env bash
# HTTP/2 termination over TLS in front of the plain HTTP/1.1 upstream nginx: the gateway
# vs nginx (`listen ... ssl http2`), same certificate, same h2load settings, in one run:
# h2load -c$CONNECTIONS -m$STREAMS (concurrent streams per connection) for $DURATION s.
# Layout as bench/tls.sh: h2load on CPU 0, the proxy and the upstream on CPU 1; 1 worker
# each. The machine is shared and noisy: compare the ratio within one run.
#
# Usage: bench/h2.sh [--quick] [--duration SECONDS] [--no-setup] [--no-build]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_DIR="$ROOT/bench"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
CONNECTIONS="${CONNECTIONS:-64}"
STREAMS="${STREAMS:-16}"
PORT_BASE="${BENCH_PORT_BASE:-18190}"
UPSTREAM_PORT="$PORT_BASE"
NGINX_PORT="$((PORT_BASE + 1))"
HAPROXY_PORT="$((PORT_BASE + 2))"
GATEWAY_PORT="$((PORT_BASE + 3))"
WRK_CPU="${WRK_CPU:-0}"
SERVER_CPU="${SERVER_CPU:-1}"
NGINX_KEEPALIVE="${NGINX_KEEPALIVE:-256}"
GATEWAY_BIN="${GATEWAY_BIN:-$ROOT/bazel-bin/gateway/gateway}"
RESULTS_DIR="${RESULTS_DIR:-$BENCH_DIR/results}"
DO_SETUP=1
DO_BUILD=1

while [ $# -gt 0 ]; do
  case "$1" in
    --quick) DURATION=3; WARMUP=0 ;;
    --duration) DURATION="${2:?}"; shift ;;
    --no-setup) DO_SETUP=0 ;;
    --no-build) DO_BUILD=0 ;;
    -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "h2.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
[[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || die "DURATION must be a positive whole number of seconds"
if [ "$DO_SETUP" = 1 ]; then bash "$ROOT/scripts/setup.sh"; fi
require_tools h2load curl taskset timeout nginx openssl

make_workdir
bash "$ROOT/scripts/make_test_certs.sh" "$TMP/certs" >/dev/null
render h2-proxy.nginx.conf.in h2-nginx.conf
render h2-gateway.toml.in h2-gateway.toml
build_gateway "$DO_BUILD"
setup_pinning
check_ports_free "$UPSTREAM_PORT" "$NGINX_PORT" "$GATEWAY_PORT"
start_upstream

# Waits until https://localhost:PORT/small answers 200 over HTTP/2 with the 13-byte body.
wait_h2() {
  local port="$1" pid="$2" name="$3" got=""
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { log "$name exited; its stderr:"; tail -n 20 "$TMP/$name.err" >&2; return 1; }
    got="$(curl -s --http2 --cacert "$TMP/certs/ca.pem" --resolve "localhost:$port:127.0.0.1" \
      -o /dev/null --max-time 1 -w '%{http_version} %{http_code} %{size_download}' \
      "https://localhost:$port/small" || true)"
    [ "$got" = "2 200 13" ] && return 0
    sleep 0.1
  done
  log "$name did not answer https://localhost:$port/small over HTTP/2 (last: '$got')"
  return 1
}

mkdir -p "$RESULTS_DIR"
OUT="$RESULTS_DIR/h2-$(date +%Y%m%d-%H%M%S).tsv"
printf 'target\trequests_per_s\tmean\tp50\tp99\tp99.9\tsucceeded\tfailed\n' >"$OUT"
NGINX_RPS=""
NGINX_P99=""
GW_P99=""
for target in nginx gateway; do
  case "$target" in
    nginx)
      port="$NGINX_PORT"
      start_server h2-nginx nginx -e "$TMP/h2-nginx-error.log" -p "$TMP" -c "$TMP/h2-nginx.conf"
      ;;
    gateway)
      port="$GATEWAY_PORT"
      [ "${GATEWAY_OK:-0}" = 1 ] || { log "gateway: SKIPPED"; continue; }
      start_server h2-gateway "$GATEWAY_BIN" --config "$TMP/h2-gateway.toml"
      ;;
  esac
  pid="$STARTED_PID"
  if ! wait_h2 "$port" "$pid" "h2-$target"; then
    stop_pid "$pid"
    continue
  fi
  url="https://127.0.0.1:$port/small"
  if [ "$WARMUP" -gt 0 ]; then
    run_load /dev/null "$WARMUP" h2load -c"$CONNECTIONS" -m"$STREAMS" -D"$WARMUP" "$url"
  fi
  log "$target: h2load -c$CONNECTIONS -m$STREAMS for ${DURATION}s"
  run_load "$TMP/h2load-$target.txt" "$DURATION" h2load -c"$CONNECTIONS" -m"$STREAMS" \
    -D"$DURATION" --log-file="$TMP/h2load-$target.log" "$url"
  stop_pid "$pid"
  # Percentiles from h2load's per-request log (third column: microseconds to the end
  # of the response); h2load itself prints only min/max/mean.
  read -r p50 p99 p999 < <(cut -f3 "$TMP/h2load-$target.log" | sort -n | awk '
    function at(p,  i) { i = int(NR * p); if (i < NR * p) i++; if (i < 1) i = 1; return v[i] / 1000 }
    { v[NR] = $1 }
    END { if (NR == 0) print "- - -"; else printf "%.2fms %.2fms %.2fms\n", at(0.5), at(0.99), at(0.999) }')
  rps="$(awk '/^finished in/ { gsub(/,/, ""); for (i = 1; i <= NF; i++) if ($(i + 1) == "req/s") print $i }' \
    "$TMP/h2load-$target.txt")"
  mean="$(awk '/^time for request:/ { print $6 }' "$TMP/h2load-$target.txt")"  # min max mean sd
  ok="$(awk '/^requests:/ { print $8 }' "$TMP/h2load-$target.txt")"
  failed="$(awk '/^requests:/ { print $10 }' "$TMP/h2load-$target.txt")"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "${rps:-0}" "${mean:--}" "$p50" "$p99" \
    "$p999" "${ok:-0}" "${failed:-?}" >>"$OUT"
  if [ "$target" = nginx ]; then
    NGINX_RPS="${rps:-0}"
    NGINX_P99="${p99%ms}"
  else
    GW_P99="${p99%ms}"
  fi
done

echo
echo "HTTP/2 over TLS $(date -u +%FT%TZ): h2load -c$CONNECTIONS -m$STREAMS, ${DURATION}s;" \
  "h2load on CPU $WRK_CPU, servers on CPU $SERVER_CPU"
column -t -s $'\t' "$OUT"
GW_RPS="$(awk -F'\t' '$1 == "gateway" { print $2 }' "$OUT")"
if [ -n "$NGINX_RPS" ] && [ -n "$GW_RPS" ]; then
  awk -v g="$GW_RPS" -v n="$NGINX_RPS" 'BEGIN { if (n > 0) printf "gateway / nginx requests/s: %.2f\n", g / n }'
fi
if [[ "${NGINX_P99:-}" =~ ^[0-9.]+$ && "${GW_P99:-}" =~ ^[0-9.]+$ ]]; then
  awk -v g="$GW_P99" -v n="$NGINX_P99" 'BEGIN { if (n > 0) printf "gateway / nginx p99: %.2f\n", g / n }'
fi
echo "Results: ${OUT#"$ROOT"/}. Shared, noisy machine: compare the ratio within this run."
