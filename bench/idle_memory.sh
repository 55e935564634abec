#!/usr/bin/env bash
# RSS growth per idle keep-alive client connection (issue 8): for each of nginx,
# HAProxy and the gateway in turn (one worker each, in front of the same upstream
# nginx), opens CONNS client connections, sends one request on each and reads its
# response, then holds them all idle and reads VmRSS from /proc/PID/status (for nginx,
# the sum over its worker processes). Reports (RSS with the connections - RSS before)
# / CONNS, and the marginal cost: the growth over the second half of the connections
# (fixed costs such as pools and upstream connections come with the first half).
# Target for the gateway: at most 512 bytes per connection.
#
# Usage: bench/idle_memory.sh [--targets LIST] [--conns N] [--no-setup] [--no-build]
# Environment: CONNS (default 10000), TARGETS (default nginx,haproxy,gateway),
#   BENCH_PORT_BASE (default 18180), GATEWAY_BIN, KEEP_TMP=1
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_DIR="$ROOT/bench"
CONNS="${CONNS:-10000}"
TARGETS="${TARGETS:-nginx,haproxy,gateway}"
PORT_BASE="${BENCH_PORT_BASE:-18180}"
UPSTREAM_PORT="$PORT_BASE"
NGINX_PORT="$((PORT_BASE + 1))"
HAPROXY_PORT="$((PORT_BASE + 2))"
GATEWAY_PORT="$((PORT_BASE + 3))"
NGINX_KEEPALIVE=64
GATEWAY_BIN="${GATEWAY_BIN:-$ROOT/bazel-bin/gateway/gateway}"
WRK_CPU="${WRK_CPU:-0}"
SERVER_CPU="${SERVER_CPU:-1}"
DO_SETUP=1
DO_BUILD=1

while [ $# -gt 0 ]; do
  case "$1" in
    --targets) TARGETS="${2:?--targets needs a list}"; shift ;;
    --conns) CONNS="${2:?--conns needs a number}"; shift ;;
    --no-setup) DO_SETUP=0 ;;
    --no-build) DO_BUILD=0 ;;
    -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "idle_memory.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
[[ "$CONNS" =~ ^[1-9][0-9]*$ ]] || { echo "CONNS must be a positive number" >&2; exit 2; }

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
IFS=',' read -r -a TARGET_LIST <<<"$TARGETS"
has_target() { [[ ",$TARGETS," == *",$1,"* ]]; }

[ "$DO_SETUP" = 1 ] && bash "$ROOT/scripts/setup.sh"
require_tools curl taskset timeout nginx python3
has_target haproxy && require_tools haproxy

make_workdir
if has_target gateway; then build_gateway "$DO_BUILD"; fi
setup_pinning  # also raises ulimit -n (inherited by the servers and the client)
[ "$(ulimit -n)" -gt "$((CONNS + 200))" ] || die "ulimit -n is $(ulimit -n), need more than $((CONNS + 200))"
check_ports_free "$UPSTREAM_PORT" "$NGINX_PORT" "$HAPROXY_PORT" "$GATEWAY_PORT"

# Room for CONNS client connections in each proxy (the shared configs allow 4096).
room=$((CONNS + 1000))
sed -i -e "s/worker_connections [0-9]*;/worker_connections $room;/" "$TMP/proxy-nginx.conf"
# HAProxy sizes its fd limit for two per connection (client and server); with a hard
# ulimit below 2 * maxconn, "no strict-limits" lets it start with what it gets (the
# idle client connections here need one fd each).
sed -i -e "s/^\( *\)maxconn [0-9]*/\1maxconn $room\n\1no strict-limits/" \
  -e "s/^\( *\)mode http$/&\n\1maxconn $room/" "$TMP/haproxy.cfg"
# The gateway: quick mode (flags) on top of a file that only sets the limit.
printf '[admin]\nlisten = ""\n\n[limits]\nmax_connections = %d\nidle_timeout = "120s"\n' "$room" \
  >"$TMP/idle-gateway.toml"
export GATEWAY_CONFIG="$TMP/idle-gateway.toml"

start_upstream

