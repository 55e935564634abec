#!/usr/bin/env bash
# User-space instructions per proxied request, counted by valgrind's callgrind: a figure
# that, unlike requests/s, hardly moves with the noise of a shared machine.
#
# For each target, the proxy (1 worker) runs twice under callgrind, loaded by wrk once
# for SHORT seconds and once for LONG seconds. Start-up, the 256 connection set-ups and
# shutdown cost the same in both runs, so
#     instructions per request = (Ir_long - Ir_short) / (requests_long - requests_short)
# See bench/README.md.
#
# Usage: bench/instructions.sh [--targets gateway,nginx,haproxy] [--body small|16k]
#                              [--short SECONDS] [--long SECONDS] [--no-setup] [--no-build]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_DIR="$ROOT/bench"
ALL_TARGETS="gateway,nginx,haproxy"

TARGETS="${TARGETS:-gateway,nginx}"
BODY="${BODY:-small}"
SHORT="${SHORT:-5}"
LONG="${LONG:-15}"
CONNECTIONS="${CONNECTIONS:-256}"
PORT_BASE="${BENCH_PORT_BASE:-18080}"
UPSTREAM_PORT="${UPSTREAM_PORT:-$PORT_BASE}"
NGINX_PORT="${NGINX_PORT:-$((PORT_BASE + 1))}"
HAPROXY_PORT="${HAPROXY_PORT:-$((PORT_BASE + 2))}"
GATEWAY_PORT="${GATEWAY_PORT:-$((PORT_BASE + 3))}"
NGINX_KEEPALIVE="${NGINX_KEEPALIVE:-$CONNECTIONS}"
# wrk and the upstream share one CPU; the proxy under valgrind (~50x slower) gets the other.
WRK_CPU="${WRK_CPU:-0}"
SERVER_CPU="${SERVER_CPU:-1}"
GATEWAY_BIN="${GATEWAY_BIN:-$ROOT/bazel-bin/gateway/gateway}"
RESULTS_DIR="${RESULTS_DIR:-$BENCH_DIR/results}"
DO_SETUP=1
DO_BUILD=1

usage() {
  cat <<EOF
Usage: bench/instructions.sh [options]
  --targets LIST     comma-separated subset of $ALL_TARGETS (default: gateway,nginx)
  --body small|16k   the response body to proxy (default small)
  --short SECONDS    the short wrk run (default 5)
  --long SECONDS     the long wrk run (default 15)
  --no-setup         do not run scripts/setup.sh (valgrind is still installed if missing)
  --no-build         do not build the gateway; use \$GATEWAY_BIN if it exists
Environment: TARGETS BODY SHORT LONG CONNECTIONS BENCH_PORT_BASE UPSTREAM_PORT NGINX_PORT
  HAPROXY_PORT GATEWAY_PORT NGINX_KEEPALIVE WRK_CPU SERVER_CPU GATEWAY_BIN RESULTS_DIR KEEP_TMP=1
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --targets) TARGETS="${2:?--targets needs a list}"; shift ;;
    --targets=*) TARGETS="${1#*=}" ;;
    --body) BODY="${2:?--body needs small or 16k}"; shift ;;
    --body=*) BODY="${1#*=}" ;;
    --short) SHORT="${2:?--short needs seconds}"; shift ;;
    --short=*) SHORT="${1#*=}" ;;
    --long) LONG="${2:?--long needs seconds}"; shift ;;
    --long=*) LONG="${1#*=}" ;;
    --no-setup) DO_SETUP=0 ;;
    --no-build) DO_BUILD=0 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "instructions.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
# callgrind writes its counts when the process exits; that can take a while.
STOP_GRACE_TENTHS=600

IFS=',' read -r -a TARGET_LIST <<<"$TARGETS"
for t in "${TARGET_LIST[@]}"; do
  case "$t" in nginx | haproxy | gateway) ;; *) die "unknown target '$t' (known: $ALL_TARGETS)" ;; esac
done
case "$BODY" in small) SIZE=13 ;; 16k) SIZE=16384 ;; *) die "unknown body '$BODY' (known: small, 16k)" ;; esac
[[ "$SHORT" =~ ^[1-9][0-9]*$ && "$LONG" =~ ^[1-9][0-9]*$ ]] || die "--short and --long take whole seconds"
[ "$LONG" -gt "$SHORT" ] || die "--long must be longer than --short"
has_target() { [[ ",$TARGETS," == *",$1,"* ]]; }

if [ "$DO_SETUP" = 1 ]; then
  log "installing dependencies (scripts/setup.sh)"
  bash "$ROOT/scripts/setup.sh"
fi
if ! command -v valgrind >/dev/null; then
  log "installing valgrind"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends valgrind >/dev/null
fi
require_tools valgrind wrk curl taskset timeout nginx
has_target haproxy && require_tools haproxy

