#!/usr/bin/env bash
# The cost of one new TLS connection, counted rather than timed, so the figure holds on a
# shared, noisy machine: the gateway vs nginx with the same ECDSA P-256 certificate,
# 1 worker each, in front of the same upstream. Each connection is a full handshake (no
# session resumption: a fresh client context per connection), one GET /small, and a
# close.
#   instructions  user-space instructions per connection (callgrind: the slope between a
#                 run of N1 and a run of N2 connections, so start-up and shutdown cancel)
#   syscalls      system calls per connection (strace -c over N2 connections)
#
# Usage: bench/tls_handshakes.sh [--n1 N] [--n2 N] [--no-setup] [--no-build]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_DIR="$ROOT/bench"
N1="${N1:-50}"
N2="${N2:-250}"
PORT_BASE="${BENCH_PORT_BASE:-18280}"
UPSTREAM_PORT="$PORT_BASE"
NGINX_PORT="$((PORT_BASE + 1))"
HAPROXY_PORT="$((PORT_BASE + 2))"
GATEWAY_PORT="$((PORT_BASE + 3))"
NGINX_KEEPALIVE=64
WRK_CPU="${WRK_CPU:-0}"
SERVER_CPU="${SERVER_CPU:-1}"
GATEWAY_BIN="${GATEWAY_BIN:-$ROOT/bazel-bin/gateway/gateway}"
DO_SETUP=1
DO_BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --n1) N1="${2:?}"; shift ;;
    --n2) N2="${2:?}"; shift ;;
    --no-setup) DO_SETUP=0 ;;
    --no-build) DO_BUILD=0 ;;
    -h | --help) sed -n 2,13p "$0"; exit 0 ;;
    *) echo "tls_handshakes.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
[ "$N2" -gt "$N1" ] || { echo "--n2 must be larger than --n1" >&2; exit 2; }

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
[ "$DO_SETUP" = 1 ] && bash "$ROOT/scripts/setup.sh"
command -v valgrind >/dev/null || { [ "$(id -u)" -eq 0 ] && apt-get install -y -qq valgrind >/dev/null; }
require_tools valgrind strace nginx python3 openssl taskset
make_workdir
bash "$ROOT/scripts/make_test_certs.sh" "$TMP/certs" >/dev/null
render tls-proxy.nginx.conf.in tls-nginx.conf
render tls-gateway.toml.in tls-gateway.toml
build_gateway "$DO_BUILD"
[ "$GATEWAY_OK" = 1 ] || die "no gateway binary"
setup_pinning
check_ports_free "$UPSTREAM_PORT" "$NGINX_PORT" "$GATEWAY_PORT"
# The upstream and the client share one CPU; the proxy gets the other.
SERVER_PIN=("${PIN_SERVER[@]}")
PIN_SERVER=("${PIN_WRK[@]}")
start_upstream
PIN_SERVER=("${SERVER_PIN[@]}")

cat >"$TMP/client.py" <<'PY'
import socket, ssl, sys
port, n, ca = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ok = 0
for _ in range(n):
    ctx = ssl.create_default_context(cafile=ca)  # fresh: no session to resume
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"GET /small HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                data += d
            ok += data.startswith(b"HTTP/1.1 200") and data.endswith(b"\n") and len(data) > 13
print(ok)
PY

proxy_command() {  # proxy_command TARGET: sets CMD and PORT
  case "$1" in
    gateway) CMD=("$GATEWAY_BIN" --config "$TMP/tls-gateway.toml"); PORT="$GATEWAY_PORT" ;;
    nginx) CMD=(nginx -g "master_process off;" -e "$TMP/tls-nginx-error.log" -p "$TMP" -c "$TMP/tls-nginx.conf"); PORT="$NGINX_PORT" ;;
  esac
}

# run TARGET N WRAPPER...: the proxy under WRAPPER, N connections, a clean stop.
run() {
  local target="$1" n="$2"; shift 2
  proxy_command "$target"
  start_server "tls-$target-$n" "$@" "${CMD[@]}"
  local pid="$STARTED_PID"
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || die "$target exited; see $TMP/tls-$target-$n.err"
    sleep 0.1
  done
  local ok
  ok="$("${PIN_WRK[@]}" python3 "$TMP/client.py" "$PORT" "$n" "$TMP/certs/ca.pem")"
  [ "$ok" = "$n" ] || die "$target: $ok of $n connections got a 200"
  # The worker (nginx without a master, or the gateway) is the child of the wrapper.
  local child
  child="$(pgrep -P "$pid" | head -1 || true)"
  kill -TERM "${child:-$pid}" 2>/dev/null || true
  [ "$target" = nginx ] && kill -QUIT "${child:-$pid}" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  forget_pid "$pid"
}

RAW="$TMP/results.tsv"
: >"$RAW"
for target in nginx gateway; do
  declare -A IR=()
  for n in "$N1" "$N2"; do
    log "$target: $n connections under callgrind"
    run "$target" "$n" valgrind --tool=callgrind "--callgrind-out-file=$TMP/cg.$target.$n.%p" \
      "--log-file=$TMP/vg.$target.$n.log"
    IR[$n]="$(cat "$TMP"/cg."$target"."$n".* | awk '/^totals:/ {s += $2} END {printf "%.0f", s}')"
  done
  log "$target: $N2 connections under strace"
  run "$target" "$N2" strace -f -c -o "$TMP/strace.$target"
  calls="$(awk '$NF == "total" {print $(NF-2)}' "$TMP/strace.$target")"
  printf '%s\t%s\t%s\n' "$target" \
    "$(awk -v a="${IR[$N1]}" -v b="${IR[$N2]}" -v n="$((N2 - N1))" 'BEGIN {printf "%.0f", (b - a) / n}')" \
    "$(awk -v c="$calls" -v n="$N2" 'BEGIN {printf "%.1f", c / n}')" >>"$RAW"
  unset IR
done

echo
echo "One new TLS connection (full handshake, TLS 1.3, ECDSA P-256, GET /small, close), $(date -u +%FT%TZ)"
awk -F'\t' '
  { name[NR] = $1; ir[NR] = $2; sc[NR] = $3; if ($1 == "nginx") { n = $2; ns = $3 } }
  END {
    printf "%-8s %22s %10s %20s %10s\n", "target", "instructions/conn", "vs nginx", "syscalls/conn", "vs nginx"
    for (i = 1; i <= NR; i++)
      printf "%-8s %22s %10.2f %20s %10.2f\n", name[i], ir[i], ir[i] / n, sc[i], sc[i] / ns
  }' "$RAW"
