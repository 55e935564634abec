#!/usr/bin/env bash
# One run, one upstream, one load generator (wrk; hey for the fixed rate): direct,
# nginx, HAProxy and the gateway for every case of issue 8, written to bench/results.md.
#
#   (a) small body (13 bytes), keep-alive, at 64, 256 and 1,024 connections
#   own core: (a) at 256 with the 1-worker proxy alone on CPU 1, wrk and the upstream
#       sharing CPU 0 (direct too): the "% of direct" when the proxy does not also take
#       the upstream's CPU
#   (b) 16 KiB body, keep-alive, 256 connections
#   (c) TLS keep-alive (13 bytes), 256 connections
#   (d) a new connection per request (Connection: close), 32 connections
#   (e) the filter chain (request_id + headers + cors + rate_limit + auth_jwt HS256),
#       every request with Origin and a bearer token, 256 connections
#   scaling: nginx 2 workers, HAProxy 2 threads, gateway 2 workers on (a) at 256 and (b)
#   fixed rate: hey -q at half of nginx's requests/s in (a) at 256; the p50/p99/p99.9
#       each proxy adds over direct
#
# requests/s, p50, p99, p99.9 (wrk's latency histogram, read by a Lua done() hook) and
# peak RSS (VmHWM of the proxying process(es)) per cell. The 1-worker targets are pinned
# to CPU 1 with the upstream, wrk to CPU 0 (as bench/run.sh); the 2-worker/thread ones
# may use both CPUs (and so compete with wrk and the upstream: on 2 cores this shows the
# cost of sharing more than per-core scaling).
#
# Usage: bench/all.sh [--duration S (5)] [--warmup S (1)] [--no-setup] [--no-build]
#                     [--quick (2 s cells, no warm-up)] [--rounds N (1)]
# With --rounds N every case runs N times, interleaved (round 1 of all cases, then round
# 2, ...); each cell shows the median over the rounds, and each ratio the median of the
# per-round ratios, so one noisy moment on a shared machine does not decide a figure.
# Environment: CASES (default a,own,b,c,d,e,rate), BENCH_PORT_BASE (default 18380: upstream, nginx, haproxy, gateway on +0..+3)
#   GATEWAY_BIN, RESULTS_MD (default bench/results.md), KEEP_TMP=1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_DIR="$ROOT/bench"
DURATION="${DURATION:-5}"
WARMUP="${WARMUP:-1}"
PORT_BASE="${BENCH_PORT_BASE:-18380}"
UPSTREAM_PORT=$PORT_BASE
NGINX_PORT=$((PORT_BASE + 1))
HAPROXY_PORT=$((PORT_BASE + 2))
GATEWAY_PORT=$((PORT_BASE + 3))
WRK_CPU="${WRK_CPU:-0}"
SERVER_CPU="${SERVER_CPU:-1}"
NGINX_KEEPALIVE=1024
GATEWAY_BIN="${GATEWAY_BIN:-$ROOT/bazel-bin/gateway/gateway}"
RESULTS_MD="${RESULTS_MD:-$BENCH_DIR/results.md}"
CASES="${CASES:-a,own,b,c,d,e,rate}"   # a subset, e.g. CASES=a,rate (rate needs a)
ROUNDS=1
DO_SETUP=1
DO_BUILD=1

while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION="${2:?}"; shift ;;
    --duration=*) DURATION="${1#*=}" ;;
    --warmup) WARMUP="${2:?}"; shift ;;
    --warmup=*) WARMUP="${1#*=}" ;;
    --quick) DURATION=2; WARMUP=0 ;;
    --rounds) ROUNDS="${2:?}"; shift ;;
    --rounds=*) ROUNDS="${1#*=}" ;;
    --no-setup) DO_SETUP=0 ;;
    --no-build) DO_BUILD=0 ;;
    -h | --help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "all.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
