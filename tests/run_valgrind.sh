#!/usr/bin/env bash
# tests/run_valgrind.sh JOBS SUITE...
#
# Runs each Check suite under valgrind (memcheck, definite leaks are errors),
# JOBS at a time: valgrind runs one core per process, so on two cores two
# suites take the time of one.  Each suite runs in one process (CK_FORK=no,
# so leaks are seen) on a reduced matrix; its log goes next to it.  The
# first failure is printed with its log's tail and fails the run.
set -uo pipefail
jobs=$1
shift
root=$(cd "$(dirname "$0")/.." && pwd)

# Each suite's wall time goes into its log's last line (the summary prints
# it), so the slow ones can be seen without re-running.
run_one() {
  local t=$1 t0=$SECONDS
  run_memcheck "$t"
  local rc=$?
  echo "wall ${t##*/}: $((SECONDS - t0)) s" >>"$t.valgrind.log"
  return $rc
}

run_memcheck() {
  local t=$1
  CK_FORK=no RASTER_MATRIX_SCALE=64 RASTER_STRESS_SCALE=50 \
    valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
      --suppressions="$root/tests/valgrind.supp" "$t" >"$t.valgrind.log" 2>&1
}

declare -A pid_of
for t in "$@"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  run_one "$t" &
  pid_of[$t]=$!
done
failed=0
for t in "$@"; do
  if wait "${pid_of[$t]}"; then
    echo "valgrind $(basename "$t"): $(grep -E '^[0-9]+%: Checks' "$t.valgrind.log" || echo ok)" \
         "($(sed -n 's/^wall [^:]*: //p' "$t.valgrind.log"))"
  else
    echo "valgrind $(basename "$t"): FAILED (log $t.valgrind.log)"
    tail -50 "$t.valgrind.log"
    failed=1
  fi
done
exit $failed
