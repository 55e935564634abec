#!/usr/bin/env bash
# What load-balancing policies cost: one upstream nginx listening on 4 ports (a pool of 4
# endpoints), and in one run, with the same wrk settings:
#   nginx        nginx reverse proxy, round robin over the 4 (upstream keepalive)
#   gw-rr        the gateway (1 worker), lb = "round_robin"
#   gw-lr        the gateway (1 worker), lb = "least_request"
#   gw-wrr       the gateway (1 worker), lb = "weighted_round_robin", weights 1:1:1:1
# for the 13-byte body. Reuses bench/lib.sh; see bench/README.md for the layout.
#
# Usage: bench/lb.sh [--quick] [--duration SECONDS] [--warmup SECONDS] [--rounds N]
#                    [--no-setup] [--no-build]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_DIR="$ROOT/bench"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
ROUNDS="${ROUNDS:-1}"
CONNECTIONS="${CONNECTIONS:-256}"
WRK_THREADS="${WRK_THREADS:-1}"
PORT_BASE="${BENCH_PORT_BASE:-18180}"
UPSTREAM_PORT="$PORT_BASE"  # endpoints: PORT_BASE .. PORT_BASE+3
NGINX_PORT="$((PORT_BASE + 4))"
HAPROXY_PORT="$((PORT_BASE + 5))"  # unused; lib.sh renders its config anyway
GATEWAY_PORT="$((PORT_BASE + 6))"
WRK_CPU="${WRK_CPU:-0}"
SERVER_CPU="${SERVER_CPU:-1}"
NGINX_KEEPALIVE="${NGINX_KEEPALIVE:-$CONNECTIONS}"
GATEWAY_BIN="${GATEWAY_BIN:-$ROOT/bazel-bin/gateway/gateway}"
DO_SETUP=1
DO_BUILD=1
TARGETS=(nginx gw-rr gw-lr gw-wrr)

while [ $# -gt 0 ]; do
  case "$1" in
    --quick) DURATION=3; WARMUP=0 ;;
    --duration) DURATION="${2:?}"; shift ;;
    --warmup) WARMUP="${2:?}"; shift ;;
    --rounds) ROUNDS="${2:?}"; shift ;;
    --no-setup) DO_SETUP=0 ;;
    --no-build) DO_BUILD=0 ;;
    -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "lb.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

[ "$DO_SETUP" = 1 ] && bash "$ROOT/scripts/setup.sh"
require_tools wrk curl taskset timeout nginx
make_workdir
build_gateway "$DO_BUILD"
[ "$GATEWAY_OK" = 1 ] || die "no gateway binary"
setup_pinning
ENDPOINT_PORTS=("$UPSTREAM_PORT" "$((PORT_BASE + 1))" "$((PORT_BASE + 2))" "$((PORT_BASE + 3))")
check_ports_free "${ENDPOINT_PORTS[@]}" "$NGINX_PORT" "$GATEWAY_PORT"

# The rendered single-endpoint configs, widened to 4 endpoints.
listens=""
servers=""
endpoints=""
for p in "${ENDPOINT_PORTS[@]}"; do
  listens+="        listen 127.0.0.1:$p backlog=4096;\n"
  servers+="        server 127.0.0.1:$p;\n"
  endpoints+="${endpoints:+, }\"127.0.0.1:$p\""
done
sed -i "s|^ *listen 127.0.0.1:$UPSTREAM_PORT backlog=4096;|$listens|" "$TMP/upstream.conf"
sed -i "s|^ *server 127.0.0.1:$UPSTREAM_PORT;|$servers|" "$TMP/proxy-nginx.conf"
start_upstream
for p in "${ENDPOINT_PORTS[@]}"; do
  check_body "http://127.0.0.1:$p/small" 13 || die "endpoint $p is wrong"
done

gateway_config() {  # gateway_config POLICY > file
  cat <<TOML
workers = 1
[admin]
listen = ""
[[listeners]]
name = "bench"
listen = "127.0.0.1:$GATEWAY_PORT"
[[routes]]
name = "all"
service = "bench"
[services.bench]
lb = "$1"
[services.bench.pools.main]
endpoints = [$endpoints]
TOML
}

start_lb_target() {  # sets TARGET_PORT TARGET_PID
  case "$1" in
    nginx) start_target nginx ;;
    gw-*)
      local policy
      case "$1" in
        gw-rr) policy=round_robin ;;
        gw-lr) policy=least_request ;;
        gw-wrr) policy=weighted_round_robin ;;
      esac
      gateway_config "$policy" >"$TMP/$1.toml"
      start_server "$1" "$GATEWAY_BIN" --config "$TMP/$1.toml"
      TARGET_PID="$STARTED_PID"
      TARGET_PORT="$GATEWAY_PORT"
      wait_ready "$1" "$TARGET_PID" 15 || return 1
      wait_http "$TARGET_PORT" "$TARGET_PID" "$1" 10 || return 1
      ;;
  esac
}

RAW="$TMP/lb.tsv"
: >"$RAW"
log "duration ${DURATION}s, warm-up ${WARMUP}s, rounds $ROUNDS, wrk -t$WRK_THREADS -c$CONNECTIONS, 4 endpoints"
for round in $(seq 1 "$ROUNDS"); do
  for target in "${TARGETS[@]}"; do
    TARGET_PID=""
    start_lb_target "$target" || die "$target did not start"
    url="http://127.0.0.1:$TARGET_PORT/small"
    check_body "$url" 13 || die "$target answered wrongly"
    [ "$WARMUP" -gt 0 ] && run_load /dev/null "$WARMUP" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" "$url"
    out="$TMP/wrk-$target-$round.txt"
    log "$target: measuring ${DURATION}s (round $round)"
    run_load "$out" "$DURATION" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$url"
    rps="$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")"
    errors="$(awk '/Socket errors:/ {gsub(/,/, ""); e += $4 + $6 + $8 + $10} /Non-2xx or 3xx/ {e += $5} END {print e + 0}' "$out")"
    stop_pid "$TARGET_PID"
    printf '%s\t%s\t%s\t%s\n' "$target" "$round" "${rps:-0}" "$errors" >>"$RAW"
  done
done

echo
echo "LB policy benchmark $(date -u +%FT%TZ): 4 endpoints (one nginx, 4 ports), wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s, $ROUNDS round(s), interleaved; shared noisy machine"
awk -F'\t' '
  { sum[$1] += $3; n[$1]++; err[$1] += $4 }
  END {
    split("nginx gw-rr gw-lr gw-wrr", order, " ")
    printf "%-8s %12s %10s %10s %8s\n", "target", "requests/s", "vs nginx", "vs gw-rr", "errors"
    for (i = 1; i <= 4; i++) {
      t = order[i]; m = sum[t] / n[t]
      printf "%-8s %12.0f %10.3f %10.3f %8d\n", t, m, m / (sum["nginx"] / n["nginx"]),
             m / (sum["gw-rr"] / n["gw-rr"]), err[t]
    }
  }' "$RAW"
