"""fork() while another thread's remote read is stalled on a slow server.

The quirky loopback server (tests/remote/httpd.py, 127.0.0.1 only) holds the
first tile request of a /stall/ URL until the test releases it, and sets an
event when it holds one: so a thread is known to be inside a read, waiting
on the network, without any sleep.  fork() (os.fork, and a DataLoader
starting a worker) must return at once, not when the read ends (the fork
gate used to wait for it: GDAL_HTTP_TIMEOUT, 20 s here, or forever); the
child must read the same remote file correctly, and the parent's held read
must complete correctly once released.  Durations are only deadlock guards.
"""

import os
import sys
import threading
import time

import numpy as np
import pytest

import rasterloader
from conftest import FIXTURE_DIR, ROOT, assert_same

sys.path.insert(0, os.path.join(ROOT, "tests", "remote"))
import httpd  # noqa: E402

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork()")

COG = "cog_u16_deflate_pred2_tile256_pixel_3b_1024x1024.tif"
WIN = ((512, 768), (512, 768))
GUARD_S = 5.0       # a fork that waits for the read takes GDAL_HTTP_TIMEOUT (20 s)


@pytest.fixture(autouse=True)
def gdal_env(monkeypatch):
    for k, v in {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif",
                 "GDAL_HTTP_MAX_RETRY": "0", "GDAL_HTTP_TIMEOUT": "20"}.items():
        monkeypatch.setenv(k, v)


@pytest.fixture
def quirky():
    with httpd.Quirky(FIXTURE_DIR) as s:     # one per test: a release is for good
        yield s


class StalledRead:
    """A thread reading WIN of 'ds' until the server lets its request go."""

    def __init__(self, ds, srv):
        self.result, self.error = None, None
        self.thread = threading.Thread(target=self._run, args=(ds,))
        self.thread.start()
        assert srv.stalled.wait(60), "the read never reached the server"

    def _run(self, ds):
        try:
            self.result = ds.read(window=WIN)
        except Exception as e:          # reported by the test
            self.error = e

    def finish(self, srv):
        srv.release()
        self.thread.join(60)
        assert not self.thread.is_alive(), "the released read did not finish"
        assert self.error is None, self.error
        return self.result


def _wait_child(pid):
    """The child's exit code; kills it after 60 s (a deadlock guard)."""
    until = time.monotonic() + 60
    while time.monotonic() < until:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return "hung"


def test_os_fork_while_a_read_is_stalled(quirky, rl):
    want = rl(COG).read(window=WIN)
    ds = rasterloader.open(quirky.url(f"stall/65536/{COG}?os-fork"), reader="native")
    stalled = StalledRead(ds, quirky)
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:                         # the child: read the same window, say how it went
        code = 2
        try:
            code = 0 if np.array_equal(ds.read(window=WIN), want) else 3
        finally:
            os._exit(code)
    fork_s = time.monotonic() - t0
    child = _wait_child(pid)
    got = stalled.finish(quirky)
    assert fork_s < GUARD_S, f"fork() took {fork_s:.1f} s: it waited for the stalled read"
    assert child == 0, {2: "the child's read failed", 3: "the child read wrong bytes"}.get(child, child)
    assert_same(got, want)
    ds.close()


class _Windows:
    """A torch Dataset: WIN of one URL, read in the worker."""

    def __init__(self, url):
        self.url, self.ds = url, None

    def __len__(self):
        return 2

    def __getitem__(self, i):
        if self.ds is None:
            self.ds = rasterloader.open(self.url, reader="native")
        return self.ds.read(window=WIN)


def test_dataloader_worker_starts_while_a_read_is_stalled(quirky, rl):
    torch = pytest.importorskip("torch")
    want = rl(COG).read(window=WIN)
    url = quirky.url(f"stall/65536/{COG}?dataloader")
    ds = rasterloader.open(url, reader="native")
    stalled = StalledRead(ds, quirky)
    loader = torch.utils.data.DataLoader(_Windows(url), batch_size=None, num_workers=1,
                                         multiprocessing_context="fork")
    t0 = time.monotonic()
    it = iter(loader)                   # forks the worker
    start_s = time.monotonic() - t0
    batches = [next(it).numpy() for _ in range(2)]
    del it
    got = stalled.finish(quirky)
    assert start_s < GUARD_S, f"starting the worker took {start_s:.1f} s: fork waited for the read"
    for b in batches:
        assert_same(b, want)
    assert_same(got, want)
    ds.close()