make_workdir
if has_target gateway; then build_gateway "$DO_BUILD"; fi
setup_pinning
check_ports_free "$UPSTREAM_PORT" "$NGINX_PORT" "$HAPROXY_PORT" "$GATEWAY_PORT"
# The upstream runs beside wrk, so the proxy under valgrind has a CPU to itself.
SERVER_PIN=("${PIN_SERVER[@]}")
PIN_SERVER=("${PIN_WRK[@]}")
start_upstream
PIN_SERVER=("${SERVER_PIN[@]}")

# One run: the target under callgrind, wrk for SECONDS, then a clean stop so callgrind
# writes its totals. Sets M_IR, M_REQUESTS, M_ERRORS; non-zero on failure.
NGINX_SINGLE_PROCESS=1  # nginx without a master: the counted process does the work
measure() {
  local target="$1" seconds="$2"
  local tag="$target-${seconds}s"
  local wrap=(valgrind --tool=callgrind "--callgrind-out-file=$TMP/callgrind.$tag.%p"
    "--log-file=$TMP/valgrind.$tag.log")
  if ! start_target "$target" 60 "${wrap[@]}"; then
    if [ -n "$TARGET_PID" ]; then stop_pid "$TARGET_PID"; fi
    return 1
  fi
  if ! check_body "http://127.0.0.1:$TARGET_PORT/$BODY" "$SIZE"; then
    stop_pid "$TARGET_PID"
    return 1
  fi
  log "$target: under callgrind, wrk ${seconds}s"
  local out="$TMP/wrk-$tag.txt"
  run_load "$out" "$seconds" wrk -t1 -c"$CONNECTIONS" -d"${seconds}s" --timeout 10s \
    "http://127.0.0.1:$TARGET_PORT/$BODY"
  stop_pid "$TARGET_PID"
  M_REQUESTS="$(awk '/ requests in / {print $1; exit}' "$out")"
  M_ERRORS="$(awk '
    /Socket errors:/ { gsub(/,/, ""); e += $4 + $6 + $8 + $10 }
    /Non-2xx or 3xx responses:/ { e += $5 }
    END { print e + 0 }' "$out")"
  # Sum over every file the run wrote (one per process).
  M_IR="$(cat "$TMP"/callgrind."$tag".* 2>/dev/null |
    awk '/^totals:/ {s += $2; n++} END {if (n) printf "%.0f", s}')"
  if [ -z "$M_REQUESTS" ] || [ -z "$M_IR" ]; then
    log "$target: no result (requests '$M_REQUESTS', instructions '$M_IR'); valgrind log:"
    tail -n 10 "$TMP/valgrind.$tag.log" >&2 || true
    return 1
  fi
}

mkdir -p "$RESULTS_DIR"
STAMP="$(date +%Y%m%d-%H%M%S)"
OUT="$RESULTS_DIR/instructions-$STAMP.tsv"
printf 'target\tbody\tshort_s\tlong_s\trequests_short\trequests_long\tinstructions_short\tinstructions_long\tinstructions_per_request\terrors\n' >"$OUT"

for target in "${TARGET_LIST[@]}"; do
  if ! measure "$target" "$SHORT"; then
    log "$target: SKIPPED"
    printf '%s\t%s\t%s\t%s\tskipped\n' "$target" "$BODY" "$SHORT" "$LONG" >>"$OUT"
    continue
  fi
  ir_s="$M_IR" req_s="$M_REQUESTS" err_s="$M_ERRORS"
  if ! measure "$target" "$LONG"; then
    log "$target: SKIPPED"
    printf '%s\t%s\t%s\t%s\tskipped\n' "$target" "$BODY" "$SHORT" "$LONG" >>"$OUT"
    continue
  fi
  ir_l="$M_IR" req_l="$M_REQUESTS" err_l="$M_ERRORS"
  per="$(awk -v a="$ir_s" -v b="$ir_l" -v x="$req_s" -v y="$req_l" \
    'BEGIN { if (y > x) printf "%.0f", (b - a) / (y - x); else print "-" }')"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$BODY" "$SHORT" "$LONG" \
    "$req_s" "$req_l" "$ir_s" "$ir_l" "$per" "$((err_s + err_l))" >>"$OUT"
done
cp "$OUT" "$RESULTS_DIR/instructions-latest.tsv"

echo
echo "Instructions per request (callgrind, slope between wrk ${SHORT}s and ${LONG}s, -c$CONNECTIONS, /$BODY)"
echo
awk -F'\t' 'NR == 1 {
    printf "%-8s %14s %14s %16s %16s %12s %7s\n", "target", "requests short", "requests long", "Ir short", "Ir long", "Ir/request", "errors"
    next }
  $5 == "skipped" { printf "%-8s %14s\n", $1, "skipped"; next }
  { printf "%-8s %14s %14s %16s %16s %12s %7s\n", $1, $5, $6, $7, $8, $9, $10 }' "$OUT"
echo
echo "Results: ${OUT#"$ROOT"/} (and ${RESULTS_DIR#"$ROOT"/}/instructions-latest.tsv)"