[[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || { echo "--duration: whole seconds" >&2; exit 2; }
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "--rounds: a positive whole number" >&2; exit 2; }
ROUND=1

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
[ "$DO_SETUP" = 1 ] && bash "$ROOT/scripts/setup.sh"
require_tools wrk hey curl taskset timeout nginx haproxy python3
make_workdir
build_gateway "$DO_BUILD"
[ "$GATEWAY_OK" = 1 ] || die "no gateway binary"
setup_pinning
check_ports_free "$UPSTREAM_PORT" "$NGINX_PORT" "$HAPROXY_PORT" "$GATEWAY_PORT"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
start_upstream

# ---------------------------------------------------------------------------------------
# Configs: nginx with 2 workers, HAProxy tuned for speed (1 and 2 threads), TLS, filters.
sed -e 's/^worker_processes 1;/worker_processes 2;/' -e 's|proxy-nginx.pid|proxy-nginx2.pid|' \
  "$TMP/proxy-nginx.conf" >"$TMP/proxy-nginx2.conf"
haproxy_cfg() {  # haproxy_cfg THREADS BIND_SUFFIX
  cat <<EOF
global
    nbthread $1
    maxconn 8000
    tune.maxaccept 256
    tune.bufsize 32768
    no log
defaults
    mode http
    option http-keep-alive
    option dontlognull
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
frontend bench
    bind 127.0.0.1:$HAPROXY_PORT $2
    default_backend upstream
backend upstream
    server up1 127.0.0.1:$UPSTREAM_PORT
EOF
}
haproxy_cfg 1 "" >"$TMP/haproxy1.cfg"
haproxy_cfg 2 "" >"$TMP/haproxy2.cfg"
bash "$ROOT/scripts/make_test_certs.sh" "$TMP/certs" >/dev/null
cat "$TMP/certs/localhost.pem" "$TMP/certs/localhost.key" >"$TMP/certs/localhost.both.pem"
haproxy_cfg 1 "ssl crt $TMP/certs/localhost.both.pem ssl-min-ver TLSv1.2" >"$TMP/tls-haproxy.cfg"
render tls-proxy.nginx.conf.in tls-nginx.conf
render tls-gateway.toml.in tls-gateway.toml

SECRET="bench-secret-bench-secret-bench!!"
TOKEN="$(python3 - "$SECRET" <<'PY'
import base64, hashlib, hmac, json, sys, time
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
key = sys.argv[1].encode()
head = b64(json.dumps({"alg": "HS256", "kid": "bench"}).encode())
body = b64(json.dumps({"sub": "bench-user", "iss": "https://id.bench", "aud": "api",
                       "exp": int(time.time()) + 86400}).encode())
sig = hmac.new(key, (head + "." + body).encode(), hashlib.sha256).digest()
print(head + "." + body + "." + b64(sig))
PY
)"
python3 - "$SECRET" >"$TMP/jwks.json" <<'PY'
import base64, json, sys
k = base64.urlsafe_b64encode(sys.argv[1].encode()).rstrip(b"=").decode()
print(json.dumps({"keys": [{"kty": "oct", "kid": "bench", "k": k}]}))
PY
cat >"$TMP/filters.toml" <<EOF
workers = 1
[admin]
listen = ""
[[listeners]]
listen = "127.0.0.1:$GATEWAY_PORT"
[[routes]]
name = "api"
service = "up"
filters = [
  { type = "request_id" },
  { type = "headers", request_set = { "X-Route" = "\${route}", "X-Client" = "\${client_ip}" }, response_set = { "X-Served-By" = "gateway" } },
  { type = "cors", allow_origins = ["https://app.bench"], allow_methods = ["GET", "POST"], max_age = "10m" },
  { type = "rate_limit", rate = "1000000/s", burst = 1000000, key = "client_ip" },
  { type = "auth_jwt", jwks_file = "$TMP/jwks.json", issuer = "https://id.bench", audience = "api", claims_to_headers = { sub = "X-User" } },
]
[services.up]
pools.main.endpoints = ["127.0.0.1:$UPSTREAM_PORT"]
EOF

cat >"$TMP/pct.lua" <<'EOF'
done = function(summary, latency, requests)
  io.write(string.format("PCT %d %d %d\n", latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9)))
  local e = summary.errors
  io.write(string.format("ERRS %d\n", e.connect + e.read + e.write + e.status + e.timeout))
end
EOF

