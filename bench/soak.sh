#!/usr/bin/env bash
# A bounded fault soak of the real gateway (issue 8): 2 workers on loopback, steady
# client load (a pool of Python keep-alive clients, each request with its own id),
# while a driver kills and restarts upstreams, makes others hang, reset, send garbage
# or an unsolicited extra response, reloads the config (SIGHUP and POST /config/reload)
# and flips blue-green (admin API and file). Stops by itself after DURATION seconds,
# then checks the gateway is alive and answers, its open fds and RSS are back near the
# baseline and it exits 0 on SIGTERM. Prints a summary; exits 1 on any violation.
# The logic is tests/integration/soak.py (tests/integration/test_soak.py runs 20 s of it
# in the test suite).
#
# Usage: bench/soak.sh [--duration SECONDS (default 300)] [--clients N (default 16)]
#                      [--no-setup] [--no-build]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DURATION=300
CLIENTS=16
DO_SETUP=1
DO_BUILD=1
RESULTS_DIR="${RESULTS_DIR:-$ROOT/bench/results}"

while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION="${2:?--duration needs seconds}"; shift ;;
    --duration=*) DURATION="${1#*=}" ;;
    --clients) CLIENTS="${2:?--clients needs a number}"; shift ;;
    --clients=*) CLIENTS="${1#*=}" ;;
    --no-setup) DO_SETUP=0 ;;
    --no-build) DO_BUILD=0 ;;
    -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
[[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || { echo "soak.sh: --duration must be whole seconds" >&2; exit 2; }

cd "$ROOT"
[ "$DO_SETUP" = 1 ] && bash scripts/setup.sh
if [ "$DO_BUILD" = 1 ]; then
  bazel build -c opt //gateway:gateway >&2
  GATEWAY_BIN="$ROOT/bazel-bin/gateway/gateway"
fi
GATEWAY_BIN="${GATEWAY_BIN:-$ROOT/bazel-bin/gateway/gateway}"
[ -x "$GATEWAY_BIN" ] || { echo "soak.sh: no gateway binary at $GATEWAY_BIN" >&2; exit 1; }

mkdir -p "$RESULTS_DIR"
out="$RESULTS_DIR/soak-$(date +%Y%m%d-%H%M%S).txt"
# soak.py bounds itself: DURATION, then at most ~1 min of checks; `timeout` is a backstop.
# It stops only the gateway and the upstreams it started (by PID / its own sockets).
status=0
timeout --signal=TERM --kill-after=10 $((DURATION + 180)) \
  python3 -B tests/integration/soak.py --gateway "$GATEWAY_BIN" --duration "$DURATION" \
  --clients "$CLIENTS" 2>&1 | tee "$out" || status=$?
echo "summary saved in ${out#"$ROOT"/}"
exit "$status"
