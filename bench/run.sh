#!/usr/bin/env bash
# Compares, in one run and with the same wrk settings, requests/s and latency of:
#   direct   wrk straight to the upstream nginx (the ceiling)
#   nginx    nginx as a keep-alive reverse proxy
#   haproxy  HAProxy in HTTP mode with connection reuse
#   gateway  our gateway, quick mode, 1 worker
# for a 13-byte body (/small) and a 16 KiB body (/16k). See bench/README.md.
#
# Usage: bench/run.sh [--quick] [--targets LIST] [--bodies LIST] [--duration SECONDS]
#                     [--warmup SECONDS] [--no-setup] [--no-build]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_DIR="$ROOT/bench"
ALL_TARGETS="direct,nginx,haproxy,gateway"

DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
CONNECTIONS="${CONNECTIONS:-256}"
WRK_THREADS="${WRK_THREADS:-1}"
TARGETS="${TARGETS:-$ALL_TARGETS}"
BODIES="${BODIES:-small,16k}"
PORT_BASE="${BENCH_PORT_BASE:-18080}"
UPSTREAM_PORT="${UPSTREAM_PORT:-$PORT_BASE}"
NGINX_PORT="${NGINX_PORT:-$((PORT_BASE + 1))}"
HAPROXY_PORT="${HAPROXY_PORT:-$((PORT_BASE + 2))}"
GATEWAY_PORT="${GATEWAY_PORT:-$((PORT_BASE + 3))}"
WRK_CPU="${WRK_CPU:-0}"
SERVER_CPU="${SERVER_CPU:-1}"
# Idle upstream connections nginx may keep. Below the number of wrk connections nginx
# closes and reopens upstream connections all the time (keepalive 64 with -c256: about one
# new upstream connection per two requests, half the requests/s), so by default it equals
# the connection count: every target keeps its upstream connections warm.
NGINX_KEEPALIVE="${NGINX_KEEPALIVE:-$CONNECTIONS}"
GATEWAY_BIN="${GATEWAY_BIN:-$ROOT/bazel-bin/gateway/gateway}"
RESULTS_DIR="${RESULTS_DIR:-$BENCH_DIR/results}"
DO_SETUP=1
DO_BUILD=1

usage() {
  cat <<EOF
Usage: bench/run.sh [options]
  --quick              smoke run: DURATION=3, no warm-up
  --targets LIST       comma-separated subset of $ALL_TARGETS (default: all)
  --bodies LIST        comma-separated subset of small,16k (default: both)
  --duration SECONDS   measured wrk run per target and body (default 10)
  --warmup SECONDS     wrk warm-up before each measured run (default 2; 0 = none)
  --no-setup           do not run scripts/setup.sh
  --no-build           do not build the gateway; use \$GATEWAY_BIN if it exists
Environment: DURATION WARMUP CONNECTIONS WRK_THREADS TARGETS BODIES
  BENCH_PORT_BASE (default 18080: upstream, nginx, haproxy, gateway on +0..+3)
  UPSTREAM_PORT NGINX_PORT HAPROXY_PORT GATEWAY_PORT WRK_CPU SERVER_CPU GATEWAY_BIN
  NGINX_KEEPALIVE (idle upstream connections nginx keeps; default \$CONNECTIONS)
  RESULTS_DIR (default bench/results)
  KEEP_TMP=1 (keep the temp dir with configs, logs and raw wrk output)
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --quick) DURATION=3; WARMUP=0 ;;
    --targets) TARGETS="${2:?--targets needs a list}"; shift ;;
    --targets=*) TARGETS="${1#*=}" ;;
    --bodies) BODIES="${2:?--bodies needs a list}"; shift ;;
    --bodies=*) BODIES="${1#*=}" ;;
    --duration) DURATION="${2:?--duration needs seconds}"; shift ;;
    --duration=*) DURATION="${1#*=}" ;;
    --warmup) WARMUP="${2:?--warmup needs seconds}"; shift ;;
    --warmup=*) WARMUP="${1#*=}" ;;
    --no-setup) DO_SETUP=0 ;;
    --no-build) DO_BUILD=0 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

IFS=',' read -r -a TARGET_LIST <<<"$TARGETS"
IFS=',' read -r -a BODY_LIST <<<"$BODIES"
for t in "${TARGET_LIST[@]}"; do
  case "$t" in direct | nginx | haproxy | gateway) ;; *) die "unknown target '$t' (known: $ALL_TARGETS)" ;; esac
done
for b in "${BODY_LIST[@]}"; do
  case "$b" in small | 16k) ;; *) die "unknown body '$b' (known: small,16k)" ;; esac
done
[[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || die "DURATION must be a positive whole number of seconds"
[[ "$WARMUP" =~ ^[0-9]+$ ]] || die "WARMUP must be a whole number of seconds"
has_target() { [[ ",$TARGETS," == *",$1,"* ]]; }

if [ "$DO_SETUP" = 1 ]; then
  log "installing dependencies (scripts/setup.sh)"
  bash "$ROOT/scripts/setup.sh"
fi
require_tools wrk curl taskset timeout nginx
has_target haproxy && require_tools haproxy

make_workdir
if has_target gateway; then build_gateway "$DO_BUILD"; fi
setup_pinning
check_ports_free "$UPSTREAM_PORT" "$NGINX_PORT" "$HAPROXY_PORT" "$GATEWAY_PORT"
start_upstream

to_ms() {  # wrk latency ("812.00us", "1.23ms", "2.01s", "1.50m") -> milliseconds
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
    printf "%.3f", n }'
}

# Runs wrk against URL; sets RPS, P50, P99 (ms), REQUESTS and ERRORS.
run_wrk() {
  local url="$1" out="$2"
  run_load "$out" "$DURATION" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$url"
  RPS="$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")"
  P50="$(to_ms "$(awk '$1 == "50%" {print $2; exit}' "$out")")"
  P99="$(to_ms "$(awk '$1 == "99%" {print $2; exit}' "$out")")"
  REQUESTS="$(awk '/ requests in / {print $1; exit}' "$out")"
  ERRORS="$(awk '
    /Socket errors:/ { gsub(/,/, ""); e += $4 + $6 + $8 + $10 }
    /Non-2xx or 3xx responses:/ { e += $5 }
    END { print e + 0 }' "$out")"
  if [ -z "$RPS" ]; then
    log "wrk produced no result for $url:"
    tail -n 5 "$out" >&2
    RPS=0
  fi
}

