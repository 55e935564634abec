#!/usr/bin/env bash
# Runs each fuzz target for SECONDS (default 60), one after another and in one process
# each (libFuzzer's default; -jobs=1 would fork a worker that logs to ./fuzz-0.log), then
# prints executions per second and coverage per target.
#   tests/fuzz/run.sh [SECONDS] [TARGET...]      TARGET: request response config jwt route
# Builds first (build.sh). Each target fuzzes a scratch copy of its seed corpus under
# $FUZZ_OUT/work/<target>, so the committed corpus only changes by hand; a crash input
# is written to $FUZZ_OUT/crashes/<target>/ and the run of that target stops there.
# Fix it, then copy the input into tests/fuzz/corpus/<target>/ as regress_<what>.
set -uo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER_TARGET="${1:-60}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(request response config jwt route)
OUT="${FUZZ_OUT:-/tmp/gateway-fuzz}"

tests/fuzz/build.sh "${TARGETS[@]/%/_fuzzer}" || exit 1

summary=()
status=0
for t in "${TARGETS[@]}"; do
  work="$OUT/work/$t"
  crashes="$OUT/crashes/$t"
  log="$OUT/logs/$t.log"
  mkdir -p "$work" "$crashes" "$(dirname "$log")"
  cp -n tests/fuzz/corpus/"$t"/* "$work"/ 2>/dev/null || true
  echo "run.sh: fuzzing $t for ${SECONDS_PER_TARGET}s (log $log)" >&2
  started=$SECONDS
  "$OUT/${t}_fuzzer" "$work" tests/fuzz/corpus/"$t" \
    -rss_limit_mb=2048 -max_total_time="$SECONDS_PER_TARGET" \
    -timeout=10 -max_len=8192 -print_final_stats=1 \
    -artifact_prefix="$crashes/" >"$log" 2>&1
  rc=$?
  elapsed=$((SECONDS - started))
  # The last status line, e.g. "#123456 DONE cov: 994 ft: 3181 corp: 41/3653b ... exec/s: 4000".
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
  execs=$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}')
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")
  verdict=ok
  if [ $rc -ne 0 ]; then
    verdict="CRASH rc=$rc: $(ls -t "$crashes" | head -1)"
    status=1
  fi
  summary+=("$(printf '%-9s %6s %11s %7s %6s %6s %14s  %s' "$t" "${elapsed}s" \
    "${runs:-?}" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$verdict")")
done

printf '\n%-9s %6s %11s %7s %6s %6s %14s  %s\n' target time runs exec/s cov ft corpus result
printf '%s\n' "${summary[@]}"
exit $status
