#!/usr/bin/env bash
# tests/fuzz/run.sh BUILD_DIR SECONDS HARNESS...
#
# Runs each libFuzzer harness of BUILD_DIR (configured with -DRASTER_FUZZ=ON)
# for SECONDS, FUZZ_JOBS at a time (default: the online cores, so `make test`
# gives every harness about a minute in half the wall time).  Inputs:
# BUILD_DIR/corpus/<harness> (the working corpus, kept between runs so
# fuzzing accumulates), the seeds made by make_seeds.py, and the saved
# regressions in tests/corpus/<harness>.  A crash, leak, timeout or
# out-of-memory fails the run with the artifact's path: fix the bug, then
# copy the artifact into tests/corpus/<harness>/ so that check_corpus
# replays it in every `make test`.
set -euo pipefail
build=$1 seconds=$2
shift 2
root=$(cd "$(dirname "$0")/../.." && pwd)
jobs=${FUZZ_JOBS:-$(nproc)}
# FUZZ_SEED fixes libFuzzer's random choices (make test does, so that a
# failure there comes back on the next run); unset, each run explores anew.
seed_arg=()
[ -n "${FUZZ_SEED:-}" ] && seed_arg=(-seed="$FUZZ_SEED")

# One harness; its exit status says whether it found anything.
fuzz_one() {
  local h=$1 seeds
  case $h in
    fuzz_codec) seeds=$build/seeds/fuzz_codec ;;
    fuzz_shm_tables) seeds=$build/seeds/fuzz_shm_tables; mkdir -p "$seeds" ;;   # starts from nothing
    *) seeds=$build/seeds/fuzz_tiff ;;
  esac
  local work=$build/corpus/$h art=$build/artifacts/$h log=$build/$h.log
  mkdir -p "$work" "$art"
  local dirs=("$work" "$seeds")
  [ -d "$root/tests/corpus/$h" ] && dirs+=("$root/tests/corpus/$h")
  # Memory: a hostile header may legitimately size one segment's scratch up
  # to the 2 GiB the layout allows; more than that is a bug.
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
  LSAN_OPTIONS=suppressions=$root/tests/lsan.supp \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$build/tests/fuzz/$h" -max_total_time="$seconds" -max_len=65536 -timeout=25 \
      -rss_limit_mb=4096 -malloc_limit_mb=4096 -print_final_stats=1 \
      -artifact_prefix="$art/" "${seed_arg[@]}" "${dirs[@]}" >"$log" 2>&1
}

declare -A pid_of
for h in "$@"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  echo "fuzz: $h for ${seconds}s (log $build/$h.log)"
  fuzz_one "$h" &
  pid_of[$h]=$!
done

failed=0
summary=()
for h in "$@"; do
  log=$build/$h.log
  if ! wait "${pid_of[$h]}"; then
    grep -E "ERROR|SUMMARY|fuzz:|Test unit written" "$log" | head -20 || true
    echo "fuzz: $h FAILED; artifact in $build/artifacts/$h/ (log $log)"
    failed=1
    continue
  fi
  done_line=$(grep -E "DONE|#[0-9]+.*(pulse|NEW|REDUCE)" "$log" | tail -1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  cov=$(echo "$done_line" | grep -oE "cov: [0-9]+ ft: [0-9]+" || true)
  summary+=("$h: ${execs:-?} runs, ${rate:-?} exec/s, $cov, corpus $(ls "$build/corpus/$h" | wc -l) files")
done
# fuzz_shm_tables' arenas (/dev/shm/rasterloader-tc-v*-<uid>-fz<pid>) stay behind when it
# crashes: remove those whose process is gone.
for f in /dev/shm/rasterloader-tc-v*-"$(id -u)"-fz*; do
  [ -e "$f" ] || continue
  kill -0 "${f##*-fz}" 2>/dev/null || rm -f "$f"
done
printf 'fuzz: %s\n' "${summary[@]}"
exit $failed
