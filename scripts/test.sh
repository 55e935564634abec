#!/usr/bin/env bash
# The one test command: installs what is missing, builds everything, runs every test
# (Catch2 unit tests and the integration suite), and ends with one line
# "N passed, N failed" counting Bazel test targets. Exits non-zero if any failed.
#
#   bash scripts/test.sh                   # everything, optimized build
#   bash scripts/test.sh --config=asan     # everything under ASan + UBSan
#   bash scripts/test.sh //tests/integration:all
# Arguments that start with "//" or ":" are targets (default //...); the rest are
# passed to `bazel test`.
set -uo pipefail

cd "$(dirname "$0")/.."

bash scripts/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

targets=()
flags=()
for arg in "$@"; do
  case "$arg" in
    //*|:*|-//*) targets+=("$arg") ;;
    *) flags+=("$arg") ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=("//...")
# CI (CI=true) reruns every test rather than taking a result from the disk cache: the
# integration tests also depend on system packages that Bazel does not track.
if [ "${CI:-}" = "true" ]; then
  flags+=("--nocache_test_results")
fi

log="$(mktemp -t gateway-test.XXXXXX)"
trap 'rm -f "$log"' EXIT

# --test_summary=short lists every test target with its status; our own line below
# is the one CI reads.
bazel test --test_summary=short --test_output=errors "${flags[@]}" -- "${targets[@]}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# Summary lines look like:
#   //tests/integration:malformed_test       PASSED in 12.3s
#   //gateway/http:codec_test       (cached) PASSED in 0.4s
#   //tests/integration:limits_test          FAILED in 30.1s
#   //tests/integration:lifecycle_test       TIMEOUT in 300.0s
#   //tests/unit:router_test                 NO STATUS
#   //tests/unit:router_test                 FAILED TO BUILD
counts="$(sed -e 's/\x1b\[[0-9;]*m//g' "$log" | awk '
  /^\/\/[^ ]+ / {
    if ($0 ~ / (PASSED|FLAKY)/) { passed++ }
    else if ($0 ~ / (FAILED|TIMEOUT|NO STATUS|INCOMPLETE|REMOTE FAILURE|FAILED TO BUILD|SKIPPED)( |$)/) { failed++ }
  }
  END { printf "%d %d\n", passed, failed }')"
passed="${counts% *}"
failed="${counts#* }"

# A build failure or an empty run must never look green.
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  echo "bazel test exited with status $status"
  failed=1
fi
if [ "$status" -eq 0 ] && [ "$passed" -eq 0 ]; then
  echo "no test ran"
  failed=1
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
