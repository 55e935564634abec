#!/usr/bin/env bash
# Builds the libFuzzer targets with clang-14 (libFuzzer + ASan + UBSan) into
# ${FUZZ_OUT:-/tmp/gateway-fuzz}. Bazel builds the project with gcc; these binaries are
# built apart from it (Bazel builds the same LLVMFuzzerTestOneInput functions with a
# replay main() instead: //tests/fuzz:*_replay). Incremental; JOBS=N for parallel
# compiles (default 2).
#   tests/fuzz/build.sh              all targets
#   tests/fuzz/build.sh jwt_fuzzer   one target
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${FUZZ_OUT:-/tmp/gateway-fuzz}"
for tool in clang++-14 clang-14 llvm-ar-14; do
  command -v "$tool" >/dev/null || { echo "build.sh: $tool missing (scripts/setup.sh)" >&2; exit 1; }
done
targets=()
for t in "$@"; do targets+=("$OUT/$t"); done
make -s -f tests/fuzz/fuzz.mk -j"${JOBS:-2}" OUT="$OUT" "${targets[@]}"
echo "build.sh: fuzzers in $OUT" >&2
