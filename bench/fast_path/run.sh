#!/usr/bin/env bash
# run.sh BUILD_DIR [bench_fast_path options] - make the bench files once
# (cached in bench/data/, gitignored) and run the fast-path benchmark, which
# writes bench/results/fast_path.md.  BENCH_SIZE=N makes smaller files.
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:?usage: run.sh BUILD_DIR [options]}"; shift
py="$here/.venv/bin/python"
[ -x "$py" ] || py=python3
size="${BENCH_SIZE:-4096}"
"$py" "$here/data/make_fixtures.py" --out "$here/data/fixtures" --bench "$here/bench/data" \
      --bench-size "$size" >/dev/null
mkdir -p "$here/bench/results"
cd "$here"
"$build/bench/bench_fast_path" --dir bench/data --out bench/results/fast_path.md "$@"
cat bench/results/fast_path.md
