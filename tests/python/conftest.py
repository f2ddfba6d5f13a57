"""Shared pytest fixtures: the fixture files (data/fixtures + manifest.json), the
committed sample, and opened-dataset caches for rasterio (the oracle) and
rasterloader.

Fixtures come from `make fixtures` (data/fixtures).  When that directory has no
manifest (a bare `pytest` on a fresh checkout), data/make_fixtures.py writes them
into a session temp dir first (about 15 s).  RASTER_FIXTURES overrides the path.
"""

import json
import os
import subprocess
import sys

import pytest

# The tile cache is on by default in one shared-memory arena per user: give
# this test run an arena of its own (inherited by every process it starts),
# so test runs never share state with each other or with a user's arena.
os.environ.setdefault("RASTERLOADER_TILE_CACHE_NAME", f"py{os.getpid()}")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _fixture_dir():
    env = os.environ.get("RASTER_FIXTURES")
    if env:
        return env
    return os.path.join(ROOT, "data", "fixtures")


def _ensure_fixtures(tmp_root):
    d = _fixture_dir()
    if os.path.exists(os.path.join(d, "manifest.json")):
        return d
    d = os.path.join(tmp_root, "fixtures")
    if not os.path.exists(os.path.join(d, "manifest.json")):
        subprocess.run([sys.executable, os.path.join(ROOT, "data", "make_fixtures.py"), "--out", d,
                        "--sample", os.path.join(tmp_root, "sample")], check=True,
                       stdout=subprocess.DEVNULL)
    return d


_TMP = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"rasterloader-pytest-{os.getuid()}")
FIXTURE_DIR = _ensure_fixtures(_TMP)
MANIFEST = json.load(open(os.path.join(FIXTURE_DIR, "manifest.json")))
GOOD = [e for e in MANIFEST if not e["malformed"]]
MALFORMED = [e for e in MANIFEST if e["malformed"]]


def fixture_path(name):
    return os.path.join(FIXTURE_DIR, name)


def sample_dir():
    d = os.path.join(ROOT, "data", "sample")
    if os.path.exists(os.path.join(d, "scene_a.tif")):
        return d
    d = os.path.join(_TMP, "sample")
    if not os.path.exists(os.path.join(d, "scene_a.tif")):
        subprocess.run([sys.executable, os.path.join(ROOT, "data", "make_fixtures.py"), "--out",
                        os.path.join(_TMP, "fixtures"), "--sample", d], check=True,
                       stdout=subprocess.DEVNULL)
    return d


class _Cache:
    """Datasets opened once per session (reads are stateless)."""

    def __init__(self, opener):
        self.opener, self.open = opener, {}

    def __call__(self, name):
        if name not in self.open:
            self.open[name] = self.opener(fixture_path(name))
        return self.open[name]

    def close(self):
        for ds in self.open.values():
            ds.close()


@pytest.fixture(scope="session")
def rio():
    import rasterio
    c = _Cache(rasterio.open)
    yield c
    c.close()


@pytest.fixture(scope="session")
def rl():
    import rasterloader
    c = _Cache(rasterloader.open)
    yield c
    c.close()


@pytest.fixture(scope="session")
def sample():
    return sample_dir()


@pytest.fixture
def pool():
    import rasterloader
    p = rasterloader.BufferPool(64 << 20)
    yield p
    p.close()


def assert_same(a, b):
    """Same type (masked or not), shape, dtype and bytes."""
    import numpy as np
    assert type(a) is type(b), (type(a), type(b))
    assert a.shape == b.shape, (a.shape, b.shape)
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    if isinstance(a, np.ma.MaskedArray):
        assert np.array_equal(np.ma.getmaskarray(a), np.ma.getmaskarray(b)), "masks differ"
        assert a.fill_value == b.fill_value or (a.fill_value != a.fill_value
                                                and b.fill_value != b.fill_value), \
            (a.fill_value, b.fill_value)
        a, b = a.data, b.data
    if a.tobytes() != b.tobytes():
        diff = np.argwhere(a != b)
        raise AssertionError(f"{len(diff)} element(s) differ, first at {diff[:3].tolist()}: "
                             f"{a[tuple(diff[0])] if len(diff) else '?'} vs "
                             f"{b[tuple(diff[0])] if len(diff) else '?'}")


_subprocess_arenas = iter(range(1 << 30))


def arena_paths(tag):
    """The /dev/shm objects of the arenas named with 'tag' (RASTERLOADER_TILE_CACHE_NAME), of any
    layout version (the version is part of the name)."""
    import glob
    return glob.glob(f"/dev/shm/rasterloader-tc-v*-{os.getuid()}-{tag}")


def own_arena_env(**extra):
    """os.environ for a subprocess (a bench or soak smoke) with a tile-cache arena
    of its own: the arena's budget is machine-wide, so a child that turns its
    cache off (budget 0) or sets a tiny one would otherwise change the cache of
    this test process and of every later test in it."""
    name = f"{os.environ.get('RASTERLOADER_TILE_CACHE_NAME', 'py')}s{next(_subprocess_arenas)}"
    return dict(os.environ, RASTERLOADER_TILE_CACHE_NAME=name, **extra)


# ---------------------------------------------------------------- no timing
# A test never depends on timing (README, "Tests never depend on timing"):
# it waits for events.
# wait_until() is the one polling loop: the condition is the event, the
# sleep only paces the loop, and the timeout is a generous deadlock guard
# that fails the test, never part of its outcome.

def wait_until(cond, what, timeout=60.0):
    import time
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"deadlock guard: {what} not seen in {timeout:.0f} s"
        time.sleep(0.002)


_urls = iter(range(1 << 30))


@pytest.fixture
def python_httpd(monkeypatch):
    """A loopback HTTP server whose answers come from a Python thread of this
    process (tests/remote/httpd.py's Quirky, over the sample directory), with
    the GDAL settings of a remote read.  A C read waiting for its bytes lets
    that thread answer only if it released the GIL: a read that completes
    proves it did, with no clock; GDAL_HTTP_TIMEOUT is the deadlock guard (a
    read holding the GIL fails after it instead of hanging).  .url(name) is a
    URL of a sample file that GDAL has not seen (its /vsicurl/ cache is keyed
    by URL), so every read asks the server."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "remote"))
    import httpd
    for k, v in {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif",
                 "GDAL_HTTP_MAX_RETRY": "0", "GDAL_HTTP_TIMEOUT": "60"}.items():
        monkeypatch.setenv(k, v)
    with httpd.Quirky(sample_dir()) as server:
        server.sample_url = lambda name: f"{server.url('slow/0/0/' + name)}?n={next(_urls)}"
        yield server
