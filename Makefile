# rasterloader - the two commands: `make demo` and `make test`.
# Both set up a fresh Debian machine from nothing (system packages through
# apt-get, a .venv with pinned Python packages), build, and run. Every step
# is idempotent: a second run only rebuilds what changed.

SHELL := /bin/bash
PY_SYS ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
BUILD := build
BUILD_ASAN := build-asan
BUILD_TSAN := build-tsan
BUILD_FUZZ := build-fuzz
FIXTURES := data/fixtures
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CTEST := ctest --output-on-failure -j$(JOBS)

DEB_PACKAGES := build-essential cmake pkg-config libgdal-dev libcurl4-openssl-dev gdal-bin libtiff-dev libzstd-dev \
                libdeflate-dev zlib1g-dev check valgrind clang libclang-rt-14-dev nginx-light
TORCH_PIN := torch==2.13.0

.PHONY: all setup sysdeps venv build build-asan build-tsan fixtures demo test test-c test-asan \
        test-valgrind test-tsan test-python python clean distclean build-fuzz fuzz-seeds fuzz test-fuzz \
        check-layers check-py-imports

all: build

# ---- set-up ---------------------------------------------------------------

setup: sysdeps venv

# Install only what is missing; name the packages on systems without apt-get.
sysdeps:
	@missing=""; \
	for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null; then \
	    SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	    echo "installing Debian packages:$$missing"; \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	  else \
	    echo "missing system packages (Debian names):$$missing; install them and re-run"; exit 1; \
	  fi; \
	fi

venv: $(VENV)/.stamp

$(VENV)/.stamp: requirements-dev.txt
	test -x $(PY) || $(PY_SYS) -m venv $(VENV)
	$(PIP) install -q $(TORCH_PIN)
	$(PIP) install -q -r requirements-dev.txt
	touch $@

# ---- build ----------------------------------------------------------------

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRASTER_WERROR=ON >/dev/null

build: sysdeps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

$(BUILD_ASAN)/CMakeCache.txt:
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DRASTER_SANITIZE=ON -DRASTER_WERROR=ON >/dev/null

build-asan: sysdeps $(BUILD_ASAN)/CMakeCache.txt
	cmake --build $(BUILD_ASAN) -j$(JOBS)