# ---------------------------------------------------------------------------------------
# The measurements: for each body, every target in turn (interleaved, so slow drift of
# the machine spreads over all targets instead of penalising the last one).
mkdir -p "$RESULTS_DIR"
STAMP="$(date +%Y%m%d-%H%M%S)"
RAW="$TMP/results.tsv"
: >"$RAW"

log "duration ${DURATION}s, warm-up ${WARMUP}s, wrk -t$WRK_THREADS -c$CONNECTIONS, targets $TARGETS, bodies $BODIES"
for body in "${BODY_LIST[@]}"; do
  size=13
  [ "$body" = 16k ] && size=16384
  for target in "${TARGET_LIST[@]}"; do
    if ! start_target "$target"; then
      log "$target: SKIPPED"
      [ -n "$TARGET_PID" ] && stop_pid "$TARGET_PID"
      printf '%s\t%s\tskipped\n' "$target" "$body" >>"$RAW"
      continue
    fi
    url="http://127.0.0.1:$TARGET_PORT/$body"
    if ! check_body "$url" "$size"; then
      log "$target: wrong answer for /$body, SKIPPED"
      [ -n "$TARGET_PID" ] && stop_pid "$TARGET_PID"
      printf '%s\t%s\tskipped\n' "$target" "$body" >>"$RAW"
      continue
    fi
    if [ "$WARMUP" -gt 0 ]; then
      run_load /dev/null "$WARMUP" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" "$url"
    fi
    log "$target /$body: measuring ${DURATION}s"
    run_wrk "$url" "$TMP/wrk-$target-$body.txt"
    rss="-"
    if [ -n "$RSS_PID" ]; then rss="$(peak_rss_kib "$RSS_PID")"; rss="${rss:--}"; fi
    [ -n "$TARGET_PID" ] && stop_pid "$TARGET_PID"
    printf '%s\t%s\tok\t%s\t%s\t%s\t%s\t%s\t%s\n' \
      "$target" "$body" "$RPS" "$P50" "$P99" "$rss" "$ERRORS" "${REQUESTS:-0}" >>"$RAW"
  done
done

# ---------------------------------------------------------------------------------------
# Report: ratios are against nginx for the same body, measured in this same run.
OUT="$RESULTS_DIR/$STAMP.tsv"
awk -F'\t' -v OFS='\t' -v dur="$DURATION" -v conns="$CONNECTIONS" '
  { row[NR] = $0; if ($1 == "nginx" && $3 == "ok") base[$2] = $4 }
  END {
    print "target", "body", "status", "requests_per_s", "p50_ms", "p99_ms", "ratio_vs_nginx",
          "peak_rss_kib", "errors", "requests", "duration_s", "connections"
    for (i = 1; i <= NR; i++) {
      split(row[i], f, "\t")
      if (f[3] != "ok") { print f[1], f[2], f[3], "", "", "", "", "", "", "", dur, conns; continue }
      ratio = (f[2] in base && base[f[2]] > 0) ? sprintf("%.2f", f[4] / base[f[2]]) : "-"
      print f[1], f[2], "ok", f[4], f[5], f[6], ratio, f[7], f[8], f[9], dur, conns
    }
  }' "$RAW" >"$OUT"
cp "$OUT" "$RESULTS_DIR/latest.tsv"

echo
echo "Gateway benchmark $(date -u +%FT%TZ): wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s," \
  "warm-up ${WARMUP}s; wrk on CPU $WRK_CPU, proxy + upstream on CPU $SERVER_CPU"
echo "$(nginx -v 2>&1 | sed 's/^nginx version: //'), $(haproxy -v 2>/dev/null | awk 'NR==1 {print "HAProxy " $3}'), $(wrk --version 2>&1 | awk 'NR==1 {print "wrk " $2}')"
echo
awk -F'\t' 'NR == 1 {
    printf "%-8s %-6s %12s %10s %10s %9s %14s %8s\n", "target", "body", "requests/s", "p50 ms", "p99 ms", "vs nginx", "peak RSS KiB", "errors"
    next }
  $3 != "ok" { printf "%-8s %-6s %12s\n", $1, $2, "skipped"; next }
  { printf "%-8s %-6s %12s %10s %10s %9s %14s %8s\n", $1, $2, $4, $5, $6, $7, $8, $9 }' "$OUT"
echo
echo "Results: ${OUT#"$ROOT"/} (and ${RESULTS_DIR#"$ROOT"/}/latest.tsv)." \
  "Compare ratios within one run, not absolute figures across runs."
if awk -F'\t' 'NR > 1 && $3 == "ok" && $9 > 0 {found = 1} END {exit !found}' "$OUT"; then
  log "warning: some runs had socket errors or non-2xx responses (errors column); their figures are suspect"
fi