# ---------------------------------------------------------------------------------------
# Targets. Sets TARGET_PORT, TARGET_PID (empty for direct), RSS_PIDS, SCHEME.
ALL_CPUS=(taskset -c "0-$(($(nproc) - 1))")
start_any() {
  local target="$1" pinned=("${PIN_SERVER[@]}")
  TARGET_PID=""
  RSS_PIDS=()
  SCHEME=http
  TARGET_PORT="$NGINX_PORT"
  case "$target" in
    direct) TARGET_PORT="$UPSTREAM_PORT"; return 0 ;;
    nginx | nginx2 | tls-nginx)
      local conf=proxy-nginx.conf
      [ "$target" = nginx2 ] && { conf=proxy-nginx2.conf; PIN_SERVER=("${ALL_CPUS[@]}"); }
      [ "$target" = tls-nginx ] && { conf=tls-nginx.conf; SCHEME=https; }
      start_server "$target" nginx -e "$TMP/$target-error.log" -p "$TMP" -c "$TMP/$conf"
      ;;
    haproxy | haproxy2 | tls-haproxy)
      TARGET_PORT="$HAPROXY_PORT"
      local conf="haproxy1.cfg"
      [ "$target" = haproxy2 ] && { conf=haproxy2.cfg; PIN_SERVER=("${ALL_CPUS[@]}"); }
      [ "$target" = tls-haproxy ] && { conf=tls-haproxy.cfg; SCHEME=https; }
      start_server "$target" haproxy -db -f "$TMP/$conf"
      ;;
    gateway | gateway2 | tls-gateway | gateway-filters)
      TARGET_PORT="$GATEWAY_PORT"
      local args=(--listen "127.0.0.1:$GATEWAY_PORT" --upstream "127.0.0.1:$UPSTREAM_PORT" --workers 1)
      [ "$target" = gateway2 ] && { args[5]=2; PIN_SERVER=("${ALL_CPUS[@]}"); }
      [ "$target" = tls-gateway ] && { args=(--config "$TMP/tls-gateway.toml"); SCHEME=https; }
      [ "$target" = gateway-filters ] && args=(--config "$TMP/filters.toml")
      start_server "$target" "$GATEWAY_BIN" "${args[@]}"
      ;;
  esac
  PIN_SERVER=("${pinned[@]}")
  TARGET_PID="$STARTED_PID"
  local url="$SCHEME://localhost:$TARGET_PORT/small" got=""
  for _ in $(seq 1 100); do
    kill -0 "$TARGET_PID" 2>/dev/null || break
    got="$(curl -s --cacert "$TMP/certs/ca.pem" --resolve "localhost:$TARGET_PORT:127.0.0.1" \
      -o /dev/null --max-time 1 -w '%{http_code} %{size_download}' "${HEADERS[@]}" "$url" || true)"
    [ "$got" = "200 13" ] && break
    sleep 0.1
  done
  if [ "$got" != "200 13" ]; then
    log "$target did not answer $url (last: '$got'); stderr:"
    tail -n 10 "$TMP/$target.err" >&2
    return 1
  fi
  case "$target" in
    nginx*|tls-nginx)
      sleep 0.2
      read -r -a RSS_PIDS <<<"$(cat /proc/"$TARGET_PID"/task/*/children 2>/dev/null)" ;;
    *) RSS_PIDS=("$TARGET_PID") ;;
  esac
}

peak_rss_sum() {
  local total=0 p v
  for p in "$@"; do v="$(peak_rss_kib "$p")"; total=$((total + ${v:-0})); done
  [ "$#" -gt 0 ] && echo "$total" || echo "-"
}

# Busy and idle jiffies of each CPU; cpu_busy BEFORE AFTER prints each CPU's busy
# percentage over the interval, "99/89" (irq and softirq count as busy).
cpu_ticks() { awk '/^cpu[0-9]+ / {printf "%d %d ", $2 + $3 + $4 + $7 + $8, $5 + $6}' /proc/stat; }
cpu_busy() {
  awk -v a="$1" -v b="$2" 'BEGIN {
    n = split(a, x, " "); split(b, y, " ")
    for (i = 1; i < n; i += 2) {
      busy = y[i] - x[i]; idle = y[i + 1] - x[i + 1]
      printf "%s%.0f", (i > 1 ? "/" : ""), (busy + idle > 0 ? 100 * busy / (busy + idle) : 0)
    } }'
}

