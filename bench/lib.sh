# shellcheck shell=bash disable=SC2034  # variables are read by the sourcing scripts
# Shared by bench/run.sh and bench/instructions.sh (sourced, not run). Provides process
# bookkeeping that only ever signals PIDs this script started, the temp dir, config
# rendering, the upstream nginx and the start-up of each target.
#
# The sourcing script sets: ROOT, BENCH_DIR, UPSTREAM_PORT, NGINX_PORT, HAPROXY_PORT,
# GATEWAY_PORT, NGINX_KEEPALIVE, GATEWAY_BIN, WRK_CPU, SERVER_CPU.

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------------------
# Processes and the temp dir, released on exit however the script ends.
PIDS=()
TMP=""
STOP_GRACE_TENTHS="${STOP_GRACE_TENTHS:-30}"  # TERM, then KILL after this many 0.1 s

bench_cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 "$STOP_GRACE_TENTHS"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "$TMP" ] && [ -d "$TMP" ]; then
    if [ "${KEEP_TMP:-0}" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
  fi
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

forget_pid() {
  local keep=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]+"${keep[@]}"}")
}

# Stops one process this script started: TERM, a grace period, then KILL.
stop_pid() {
  local pid="$1" tenths="${2:-$STOP_GRACE_TENTHS}"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 "$tenths"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid ignored TERM for $((tenths / 10)) s, killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  forget_pid "$pid"
}

# Starts "$@" pinned to the server CPU, in the background, output in $TMP/NAME.{out,err}.
# Sets STARTED_PID.
start_server() {
  local name="$1"; shift
  "${PIN_SERVER[@]}" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
  STARTED_PID=$!
  PIDS+=("$STARTED_PID")
}

# Runs a load generator pinned to the wrk CPU, bounded by `timeout`, in the background,
# and waits for it: a signal to this script is handled at once (bash defers traps while
# a foreground child runs). Usage: run_load OUTFILE SECONDS cmd...
run_load() {
  local out="$1" seconds="$2"; shift 2
  timeout -k 5 "$((seconds + 30))" "${PIN_WRK[@]}" "$@" >"$out" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  wait "$pid" || true
  forget_pid "$pid"
}

# ---------------------------------------------------------------------------------------
# Checks.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

check_ports_free() {
  local port
  for port in "$@"; do
    port_in_use "$port" && die "port 127.0.0.1:$port is already in use (set BENCH_PORT_BASE)"
  done
  return 0
}

# Waits until GET http://127.0.0.1:PORT/small answers, while PID stays alive.
# Usage: wait_http PORT PID NAME [SECONDS]
wait_http() {
  local port="$1" pid="$2" name="$3" seconds="${4:-10}"
  for _ in $(seq 1 "$((seconds * 10))"); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "$name exited during start-up; its stderr:"
      tail -n 20 "$TMP/$name.err" >&2
      return 1
    fi
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/small" && return 0
    sleep 0.1
  done
  log "$name did not answer on 127.0.0.1:$port within $seconds s"
  return 1
}

# Checks that URL answers 200 with a body of the expected size.
check_body() {
  local url="$1" want="$2" got
  got="$(curl -s -o /dev/null --max-time 5 -w '%{http_code} %{size_download}' "$url" || true)"
  [ "$got" = "200 $want" ] || { log "$url answered '$got', expected '200 $want'"; return 1; }
}

# Waits until the JSON log line "msg":"ready" appears in $TMP/NAME.err.
# Usage: wait_ready NAME PID SECONDS
wait_ready() {
  local name="$1" pid="$2" seconds="$3"
  for _ in $(seq 1 "$((seconds * 10))"); do
    grep -qE '"msg": ?"ready"' "$TMP/$name.err" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name did not log \"msg\":\"ready\" within $seconds s; its stderr:"
  else
    log "$name exited during start-up; its stderr:"
  fi
  tail -n 20 "$TMP/$name.err" >&2
  return 1
}

# The first child of an nginx master: its (only) worker process.
nginx_worker() {
  local master="$1" w=""
  for _ in $(seq 1 50); do
    w="$(cat /proc/"$master"/task/*/children 2>/dev/null | awk '{print $1; exit}')"
    [ -n "$w" ] && { echo "$w"; return 0; }
    sleep 0.1
  done
  echo "$master"
}

peak_rss_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || true; }

# ---------------------------------------------------------------------------------------
# Environment.
require_tools() {
  export PATH="$PATH:/usr/sbin:/sbin"
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || die "$tool not found (run scripts/setup.sh)"
  done
}

# Pinning: wrk on one CPU, the servers on another. Sets PIN_WRK and PIN_SERVER.
setup_pinning() {
  local cpus
  cpus="$(nproc)"
  if [ "$cpus" -gt "$WRK_CPU" ] && [ "$cpus" -gt "$SERVER_CPU" ] && [ "$WRK_CPU" != "$SERVER_CPU" ]; then
    PIN_WRK=(taskset -c "$WRK_CPU")
    PIN_SERVER=(taskset -c "$SERVER_CPU")
  else
    log "warning: $cpus CPU(s); cannot pin wrk to CPU $WRK_CPU and servers to CPU $SERVER_CPU, running unpinned"
    PIN_WRK=()
    PIN_SERVER=()
  fi
  # Room for the client and upstream connections of each process, with margin.
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
}

