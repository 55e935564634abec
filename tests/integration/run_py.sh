#!/usr/bin/env bash
# Runs one integration test file against the gateway binary.
#   run_py.sh GATEWAY_BINARY tests/integration/test_x.py [Class[.test_method] ...]
# Bazel passes the first two (see BUILD); extra arguments (bazel test --test_arg=...)
# select tests inside the file. Outside Bazel: GATEWAY_BIN=... python3 test_x.py -v
set -euo pipefail

binary="$1"
test_file="$2"
shift 2

GATEWAY_BIN="$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")"
export GATEWAY_BIN
GATEWAY_SRC_ROOT="$(pwd)"
export GATEWAY_SRC_ROOT

module="$(basename "${test_file%.py}")"
cd "$(dirname "$test_file")"

selected=()
for name in "$@"; do
  selected+=("$module.$name")
done
[ ${#selected[@]} -gt 0 ] || selected=("$module")

exec python3 -B -m unittest -v "${selected[@]}"