# The client: opens the connections, one request each, then holds them until stdin
# closes. Prints "held N" once every response has been read.
cat >"$TMP/hold.py" <<'EOF'
import selectors, socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
req = b"GET /small HTTP/1.1\r\nHost: bench\r\n\r\n"
sel = selectors.DefaultSelector()
socks, buf, done, pending, i = [], {}, 0, 0, 0
deadline = time.monotonic() + 120
half_said = False
while done < n:
    if done == n // 2 and not half_said:
        # Phase boundary: the caller samples RSS here, then lets the second half open.
        print("half %d" % done, flush=True)
        sys.stdin.readline()
        half_said = True
    limit = n if half_said else n // 2
    while i < limit and pending < 256:
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        sel.register(s, selectors.EVENT_WRITE, "connect")
        socks.append(s); i += 1; pending += 1
    if time.monotonic() > deadline:
        sys.exit("only %d of %d connections answered" % (done, n))
    for key, _ in sel.select(1.0):
        s = key.fileobj
        if key.data == "connect":
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                sys.exit("connect failed")
            s.send(req)
            buf[s] = b""
            sel.modify(s, selectors.EVENT_READ, "read")
            continue
        data = s.recv(65536)
        if not data:
            sys.exit("a connection closed before its response")
        buf[s] += data
        head, sep, body = buf[s].partition(b"\r\n\r\n")
        if sep:
            length = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v)
            if len(body) >= length:
                if not head.startswith(b"HTTP/1.1 200"):
                    sys.exit("answer: %r" % head[:60])
                sel.unregister(s)
                done += 1; pending -= 1
print("held %d" % done, flush=True)
sys.stdin.read()
EOF

# Sum of VmRSS (KiB) over the process(es) that hold client connections.
rss_kib() {
  local pid total=0 v
  for pid in "$@"; do
    v="$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)"
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

# The smallest of samples taken from 1 s to 4 s after the connections went idle: pools
# decay and return memory over a few ticks (the gateway's every 250 ms), and what counts
# is what an idle connection keeps, not the tail of the burst that opened it. Every
# target gets the same window.
settled_rss_kib() {
  local best="" v
  sleep 1
  for _ in 1 2 3 4 5 6 7; do
    v="$(rss_kib "$@")"
    if [ -z "$best" ] || [ "$v" -lt "$best" ]; then best="$v"; fi
    sleep 0.5
  done
  echo "$best"
}

RESULTS=()
for target in "${TARGET_LIST[@]}"; do
  case "$target" in nginx | haproxy | gateway) ;; *) die "unknown target '$target'" ;; esac
  if ! start_target "$target"; then
    log "$target: SKIPPED"
    [ -n "$TARGET_PID" ] && stop_pid "$TARGET_PID"
    RESULTS+=("$target skipped")
    continue
  fi
  pids=("$RSS_PID")
  if [ "$target" = nginx ]; then
    read -r -a pids <<<"$(cat /proc/"$TARGET_PID"/task/*/children)"
  fi
  # Warm the process (the first requests allocate pools, buffers, upstream connections).
  for _ in 1 2 3 4 5; do curl -s -o /dev/null "http://127.0.0.1:$TARGET_PORT/small" || true; done
  before="$(rss_kib "${pids[@]}")"
  fifo="$TMP/hold-$target.fifo"
  mkfifo "$fifo"
  "${PIN_WRK[@]}" python3 "$TMP/hold.py" "$TARGET_PORT" "$CONNS" <"$fifo" >"$TMP/hold-$target.out" 2>&1 &
  hold_pid=$!
  PIDS+=("$hold_pid")
  exec 7>"$fifo"  # keeps the client's stdin open until we close fd 7
  mid=""
  for _ in $(seq 1 1300); do  # up to 130 s (hold.py gives up after 120 s)
    if [ -z "$mid" ] && grep -q '^half' "$TMP/hold-$target.out" 2>/dev/null; then
      mid="$(settled_rss_kib "${pids[@]}")"
      echo >&7  # the second half may open
    fi
    grep -q '^held' "$TMP/hold-$target.out" 2>/dev/null && break
    kill -0 "$hold_pid" 2>/dev/null || break
    sleep 0.1
  done
  if grep -q '^held' "$TMP/hold-$target.out"; then
    after="$(settled_rss_kib "${pids[@]}")"
    per=$(((after - before) * 1024 / CONNS))
    # The second half's growth: what one more idle connection costs, without the
    # fixed costs the first requests bring (pools, upstream connections, buffers).
    marginal=$(((after - mid) * 1024 / (CONNS - CONNS / 2)))
    log "$target: VmRSS $before KiB -> $mid KiB (half) -> $after KiB with $CONNS idle connections: $per bytes each, $marginal marginal"
    RESULTS+=("$target $before $after $per $marginal")
  else
    log "$target: the client failed: $(tail -n 3 "$TMP/hold-$target.out")"
    RESULTS+=("$target failed")
  fi
  exec 7>&-
  wait "$hold_pid" 2>/dev/null || true
  forget_pid "$hold_pid"
  stop_pid "$TARGET_PID"
done

echo
echo "Idle keep-alive connections: $CONNS, one request each ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $(uname -r))"
printf '%-8s %14s %14s %14s %18s\n' target "RSS before KiB" "RSS after KiB" "bytes/conn" "marginal bytes/conn"
for row in "${RESULTS[@]}"; do
  # shellcheck disable=SC2086
  set -- $row
  if [ $# -eq 5 ]; then printf '%-8s %14s %14s %14s %18s\n' "$1" "$2" "$3" "$4" "$5"
  else printf '%-8s %14s\n' "$1" "$2"; fi
done