# Builds the gateway unless told not to; sets GATEWAY_OK=1 when $GATEWAY_BIN can run.
# Usage: build_gateway DO_BUILD
build_gateway() {
  GATEWAY_OK=1
  if [ "$1" = 1 ]; then
    log "building the gateway: bazel build -c opt //gateway:gateway"
    if ! (cd "$ROOT" && bazel build -c opt //gateway:gateway) >"$TMP/build.log" 2>&1; then
      log "gateway: build FAILED, skipping the gateway target. Last lines of the build:"
      tail -n 15 "$TMP/build.log" >&2
      GATEWAY_OK=0
      return 0
    fi
  fi
  if [ ! -x "$GATEWAY_BIN" ]; then
    log "gateway: binary $GATEWAY_BIN is missing, skipping the gateway target"
    GATEWAY_OK=0
  fi
}

# Creates $TMP with the 16 KiB file and the rendered configs.
make_workdir() {
  TMP="$(mktemp -d "${TMPDIR:-/tmp}/gateway-bench.XXXXXX")"
  # nginx started as root hands its workers to 'nobody', who cannot read the 0700 temp
  # dir; run them as the invoking user instead.
  USER_LINE=""
  [ "$(id -u)" -eq 0 ] && USER_LINE="user $(id -un) $(id -gn);"
  mkdir -p "$TMP/www"
  head -c 16384 /dev/zero | tr '\0' 'x' >"$TMP/www/16k"
  render upstream.nginx.conf.in upstream.conf
  render proxy.nginx.conf.in proxy-nginx.conf
  render haproxy.cfg.in haproxy.cfg
}

render() {  # render TEMPLATE OUTPUT: fills the @NAME@ placeholders
  sed -e "s|@TMP@|$TMP|g" -e "s|@USER_LINE@|$USER_LINE|g" \
    -e "s|@UPSTREAM_PORT@|$UPSTREAM_PORT|g" -e "s|@NGINX_PORT@|$NGINX_PORT|g" \
    -e "s|@HAPROXY_PORT@|$HAPROXY_PORT|g" -e "s|@GATEWAY_PORT@|$GATEWAY_PORT|g" \
    -e "s|@NGINX_KEEPALIVE@|$NGINX_KEEPALIVE|g" \
    "$BENCH_DIR/conf/$1" >"$TMP/$2"
}

# Starts the upstream nginx (13-byte /small, 16 KiB /16k) and checks both bodies.
start_upstream() {
  start_server upstream nginx -e "$TMP/upstream-error.log" -p "$TMP" -c "$TMP/upstream.conf"
  UPSTREAM_PID="$STARTED_PID"
  wait_http "$UPSTREAM_PORT" "$UPSTREAM_PID" upstream || die "the upstream nginx did not start"
  check_body "http://127.0.0.1:$UPSTREAM_PORT/small" 13 || die "upstream /small is wrong"
  check_body "http://127.0.0.1:$UPSTREAM_PORT/16k" 16384 || die "upstream /16k is wrong"
  log "upstream nginx ready on 127.0.0.1:$UPSTREAM_PORT (pid $UPSTREAM_PID)"
}

# Starts a proxy target, optionally under a wrapper command (valgrind).
# Usage: start_target TARGET [STARTUP_SECONDS [WRAPPER...]]
# Sets TARGET_PORT, TARGET_PID (the process to stop, empty for direct) and RSS_PID (the
# process that does the proxying, empty for direct). Returns non-zero to skip the target.
start_target() {
  local target="$1" seconds="${2:-10}"
  shift $(($# < 2 ? $# : 2))
  local wrap=("$@")
  TARGET_PID=""
  RSS_PID=""
  case "$target" in
    direct)
      TARGET_PORT="$UPSTREAM_PORT"
      ;;
    nginx)
      TARGET_PORT="$NGINX_PORT"
      # NGINX_SINGLE_PROCESS=1: no master, the one process does the work (for callgrind).
      local single=()
      [ "${NGINX_SINGLE_PROCESS:-0}" = 1 ] && single=(-g "master_process off;")
      start_server proxy-nginx "${wrap[@]}" nginx "${single[@]}" -e "$TMP/proxy-nginx-error.log" \
        -p "$TMP" -c "$TMP/proxy-nginx.conf"
      TARGET_PID="$STARTED_PID"
      wait_http "$TARGET_PORT" "$TARGET_PID" proxy-nginx "$seconds" || return 1
      if [ "${NGINX_SINGLE_PROCESS:-0}" = 1 ]; then
        RSS_PID="$TARGET_PID"
      else
        RSS_PID="$(nginx_worker "$TARGET_PID")"
      fi
      ;;
    haproxy)
      TARGET_PORT="$HAPROXY_PORT"
      start_server haproxy "${wrap[@]}" haproxy -db -f "$TMP/haproxy.cfg"
      TARGET_PID="$STARTED_PID"
      wait_http "$TARGET_PORT" "$TARGET_PID" haproxy "$seconds" || return 1
      RSS_PID="$TARGET_PID"
      ;;
    gateway)
      TARGET_PORT="$GATEWAY_PORT"
      [ "${GATEWAY_OK:-0}" = 1 ] || return 1
      start_server gateway "${wrap[@]}" "$GATEWAY_BIN" --listen "127.0.0.1:$GATEWAY_PORT" \
        --upstream "127.0.0.1:$UPSTREAM_PORT" --workers 1
      TARGET_PID="$STARTED_PID"
      wait_ready gateway "$TARGET_PID" "$((seconds + 5))" || return 1
      wait_http "$TARGET_PORT" "$TARGET_PID" gateway "$seconds" || return 1
      RSS_PID="$TARGET_PID"
      ;;
    *)
      log "unknown target '$target'"
      return 1
      ;;
  esac
}
