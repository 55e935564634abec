#!/usr/bin/env bash
# Installs every Debian package the build, the tests and the benchmark need.
# Idempotent: packages already present are not touched, apt runs only when something is missing.
set -euo pipefail

PACKAGES=(
  # build
  bazel-bootstrap g++ libuv1-dev libssl-dev libtomlplusplus-dev node-llhttp libre2-dev catch2
  libhiredis-dev libnghttp2-dev
  # optional heap profiling (bazel build --config=jemalloc; jeprof)
  libjemalloc-dev
  # fuzzing (tests/fuzz/build.sh: clang with libFuzzer, ASan and UBSan)
  clang-14 libfuzzer-14-dev llvm-14
  # tests and demo
  curl python3 openssl procps redis-server
  # HTTP/2 tests: nghttp and h2load, and a raw-frame client
  nghttp2-client python3-h2
  # gRPC tests: a real gRPC client (generic byte methods, no protoc)
  python3-grpcio
  # metrics tests: promtool and a real Prometheus server (loopback only)
  prometheus
  # benchmark
  nginx-light wrk haproxy
  # bench/all.sh: latency at a fixed request rate (wrk2 is not in Debian; hey -q is)
  hey
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts nginx/haproxy/redis/prometheus services on install; the benchmark and
  # the tests run their own instances.
  for svc in nginx haproxy redis-server prometheus; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
      $SUDO systemctl stop "$svc" || true
    fi
  done
fi
