#!/usr/bin/env bash
# The cost of the filter chain: in one run, with the same wrk settings, requests/s of
#   nginx            nginx as a keep-alive reverse proxy (the yardstick)
#   gateway          our gateway, 1 worker, a route with no filters
#   gateway-filters  the same route with request_id + headers + cors + rate_limit (never
#                    limiting) + auth_jwt (HS256), every request carrying Origin and a
#                    valid bearer token
#   gateway-redis    the route with one rate_limit kept in Redis (never limiting): a
#                    paused chain and one Redis round trip per request (when
#                    redis-server is installed; it runs on the proxy's CPU)
# on the 13-byte body. The chain's cost is 1 - gateway-filters / gateway.
#
# Usage: bench/filters.sh [--quick] [--duration SECONDS] [--warmup SECONDS] [--no-setup] [--no-build]
# Environment as bench/run.sh (DURATION WARMUP CONNECTIONS WRK_THREADS BENCH_PORT_BASE ...).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_DIR="$ROOT/bench"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
CONNECTIONS="${CONNECTIONS:-256}"
WRK_THREADS="${WRK_THREADS:-1}"
PORT_BASE="${BENCH_PORT_BASE:-18180}"
UPSTREAM_PORT="$PORT_BASE"
NGINX_PORT="$((PORT_BASE + 1))"
HAPROXY_PORT="$((PORT_BASE + 2))"
GATEWAY_PORT="$((PORT_BASE + 3))"
REDIS_PORT="$((PORT_BASE + 4))"
WRK_CPU="${WRK_CPU:-0}"
SERVER_CPU="${SERVER_CPU:-1}"
NGINX_KEEPALIVE="${NGINX_KEEPALIVE:-$CONNECTIONS}"
GATEWAY_BIN="${GATEWAY_BIN:-$ROOT/bazel-bin/gateway/gateway}"
DO_SETUP=1
DO_BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) DURATION=3; WARMUP=0 ;;
    --duration) DURATION="${2:?}"; shift ;;
    --warmup) WARMUP="${2:?}"; shift ;;
    --no-setup) DO_SETUP=0 ;;
    --no-build) DO_BUILD=0 ;;
    -h | --help) sed -n 2,13p "$0"; exit 0 ;;
    *) echo "filters.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
[ "$DO_SETUP" = 1 ] && bash "$ROOT/scripts/setup.sh"
require_tools wrk curl taskset timeout nginx python3
make_workdir
build_gateway "$DO_BUILD"
[ "$GATEWAY_OK" = 1 ] || die "no gateway binary"
setup_pinning
check_ports_free "$UPSTREAM_PORT" "$NGINX_PORT" "$GATEWAY_PORT"
start_upstream

# An HS256 key and a token valid for a day, made with the standard library.
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

gateway_config() {  # gateway_config FILE WITH_FILTERS
  {
    echo 'workers = 1'
    echo '[admin]'
    echo 'listen = ""'
    echo '[[listeners]]'
    echo "listen = \"127.0.0.1:$GATEWAY_PORT\""
    echo '[[routes]]'
    echo 'name = "api"'
    echo 'service = "up"'
    if [ "$2" = redis ]; then
      echo "filters = [ { type = \"rate_limit\", rate = \"1000000/s\", key = \"client_ip\", redis = \"127.0.0.1:$REDIS_PORT\", failure_mode = \"closed\" } ]"
    fi
    if [ "$2" = 1 ]; then
      cat <<TOML
filters = [
  { type = "request_id" },
  { type = "headers", request_set = { "X-Route" = "\${route}", "X-Client" = "\${client_ip}" }, response_set = { "X-Served-By" = "gateway" } },
  { type = "cors", allow_origins = ["https://app.bench"], allow_methods = ["GET", "POST"], max_age = "10m" },
  { type = "rate_limit", rate = "1000000/s", burst = 1000000, key = "client_ip" },
  { type = "auth_jwt", jwks_file = "$TMP/jwks.json", issuer = "https://id.bench", audience = "api", claims_to_headers = { sub = "X-User" } },
]
TOML
    fi
    echo '[services.up]'
    echo "pools.main.endpoints = [\"127.0.0.1:$UPSTREAM_PORT\"]"
  } >"$1"
}
gateway_config "$TMP/plain.toml" 0
gateway_config "$TMP/filters.toml" 1
gateway_config "$TMP/redis.toml" redis
VARIANTS=(plain filters)
if command -v redis-server >/dev/null 2>&1; then
  check_ports_free "$REDIS_PORT"
  start_server redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no
  VARIANTS+=(redis)
fi

HEADERS=(-H "Origin: https://app.bench" -H "Authorization: Bearer $TOKEN")
RAW="$TMP/results.tsv"
: >"$RAW"
measure() {  # measure NAME PORT PID
  local name="$1" port="$2" url="http://127.0.0.1:$2/small" out="$TMP/wrk-$1.txt"
  local got
  got="$(curl -s -o /dev/null -w '%{http_code}' "${HEADERS[@]}" "$url")"
  [ "$got" = 200 ] || die "$name answered $got to a request with the bench headers"
  if [ "$WARMUP" -gt 0 ]; then
    run_load /dev/null "$WARMUP" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" "${HEADERS[@]}" "$url"
  fi
  log "$name: measuring ${DURATION}s"
  run_load "$out" "$DURATION" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "${HEADERS[@]}" "$url"
  local rps p99 errors
  rps="$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")"
  p99="$(awk '$1 == "99%" {print $2; exit}' "$out")"
  errors="$(awk '/Socket errors:/ { gsub(/,/, ""); e += $4 + $6 + $8 + $10 } /Non-2xx or 3xx responses:/ { e += $5 } END { print e + 0 }' "$out")"
  printf '%s\t%s\t%s\t%s\n' "$name" "${rps:-0}" "${p99:--}" "$errors" >>"$RAW"
  [ -n "$3" ] && stop_pid "$3"
}

start_target nginx || die "nginx did not start"
measure nginx "$NGINX_PORT" "$TARGET_PID"
for variant in "${VARIANTS[@]}"; do
  start_server "gateway-$variant" "$GATEWAY_BIN" --config "$TMP/$variant.toml"
  pid="$STARTED_PID"
  wait_ready "gateway-$variant" "$pid" 15 || die "gateway ($variant) did not start"
  name=gateway
  [ "$variant" != plain ] && name="gateway-$variant"
  measure "$name" "$GATEWAY_PORT" "$pid"
done

echo
echo "Filter chain benchmark $(date -u +%FT%TZ): wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s, warm-up ${WARMUP}s," \
  "13-byte body; wrk on CPU $WRK_CPU, proxy + upstream on CPU $SERVER_CPU (a shared, noisy machine: compare ratios within one run)"
awk -F'\t' '
  { name[NR] = $1; rps[NR] = $2; p99[NR] = $3; err[NR] = $4; if ($1 == "nginx") n = $2; if ($1 == "gateway") g = $2 }
  END {
    printf "%-16s %12s %10s %10s %12s %8s\n", "target", "requests/s", "p99", "vs nginx", "vs gateway", "errors"
    for (i = 1; i <= NR; i++)
      printf "%-16s %12s %10s %10s %12s %8s\n", name[i], rps[i], p99[i],
        (n > 0 ? sprintf("%.2f", rps[i] / n) : "-"), (g > 0 ? sprintf("%.2f", rps[i] / g) : "-"), err[i]
  }' "$RAW"