# CPU time (user + system, in clock ticks) of the processes given, all threads.
proc_ticks() {
  local p total=0
  for p in "$@"; do
    total=$((total + $(awk '{print $14 + $15}' /proc/"$p"/stat 2>/dev/null || echo 0)))
  done
  echo "$total"
}
CLK_TCK="$(getconf CLK_TCK)"

# Moves the running upstream nginx (master and workers) to CPU $1.
pin_upstream() {
  local p
  for p in "$UPSTREAM_PID" $(cat /proc/"$UPSTREAM_PID"/task/*/children 2>/dev/null); do
    taskset -apc "$1" "$p" >/dev/null
  done
}

RAW="$TMP/results.tsv"
: >"$RAW"
HEADERS=()
# cell CASE TARGET CONNECTIONS PATH [extra wrk args...]
cell() {
  local case_="$1" target="$2" conns="$3" path="$4"
  shift 4
  local extra=("$@")
  if ! start_any "$target"; then
    [ -n "$TARGET_PID" ] && stop_pid "$TARGET_PID"
    printf '%s\t%s\t%s\tskipped\t\t\t\t\t\t\t%s\n' "$case_" "$target" "$conns" "$ROUND" >>"$RAW"
    return 0
  fi
  local host=127.0.0.1
  [ "$SCHEME" = https ] && host=localhost
  local url="$SCHEME://$host:$TARGET_PORT$path" out="$TMP/wrk-$case_-$target-$conns.txt"
  if [ "$WARMUP" -gt 0 ]; then
    run_load /dev/null "$WARMUP" wrk -t1 -c"$conns" -d"${WARMUP}s" "${extra[@]}" "${HEADERS[@]}" "$url"
  fi
  local ticks proxy_ticks
  ticks="$(cpu_ticks)"
  proxy_ticks="$(proc_ticks "${RSS_PIDS[@]+"${RSS_PIDS[@]}"}")"
  run_load "$out" "$DURATION" wrk -t1 -c"$conns" -d"${DURATION}s" --latency -s "$TMP/pct.lua" \
    "${extra[@]}" "${HEADERS[@]}" "$url"
  local busy
  busy="$(cpu_busy "$ticks" "$(cpu_ticks)")"
  proxy_ticks=$(($(proc_ticks "${RSS_PIDS[@]+"${RSS_PIDS[@]}"}") - proxy_ticks))
  local rss
  rss="$(peak_rss_sum "${RSS_PIDS[@]+"${RSS_PIDS[@]}"}")"
  [ -n "$TARGET_PID" ] && stop_pid "$TARGET_PID"
  local rps pct errs
  rps="$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")"
  pct="$(awk '$1 == "PCT" {printf "%.3f\t%.3f\t%.3f", $2/1000, $3/1000, $4/1000}' "$out")"
  errs="$(awk '$1 == "ERRS" {print $2}' "$out")"
  [ -n "$rps" ] || { log "$case_ $target: wrk gave no result"; tail -n 3 "$out" >&2; rps=0; pct=$'-\t-\t-'; }
  # The proxy's CPU time per request, in microseconds: unlike requests/s, it does not
  # drop when a neighbour takes CPU time on a shared machine.
  local us="-"
  if [ "${#RSS_PIDS[@]}" -gt 0 ] && [ "$rps" -gt 0 ]; then
    us="$(awk -v t="$proxy_ticks" -v hz="$CLK_TCK" -v r="$rps" -v d="$DURATION" \
      'BEGIN {printf "%.1f", t * 1e6 / hz / (r * d)}')"
  fi
  log "$case_ $target c=$conns: $rps req/s (p50 p99 p99.9 ms: ${pct//$'\t'/ }), peak RSS $rss KiB, errors ${errs:-?}, CPUs busy $busy %, proxy CPU $us us/request"
  printf '%s\t%s\t%s\tok\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$case_" "$target" "$conns" "$rps" "$pct" "$rss" "${errs:-0}" "$ROUND" "$busy" "$us" >>"$RAW"
}

log "cells: ${DURATION}s each after ${WARMUP}s warm-up; cases $CASES; $ROUNDS round(s)"
want() { [[ ",$CASES," == *",$1,"* ]]; }
BASIC=(direct nginx haproxy gateway)
SCALE2=(nginx2 haproxy2 gateway2)
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
[ "$ROUNDS" -gt 1 ] && log "round $ROUND of $ROUNDS"
if want a; then
  for c in 64 256 1024; do
    for t in "${BASIC[@]}"; do cell a-small "$t" "$c" /small; done
  done
  for t in "${SCALE2[@]}"; do cell a-small "$t" 256 /small; done
fi
if want own && [ "${#PIN_SERVER[@]}" -gt 0 ]; then
  pin_upstream "$WRK_CPU"
  for t in "${BASIC[@]}"; do cell a-own "$t" 256 /small; done
  pin_upstream "$SERVER_CPU"
fi
if want b; then for t in "${BASIC[@]}" "${SCALE2[@]}"; do cell b-16k "$t" 256 /16k; done; fi
if want c; then for t in tls-nginx tls-haproxy tls-gateway; do cell c-tls "$t" 256 /small; done; fi
if want d; then for t in "${BASIC[@]}" gateway2; do cell d-close "$t" 32 /small -H "Connection: close"; done; fi
if want e; then
  HEADERS=(-H "Origin: https://app.bench" -H "Authorization: Bearer $TOKEN")
  for t in nginx gateway gateway-filters; do cell e-filters "$t" 256 /small; done
  HEADERS=()
fi
done
ROUND=1

# ---------------------------------------------------------------------------------------
# Fixed rate: half of nginx's requests/s in (a) at 256 connections, hey with 64 workers.
NGINX_MAX="$(awk -F'\t' '$1 == "a-small" && $2 == "nginx" && $3 == 256 && $4 == "ok" {print $5; exit}' "$RAW")"
RATE=$(( ${NGINX_MAX:-0} / 2 ))
want rate || RATE=0
HEY_WORKERS=64
if [ "$RATE" -gt 0 ]; then
  log "fixed rate: $RATE requests/s (half of nginx's $NGINX_MAX), hey -c $HEY_WORKERS"
  for t in direct nginx haproxy gateway gateway2; do
    if ! start_any "$t"; then
      [ -n "$TARGET_PID" ] && stop_pid "$TARGET_PID"
      printf 'rate\t%s\t%s\tskipped\t\t\t\t\t\t\t1\n' "$t" "$HEY_WORKERS" >>"$RAW"
      continue
    fi
    out="$TMP/hey-$t.csv"
    run_load "$out" "$DURATION" hey -z "${DURATION}s" -c "$HEY_WORKERS" \
      -q "$(( (RATE + HEY_WORKERS - 1) / HEY_WORKERS ))" -o csv "http://127.0.0.1:$TARGET_PORT/small"
    rss="$(peak_rss_sum "${RSS_PIDS[@]+"${RSS_PIDS[@]}"}")"
    [ -n "$TARGET_PID" ] && stop_pid "$TARGET_PID"
    # csv: response-time (s),DNS+dialup,DNS,Request-write,Response-delay,Response-read,status-code,offset
    stats="$(awk -F, -v d="$DURATION" 'NR > 1 && $1 ~ /^[0-9.]+$/ {
        n++; if ($7 != 200) e++; print $1 * 1000 > "/dev/stderr" }
      END { printf "%.0f\t%d\n", n / d, e + 0 }' "$out" 2>"$out.ms")"
    sort -n "$out.ms" -o "$out.ms"
    pct="$(awk '{ v[NR] = $1 } END {
        if (NR == 0) { printf "-\t-\t-"; exit }
        i50 = int(NR * 0.50); i99 = int(NR * 0.99); i999 = int(NR * 0.999)
        if (i50 < 1) i50 = 1; if (i99 < 1) i99 = 1; if (i999 < 1) i999 = 1
        printf "%.3f\t%.3f\t%.3f", v[i50], v[i99], v[i999] }' "$out.ms")"
    log "rate $t: achieved ${stats%%$'\t'*} req/s (p50 p99 p99.9 ms: ${pct//$'\t'/ })"
    printf 'rate\t%s\t%s\tok\t%s\t%s\t%s\t%s\t1\n' "$t" "$HEY_WORKERS" "${stats%%$'\t'*}" "$pct" "$rss" "${stats#*$'\t'}" >>"$RAW"
  done
fi
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
cp "$RAW" "$TMP/raw-copy.tsv"
mkdir -p "$BENCH_DIR/results"
cp "$RAW" "$BENCH_DIR/results/all-$(date +%Y%m%d-%H%M%S).tsv"

# ---------------------------------------------------------------------------------------
# bench/results.md
python3 - "$RAW" "$RESULTS_MD" "$DURATION" "$WARMUP" "$RATE" "$LOAD_START" "$LOAD_END" "$ROUNDS" <<'PY'
import platform, statistics, subprocess, sys, time
raw, md, duration, warmup, rate, load_start, load_end, rounds = sys.argv[1:9]
def num(x):
    try: return float(x)
    except ValueError: return None
# Raw rows: case target conns status rps p50 p99 p99.9 rss errors round [cpus-busy
# proxy-us-per-request]; the fixed-rate rows stop at round.
def at(r, i):
    return r[i] if len(r) > i else ""
cells = {}   # (case, target, conns) -> {round: row}
order = []
for line in open(raw):
    f = line.rstrip("\n").split("\t")
    key = (f[0], f[1], f[2])
    if key not in cells:
        cells[key] = {}
        order.append(key)
    if f[3] == "ok":
        cells[key][f[10]] = f
def median_of(key, i):
    vals = [num(at(r, i)) for r in cells.get(key, {}).values() if num(at(r, i)) is not None]
    return statistics.median(vals) if vals else None
def fmt(v, places=3):
    return "-" if v is None else ("%.0f" % v if places == 0 else "%.*f" % (places, v))
def ratio_of(key, other, i):
    # The median over rounds of the ratio within each round.
    a, b = cells.get(key, {}), cells.get(other, {})
    vals = [num(at(a[k], i)) / num(at(b[k], i)) for k in a
            if k in b and num(at(a[k], i)) is not None and num(at(b[k], i))]
    return "%.2f" % statistics.median(vals) if vals else "-"
cpu = ""
for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
    if line.startswith("Model name:"):
        cpu = line.split(":", 1)[1].strip()
def ver(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    except Exception:
        return "?"
out = []
out.append("# bench/all.sh results\n")
out.append("Generated by `bash bench/all.sh` on %s." % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
out.append("Machine: %s, %s CPUs (`nproc`), Linux %s; load average %s at the start, %s at the end."
           % (cpu, subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip(),
              platform.release(), load_start, load_end))
out.append("%s; %s; %s; hey (Debian)." % (ver(["nginx", "-v"]), ver(["haproxy", "-v"]), ver(["wrk", "--version"])))
out.append("")
out.append("**The machine is shared with other engineers' builds and tests while this runs: absolute"
           " figures are noisy (15–35 %% between runs); compare ratios within this run only.**"
           " Every cell: %s s of `wrk -t1 --latency` after %s s of warm-up, target started fresh."
           " 1-worker targets (nginx 1 worker, HAProxy `nbthread 1`, gateway `--workers 1`) and"
           " the upstream nginx share CPU 1, wrk has CPU 0; the 2-worker/2-thread targets may use"
           " both CPUs and so compete with wrk and the upstream (on 2 cores this is not per-core"
           " scaling). Latencies in ms; p99.9 from wrk's histogram (Lua `done()` hook). Peak RSS:"
           " VmHWM in KiB of the proxying process (the sum over nginx's workers). CPUs busy: each"
           " CPU's busy share (user, system, irq, softirq) during the cell's load, CPU 0/CPU 1,"
           " from the round with the median requests/s. CPU µs/req: the proxying process(es)' user +"
           " system time during the cell over the requests wrk counted; on a shared machine it"
           " moves far less than requests/s does (work done in softirq context is not in it)." % (duration, warmup))
if int(rounds) > 1:
    out.append("")
    out.append("**%s rounds, interleaved** (every case once, then again): each figure is the median"
               " over the rounds, each ratio the median of the per-round ratios." % rounds)
out.append("")
labels = {
    "a-small": "(a) 13-byte body, keep-alive",
    "a-own": "(a) on its own core: the 1-worker proxy alone on CPU 1, wrk and the upstream nginx together on CPU 0 (for direct too)",
    "b-16k": "(b) 16 KiB body, keep-alive",
    "c-tls": "(c) TLS keep-alive (TLS 1.3), 13 bytes",
    "d-close": "(d) new connection per request (`Connection: close`), 13 bytes",
    "e-filters": "(e) filter chain (request_id, headers, cors, rate_limit, auth_jwt HS256); every target gets the same Origin and Bearer headers",
}
nginx_name = {"a-own": "nginx", "a-small": "nginx", "b-16k": "nginx", "c-tls": "tls-nginx", "d-close": "nginx", "e-filters": "nginx"}
haproxy_name = {"a-own": "haproxy", "a-small": "haproxy", "b-16k": "haproxy", "c-tls": "tls-haproxy", "d-close": "haproxy", "e-filters": None}
for case in ["a-small", "a-own", "b-16k", "c-tls", "d-close", "e-filters"]:
    out.append("## " + labels[case] + "\n")
    out.append("| target | conns | requests/s | p50 | p99 | p99.9 | rps vs nginx | p99 vs nginx | rps vs HAProxy | CPU µs/req | CPU/req vs nginx | peak RSS KiB | errors | CPUs busy % |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key in order:
        if key[0] != case:
            continue
        _, target, conns = key
        if not cells[key]:
            out.append("| %s | %s | skipped | | | | | | | | | | | |" % (target, conns))
            continue
        # 2-worker targets run at 256 only; compare them with the 1-worker nginx at 256.
        n = (case, nginx_name[case], conns)
        h = (case, haproxy_name[case], conns) if haproxy_name[case] else None
        errs = sum(int(num(r[9]) or 0) for r in cells[key].values())
        # CPU 0/1 busy in the round whose requests/s is the median one.
        rows = sorted(cells[key].values(), key=lambda r: num(r[4]) or 0)
        busy = at(rows[(len(rows) - 1) // 2], 11) or "-"
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            target, conns, fmt(median_of(key, 4), 0), fmt(median_of(key, 5)),
            fmt(median_of(key, 6)), fmt(median_of(key, 7)),
            ratio_of(key, n, 4), ratio_of(key, n, 6),
            ratio_of(key, h, 4) if h else "-", fmt(median_of(key, 12), 1),
            ratio_of(key, n, 12), fmt(median_of(key, 8), 0), errs, busy))
    if case in ("a-small", "a-own") and (case, "direct", "256") in cells:
        out.append("\nAt 256 connections, of direct-to-upstream requests/s: gateway (1 worker) %s,"
                   " nginx %s, HAProxy %s."
                   % tuple(ratio_of((case, t, "256"), (case, "direct", "256"), 4)
                           for t in ("gateway", "nginx", "haproxy")))
    if case == "a-own":
        out.append("\nIn (a) the proxy and the upstream split CPU 1; here the proxy has CPU 1 to"
                   " itself and wrk and the upstream share CPU 0 (see CPUs busy for which one is full).")
    out.append("")
out.append("## Latency at a fixed rate\n")
out.append("`hey -z %ss -c 64 -q R/64` with R = %s requests/s (half of nginx's requests/s in (a) at"
           " 256 connections); keep-alive, 13 bytes. \"added\" is the proxy's percentile minus"
           " direct's. hey's own latency (Go client on one CPU) is in every figure." % (duration, rate))
out.append("")
out.append("| target | achieved req/s | p50 | p99 | p99.9 | added p50 | added p99 | added p99.9 | errors |")
out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
rate_rows = {k[1]: cells[k].get("1") for k in order if k[0] == "rate"}
d = rate_rows.get("direct")
for target, r in rate_rows.items():
    if r is None:
        out.append("| %s | skipped | | | | | | | |" % target); continue
    add = ["-"] * 3
    if d and r[1] != "direct":
        add = ["%.3f" % (num(r[5 + i]) - num(d[5 + i])) if num(r[5 + i]) is not None and num(d[5 + i]) is not None else "-" for i in range(3)]
    out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (r[1], r[4], r[5], r[6], r[7], add[0], add[1], add[2], r[9]))
out.append("")
out.append("Raw: `bench/results/all-*.tsv` (not committed). Targets of issue 8: ≥ 1.2× nginx's"
           " requests/s and ≤ 0.8× its p99 on (a) and (b); ≥ nginx on (c) and (d); ≥ 85 % of"
           " direct on (a).")
open(md, "w").write("\n".join(out) + "\n")
PY
log "wrote ${RESULTS_MD#"$ROOT"/}"
cat "$RESULTS_MD"
