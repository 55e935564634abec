#!/usr/bin/env bash
# The one-command demo: installs what is missing, builds the gateway, starts two demo
# backends (blue on 127.0.0.1:9001, green on 127.0.0.1:9002) and the gateway with
# conf/gateway.toml (0.0.0.0:8080, admin 127.0.0.1:9901). Ctrl-C stops all three.
#
#   bash scripts/demo.sh           # run until Ctrl-C
#   bash scripts/demo.sh --smoke   # start, check both routes answer, stop (for tests)
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=0
case "${1:-}" in
  --smoke) smoke=1 ;;
  "") ;;
  *) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
esac

bash scripts/setup.sh
bazel build //gateway:gateway
bin="$(pwd)/bazel-bin/gateway/gateway"
[ -x "$bin" ] || { echo "demo: $bin was not built" >&2; exit 1; }

port_open() {  # host port
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

for port in 8080 9001 9002 9901; do
  if port_open 127.0.0.1 "$port"; then
    echo "demo: port $port is already in use; stop whatever listens there first" >&2
    exit 1
  fi
done

pids=()
stop_all() {
  trap - EXIT INT TERM
  local pid
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    # give each up to 10 s, then force
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
trap 'stop_all' EXIT
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM

python3 scripts/demo_backend.py blue 9001 &
pids+=("$!")
python3 scripts/demo_backend.py green 9002 &
pids+=("$!")
"$bin" --config conf/gateway.toml &
gateway_pid=$!
pids+=("$gateway_pid")

wait_port() {  # port name
  for _ in $(seq 1 300); do
    port_open 127.0.0.1 "$1" && return 0
    for pid in "${pids[@]}"; do
      kill -0 "$pid" 2>/dev/null || { echo "demo: $2 exited early" >&2; return 1; }
    done
    sleep 0.1
  done
  echo "demo: $2 did not start listening on port $1" >&2
  return 1
}
wait_port 9001 blue
wait_port 9002 green
wait_port 8080 gateway

if [ "$smoke" -eq 1 ]; then
  ok=1
  blue="$(curl -sS --max-time 10 http://127.0.0.1:8080/)" || ok=0
  green="$(curl -sS --max-time 10 http://127.0.0.1:8080/preview/)" || ok=0
  echo "GET / -> ${blue:-<nothing>}"
  echo "GET /preview/ -> ${green:-<nothing>}"
  case "$blue" in "hello from blue"*) ;; *) ok=0 ;; esac
  case "$green" in "hello from green"*) ;; *) ok=0 ;; esac
  if [ "$ok" -eq 1 ]; then
    echo "demo smoke: ok"
    exit 0
  fi
  echo "demo smoke: FAILED" >&2
  exit 1
fi

cat <<'MSG'

The gateway is up on 0.0.0.0:8080 (admin on 127.0.0.1:9901), in front of
blue (127.0.0.1:9001) and green (127.0.0.1:9002). Try:

  try: curl -i http://127.0.0.1:8080/
       curl -i http://127.0.0.1:8080/preview/

Flip the demo service from blue to green (and back) without dropping anything:
       curl -X POST http://127.0.0.1:9901/services/demo/flip
or edit active = "blue" in conf/gateway.toml and save.

Ctrl-C stops the gateway and both backends.
MSG
wait "$gateway_pid" || true