$(BUILD_TSAN)/CMakeCache.txt:
	cmake -S . -B $(BUILD_TSAN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRASTER_TSAN=ON -DRASTER_WERROR=ON >/dev/null

build-tsan: sysdeps $(BUILD_TSAN)/CMakeCache.txt
	cmake --build $(BUILD_TSAN) -j$(JOBS)

# libFuzzer harnesses (tests/fuzz): clang, -fsanitize=fuzzer,address,undefined.
$(BUILD_FUZZ)/CMakeCache.txt:
	CC=clang cmake -S . -B $(BUILD_FUZZ) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRASTER_FUZZ=ON \
	  -DRASTER_BUILD_TESTS=OFF >/dev/null

FUZZERS := fuzz_tiff_native fuzz_tiff_gdal fuzz_tiff_diff fuzz_codec fuzz_shm_tables
build-fuzz: sysdeps $(BUILD_FUZZ)/CMakeCache.txt
	cmake --build $(BUILD_FUZZ) -j$(JOBS) --target $(FUZZERS)

# ---- data -----------------------------------------------------------------

fixtures: venv
	$(PY) data/make_fixtures.py --out $(FIXTURES)
	$(PY) data/manifest_tsv.py $(FIXTURES)

# ---- run ------------------------------------------------------------------

# The ways a PyTorch user would choose between, each at its defaults: a rasterio
# Dataset, the same Dataset with rasterloader.open (drop-in) and the native
# rasterloader.torch.BatchDataset in DataLoader workers; samples/s, peak PSS of
# the process tree, identical pixels (a minute or two; the bench targets below
# are the real measurements).
demo: setup python
	$(PY) examples/demo.py

# ---- Python package ---------------------------------------------------------

# pip install . (scikit-build-core driving this CMake tree) into the venv; the
# stamp makes it re-run only when a source of the extension or package changes.
PY_STAMP := $(VENV)/.rasterloader-python.stamp
PY_SOURCES := $(shell find bindings/python lib include -type f \( -name '*.c' -o -name '*.h' \
                -o -name '*.py' -o -name '*.txt' -o -name '*.map' \) 2>/dev/null) \
              CMakeLists.txt pyproject.toml

python: $(PY_STAMP)

$(PY_STAMP): $(VENV)/.stamp $(PY_SOURCES) | sysdeps
	$(PIP) install --no-build-isolation -q .
	touch $@

# ---- wheel ------------------------------------------------------------------

# `make wheel`: dist/rasterloader-<version>-cp3X-cp3X-manylinux_2_Y_<arch>.whl,
# the extension stripped, linked with no GDAL, libtiff, libzstd, libdeflate or
# libcurl (it runs on rasterio's: docs/install.md), tagged for the newest
# glibc symbol it uses and checked under 5 MB by tools/retag_wheel.py.
# `make test-wheel`: that wheel in a Debian bookworm root with no system GDAL
# & co. (tests/wheel/run.sh; root, network for pip on the first run).
WHEEL_DIR := dist
.PHONY: wheel test-wheel
wheel: venv sysdeps
	rm -rf $(WHEEL_DIR)/raw && mkdir -p $(WHEEL_DIR)
	$(PIP) wheel --no-build-isolation --no-deps -q -C install.strip=true -C build-dir=build-python/wheel \
	  -w $(WHEEL_DIR)/raw .
	rm -f $(WHEEL_DIR)/rasterloader-*.whl
	$(PY) tools/retag_wheel.py $(WHEEL_DIR)/raw/rasterloader-*.whl $(WHEEL_DIR) >$(WHEEL_DIR)/LATEST
	rm -rf $(WHEEL_DIR)/raw

test-wheel: wheel fixtures
	tests/wheel/run.sh "$$(cat $(WHEEL_DIR)/LATEST)" $(CURDIR)/$(FIXTURES)

# ---- tests ----------------------------------------------------------------

# What `make test` runs, in order (figures: a fresh clone on 2 cores shared
# with other builds, load average 10-12, so read them as shares):
#   setup (apt packages if missing, the .venv)   ~9 min loaded, once per clone
#   build + fixtures                             ~4 min, once
#   check-layers the layers of lib/ (tools/check_layers.py): includes, and nm of the build
#   check-py-imports no import circle among the Python package's modules
#               (tools/check_py_imports.py, on the sources; a second)
#   test-c      every Check suite, full matrices, ctest -j$(JOBS); the two
#               matrix suites (check_read_matrix, check_tiff_equiv) start first
#   test-asan   the same suites under ASan+UBSan, every 8th matrix combination
#   test-valgrind  every suite under memcheck, every 64th combination
#   test-tsan   the threaded suites, every 16th combination
#   test-python pytest tests/python (rasterio is the oracle)
#   test-fuzz   a fuzz smoke: 20 s per libFuzzer harness + 15 s of atheris
# Only repetition is sampled (every matrix axis value still appears in each
# sampled run); the full versions: RASTER_MATRIX_SCALE=1 for any suite, the
# plain test-c always; `make test-full` (the fuzz smoke at a minute per
# harness); `make fuzz` (the campaign) and `make soak` (100k windows).
test: setup build check-layers check-py-imports fixtures test-c test-asan test-valgrind test-tsan test-python test-fuzz
	@echo "make test: all suites passed"

# `make test` with the fuzz smoke at the length it had before (60 s per
# harness, 30 s of atheris).
.PHONY: test-full
test-full:
	$(MAKE) test FUZZ_TEST_SECONDS=60 ATHERIS_TEST_SECONDS=30

# The layers of lib/ (its folders, listed once in tools/check_layers.py and
# shown in lib/README.md): the #include lines of the sources (a folder's own
# headers and the folder headers of the folders it uses, no circle) and nm
# of the build's lib/ objects (no call up, into another folder only through
# its face, no cycle); then the checker's own test (copies of lib/ with a
# header or a call that goes up must fail it).
check-layers: build
	$(PY_SYS) tools/check_layers.py $(BUILD)
	$(PY_SYS) tools/test_check_layers.py

# No import circle in the Python package (tools/check_py_imports.py reads the
# sources with ast: every import, at module level or in a function, counts).
check-py-imports:
	$(PY_SYS) tools/check_py_imports.py bindings/python/rasterloader

test-c: build fixtures
	$(CTEST) --test-dir $(BUILD)

# GDAL and PROJ keep process-lifetime caches that LeakSanitizer would report
# as leaks; tests/lsan.supp names them (and only them).
test-asan: build-asan fixtures
	ASAN_OPTIONS=abort_on_error=0:detect_leaks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 RASTER_MATRIX_SCALE=8 \
	$(CTEST) --test-dir $(BUILD_ASAN)

# valgrind runs every suite in one process each (CK_FORK=no) on a reduced
# matrix, $(JOBS) at a time (tests/run_valgrind.sh); not check_fork and
# check_shm_arena, whose forked children exit without cleaning up or are
# SIGKILLed (valgrind would count their leaks and fail them with its exit
# code), and which the plain and ASan runs cover.
test-valgrind: build fixtures
	RASTER_FIXTURES=$(CURDIR)/$(FIXTURES) tests/run_valgrind.sh $(JOBS) \
	  $$(ls $(BUILD)/check_* | grep -v -e '/check_fork$$' -e '/check_shm_arena$$' -e '\.log$$')

# ThreadSanitizer on the threaded suites, one process each (CK_FORK=no), on a
# reduced matrix: many threads reading one dataset with both readers and the
# decode workers (check_read_threads, check_tiff_threads' "threads" case),
# batch reads, pool churn and concurrent releases, DLPack exports, the tile
# cache (both suites run in the shared-memory arena, the default mode) and
# the fault-injection suite, remote reads from threads (check_remote's "http"
# case, against nginx).  check_shm_arena (processes killed in a loop) is
# not here: it forks, as check_fork does.  tests/tsan.supp holds only GDAL's
# internal lock order.  check_fork is not here: TSan does not support threads
# started after a fork.
TSAN_SUITES := check_read_threads check_pool_stress check_pool check_batch check_dlpack \
               check_tile_cache check_tile_cache_reads check_faults check_gdal_config
TSAN_ENV := CK_FORK=no RASTER_FIXTURES=$(CURDIR)/$(FIXTURES) RASTER_MATRIX_SCALE=16 RASTER_STRESS_SCALE=50 \
            TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp"
TSAN_RUN = log=$(BUILD_TSAN)/$(1).tsan.log; echo "tsan $(1) $(2)"; \
           if ! env $(TSAN_ENV) $(2) $(BUILD_TSAN)/$(1) >$$log 2>&1; then tail -80 $$log; exit 1; fi; tail -1 $$log
test-tsan: build-tsan fixtures
	@set -e; for t in $(TSAN_SUITES); do $(call TSAN_RUN,$$t,); done
	@set -e; if [ -x $(BUILD_TSAN)/check_tiff_threads ]; then $(call TSAN_RUN,check_tiff_threads,CK_RUN_CASE=threads); fi
	@# Remote reads from threads (the native reader's HTTP transfers and the fork
	@# gate they leave and re-enter); not its "fork" case (threads, then fork).
	@set -e; $(call TSAN_RUN,check_remote,CK_RUN_CASE=http)

test-python: python fixtures
	RASTER_FIXTURES=$(CURDIR)/$(FIXTURES) $(PY) -m pytest -q -rs tests/python

# Fuzzing: `make fuzz FUZZ_SECONDS=N` runs each harness for N seconds on its
# seeds (small files made from the fixture specs, in $(BUILD_FUZZ)/seeds),
# its saved regressions (tests/corpus/<harness>) and the corpus it grew
# before; `make test-fuzz` is the smoke that `make test` includes: 20 s per
# harness (two at a time) and 15 s of atheris, from the same seeds, saved
# regressions and fixed libFuzzer seed (FUZZ_SEED=1), so a failure comes back
# on the next run.  The campaign is `make fuzz` (FUZZ_SECONDS=300 each);
# `make test-fuzz FUZZ_TEST_SECONDS=60 ATHERIS_TEST_SECONDS=30` is the smoke
# at the length it had before.  Every input a fuzzer crashed on is replayed
# by check_corpus in test-c, test-asan and test-valgrind.
# The Python read API gets an atheris run of ATHERIS_SECONDS after them.
FUZZ_SECONDS ?= 300
FUZZ_TEST_SECONDS ?= 20
ATHERIS_SECONDS ?= 30
ATHERIS_TEST_SECONDS ?= 15
fuzz-seeds: venv fixtures
	$(PY) tests/fuzz/make_seeds.py $(BUILD_FUZZ)/seeds

ATHERIS = mkdir -p $(BUILD_FUZZ)/atheris && cd $(BUILD_FUZZ)/atheris && \
           RASTER_FIXTURES=$(CURDIR)/$(FIXTURES) $(CURDIR)/$(PY) $(CURDIR)/tests/fuzz/atheris_read_api.py \
           -max_total_time=$(ATHERIS_SECONDS) -rss_limit_mb=4096 >atheris.log 2>&1 \
           && grep -E "DONE|Done" atheris.log | tail -2 | sed 's/^/atheris: /' \
           || { tail -40 atheris.log; echo "atheris: FAILED (log $(BUILD_FUZZ)/atheris/atheris.log)"; exit 1; }

fuzz: build-fuzz fuzz-seeds python
	tests/fuzz/run.sh $(BUILD_FUZZ) $(FUZZ_SECONDS) $(FUZZERS)
	@$(ATHERIS)

test-fuzz: ATHERIS_SECONDS = $(ATHERIS_TEST_SECONDS)
test-fuzz: build-fuzz fuzz-seeds python
	FUZZ_SEED=$${FUZZ_SEED:-1} tests/fuzz/run.sh $(BUILD_FUZZ) $(FUZZ_TEST_SECONDS) $(FUZZERS)
	@$(ATHERIS)

# Loader benchmark: rasterio / tifffile / rasterloader reads and end-to-end
# DataLoader loops on the bench data (made on first use in bench/data/);
# writes bench/results/loader.md and loader.png (about 5 min on 2 cores).
# SMOKE=1 runs a tiny version on temporary files and writes nothing (< 30 s).
.PHONY: bench soak bench-cache bench-mosaic
# Tile-cache benchmark: overlapping 256x256 windows at stride 128, shuffled,
# rasterio (GDAL_CACHEMAX 64 MiB, 1 GiB) against rasterloader (tile cache off,
# 64 MiB, 1 GiB); writes bench/results/tile_cache.md (about 2 min).
bench-cache: python fixtures
	RASTER_FIXTURES=$(CURDIR)/$(FIXTURES) $(PY) bench/tile_cache/bench_tile_cache.py $(if $(SMOKE),--smoke,)

# Mosaic benchmark (issue 16): random 256x256 boxes over two Sentinel-2-like
# scenes in two UTM zones, the TorchGeo way vs Mosaic.read vs the loaders;
# writes bench/results/mosaic.md (about 3 min).
bench-mosaic: python fixtures
	RASTER_FIXTURES=$(CURDIR)/$(FIXTURES) $(PY) bench/mosaic/bench_mosaic.py $(if $(SMOKE),--smoke,)

bench: python fixtures
	RASTER_FIXTURES=$(CURDIR)/$(FIXTURES) $(PY) bench/loader/bench_loader.py $(if $(SMOKE),--smoke,)
	$(MAKE) bench-torchgeo $(if $(SMOKE),SMOKE=1,)
	$(MAKE) bench-defaults $(if $(SMOKE),SMOKE=1,)
	$(MAKE) bench-breakdown $(if $(SMOKE),SMOKE=1,)
	$(MAKE) bench-mosaic $(if $(SMOKE),SMOKE=1,)

# TorchGeo-style RasterDataset (tests/python/torchgeo_style.py: rasterio.open,
# WarpedVRT, rasterio.merge, DataLoader with 2 workers) with rasterio and with
# rasterloader swapped in, at defaults; writes bench/results/torchgeo.md (data
# made on first use in bench/torchgeo/data/; a few minutes on 2 cores).
# SMOKE=1: tiny temporary data, writes nothing.
.PHONY: bench-torchgeo
bench-torchgeo: python
	$(PY) bench/torchgeo/bench_torchgeo.py $(if $(SMOKE),--smoke,)

# Users' defaults: the usual rasterio Dataset, the same code with
# rasterloader.open (drop-in) and the native BatchDataset (float32 HWC batches
# into shared tensors), GDAL_CACHEMAX unset and the tile cache at its default,
# DataLoader with 2 workers, three regimes (one scene: 8,192 samples x 3
# epochs, 2 runs each; a corpus of distinct scenes; open per item); first epoch and warm
# epochs apart, samples/s and peak PSS of the process tree, the load before and
# after each run; writes bench/results/defaults.md (about 10 min on 2 cores;
# SMOKE=1 writes nothing).
.PHONY: bench-defaults bench-breakdown
bench-defaults: python fixtures
	RASTER_FIXTURES=$(CURDIR)/$(FIXTURES) $(PY) bench/defaults/bench_defaults.py $(if $(SMOKE),--smoke,)

# Where the native loader's time goes per batch (issue 22): each step timed in
# one process made to look like a worker, and a 2-worker DataLoader's
# hand-off stamped; writes bench/results/loader_breakdown.md (about 1 min;
# SMOKE=1: seconds, writes nothing).
bench-breakdown: python fixtures
	RASTERLOADER_TILE_CACHE_NAME=rl-bench-breakdown-$$$$ RASTER_FIXTURES=$(CURDIR)/$(FIXTURES) $(PY) bench/defaults/loader_breakdown.py $(if $(SMOKE),--smoke,)

# Soak: 100k 256x256 windows of data/sample (read(), pooled tiles through
# torch.from_dlpack, BatchLoader batches), RSS every 1k windows, about 5 min;
# writes bench/results/soak.md and soak.png.  Fails if
# RSS grows by 1 MiB after warm-up or the pool keeps bytes in use.
# SMOKE=1: 10k windows on data/sample, nothing written (also in make test).
soak: python
	$(if $(SMOKE),$(PY) bench/soak.py --windows 10000 --every 500 --window 128 --data data/sample --json >/dev/null && echo "soak smoke: OK",$(PY) bench/soak.py --windows 100000 --data data/sample)

# Remote benchmark: rasterloader (per-window threads, BatchLoader) vs rasterio
# over nginx on 127.0.0.1 behind a proxy adding 20 ms per request, same windows;
# writes bench/results/remote.md (about 1 min; a smoke runs in test-python).
.PHONY: bench-remote
bench-remote: sysdeps python
	$(PY) bench/remote/bench_remote.py

# Conversion benchmark (issue 22): throughput per dtype pair, kernels vs the
# scalar path vs GDALCopyWords vs memcpy, and warm read_hwc float32 vs uint16;
# writes bench/results/conversion.md (about 2 min; SMOKE=1: seconds, writes
# nothing; BEFORE_PY=path/to/python runs the read table with another build's
# rasterloader too, e.g. main's .venv before a change).
.PHONY: bench-convert
bench-convert: build python
	SMOKE=$(SMOKE) BEFORE_PY=$(BEFORE_PY) bench/convert/run.sh $(CURDIR)/$(BUILD)

# Warm-read benchmark (issue 22): 2,000 random 256x256 windows of the bench
# image and mask, second pass (every tile cached), per read shape: rasterio
# at its defaults, rasterloader, and NumPy's memcpy of the bytes returned;
# writes bench/results/warm_reads.md (about 2 min; SMOKE=1: seconds, writes
# nothing).  An arena of its own, never the default one.
.PHONY: bench-warm
bench-warm: python fixtures
	RASTERLOADER_TILE_CACHE_NAME=rl-bench-warm-$$$$ RASTER_FIXTURES=$(CURDIR)/$(FIXTURES) $(PY) bench/warm/bench_warm.py $(if $(SMOKE),--smoke,)

# Fast-path benchmark: native reader vs GDAL vs codec limit; writes
# bench/results/fast_path.md (bench data cached in bench/data/).
.PHONY: bench-c
bench-c: venv build
	bench/fast_path/run.sh $(CURDIR)/$(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_TSAN) $(BUILD_FUZZ) build-python

distclean: clean
	rm -rf $(VENV) $(FIXTURES)
