"""Tile.__dlpack__ per DLPACK.md: negotiation, capsules, lifetimes, consumers.

The ctypes "fake consumer" reads the capsule struct, renames the capsule and calls
the deleter exactly as numpy/torch do, so the protocol is pinned independently of
any consumer version (legacy path included).
"""

import ctypes
import gc
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
import torch
from rasterio.windows import Window

import rasterloader
from rasterloader import _core
from conftest import GOOD, fixture_path

NAME = next(e["name"] for e in GOOD if e["count"] == 3 and e["dtype"] == "uint16"
            and e["compress"] != "jpeg")
WIN = Window(0, 0, 24, 16)

# ---------------------------------------------------------------- ctypes mirror


class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", DLDevice), ("ndim", ctypes.c_int32),
                ("dtype", DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


class DLManagedTensor(ctypes.Structure):
    pass


LEGACY_DELETER = ctypes.CFUNCTYPE(None, ctypes.POINTER(DLManagedTensor))
DLManagedTensor._fields_ = [("dl_tensor", DLTensor), ("manager_ctx", ctypes.c_void_p),
                            ("deleter", LEGACY_DELETER)]


class DLPackVersion(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32)]


class DLManagedTensorVersioned(ctypes.Structure):
    pass


VERSIONED_DELETER = ctypes.CFUNCTYPE(None, ctypes.POINTER(DLManagedTensorVersioned))
DLManagedTensorVersioned._fields_ = [("version", DLPackVersion), ("manager_ctx", ctypes.c_void_p),
                                     ("deleter", VERSIONED_DELETER), ("flags", ctypes.c_uint64),
                                     ("dl_tensor", DLTensor)]

READ_ONLY, IS_COPIED = 1, 2
_api = ctypes.pythonapi
_api.PyCapsule_GetPointer.restype = ctypes.c_void_p
_api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
_api.PyCapsule_GetName.restype = ctypes.c_char_p
_api.PyCapsule_GetName.argtypes = [ctypes.py_object]
_api.PyCapsule_SetName.restype = ctypes.c_int
_api.PyCapsule_SetName.argtypes = [ctypes.py_object, ctypes.c_char_p]
# PyCapsule_SetName keeps the pointer: the names must live as long as the capsules.
USED = {b"dltensor": ctypes.c_char_p(b"used_dltensor"),
        b"dltensor_versioned": ctypes.c_char_p(b"used_dltensor_versioned")}


def capsule_name(cap):
    return _api.PyCapsule_GetName(cap)


class FakeConsumer:
    """Consume a capsule like numpy/torch: read the struct, rename it, own the deleter."""

    def __init__(self, cap):
        self.name = capsule_name(cap)
        ptr = _api.PyCapsule_GetPointer(cap, self.name)
        if self.name == b"dltensor_versioned":
            self.m = DLManagedTensorVersioned.from_address(ptr)
            self.version = (self.m.version.major, self.m.version.minor)
            self.flags = self.m.flags
        else:
            self.m = DLManagedTensor.from_address(ptr)
            self.version, self.flags = None, 0
        t = self.m.dl_tensor
        self.data, self.ndim = t.data, t.ndim
        self.shape = tuple(t.shape[i] for i in range(t.ndim))
        self.strides = tuple(t.strides[i] for i in range(t.ndim))
        self.dtype = (t.dtype.code, t.dtype.bits, t.dtype.lanes)
        self.device = (t.device.device_type, t.device.device_id)
        self.byte_offset = t.byte_offset
        assert _api.PyCapsule_SetName(cap, USED[self.name]) == 0
        self.deleted = False

    def delete(self):
        assert not self.deleted
        self.m.deleter(ctypes.pointer(self.m))   # ctypes drops the GIL around the call
        self.deleted = True


@pytest.fixture
def ds(rl):
    return rl(NAME)


def stats(pool):
    s = pool.stats()
    return s["bytes_in_use"], s["buffers_outstanding"], s["exports_outstanding"]


# ---------------------------------------------------------------- layout


def test_struct_layout_matches_ctypes_mirror():
    lay = _core.dlpack_layout()
    assert lay["tensor_size"] == ctypes.sizeof(DLTensor) == 48
    assert lay["managed_size"] == ctypes.sizeof(DLManagedTensor) == 64
    assert lay["managed_deleter"] == DLManagedTensor.deleter.offset == 56
    assert lay["versioned_size"] == ctypes.sizeof(DLManagedTensorVersioned) == 80
    assert lay["versioned_deleter"] == DLManagedTensorVersioned.deleter.offset == 16
    assert lay["versioned_flags"] == DLManagedTensorVersioned.flags.offset == 24
    assert lay["versioned_tensor"] == DLManagedTensorVersioned.dl_tensor.offset == 32
    assert lay["version"] == (1, 0)


# ---------------------------------------------------------------- negotiation


@pytest.mark.parametrize("max_version,name", [
    (None, b"dltensor"), ((0, 8), b"dltensor"), ((1, 0), b"dltensor_versioned"),
    ((1, 9), b"dltensor_versioned"), ((2, 0), b"dltensor_versioned")])
def test_negotiation_matrix(ds, pool, max_version, name):
    tile = ds.read_hwc(window=WIN, pool=pool)
    cap = tile.__dlpack__(max_version=max_version)
    assert capsule_name(cap) == name
    c = FakeConsumer(cap)
    if name == b"dltensor_versioned":
        assert c.version == (1, 0)          # ours, not the consumer's
        assert c.flags == 0
    assert c.shape == tile.shape and c.strides == (tile.shape[1] * tile.shape[2],
                                                   tile.shape[2], 1)
    assert c.dtype == (1, 16, 1) and c.device == (1, 0) and c.byte_offset == 0
    assert c.data == tile.data_ptr
    want = np.asarray(memoryview(tile))
    got = np.ctypeslib.as_array(ctypes.cast(c.data, ctypes.POINTER(ctypes.c_uint16)),
                                shape=c.shape)
    assert np.array_equal(got, want)
    del cap, got, want                       # renamed: the destructor leaves it alone
    assert stats(pool)[2] == 1
    c.delete()
    assert stats(pool)[2] == 0
    tile.release()
    assert stats(pool)[:2] == (0, 0)


def test_no_arguments_gives_legacy(ds, pool):
    tile = ds.read_hwc(window=WIN, pool=pool)
    assert capsule_name(tile.__dlpack__()) == b"dltensor"
    assert capsule_name(type(tile).__dlpack__(tile)) == b"dltensor"   # numpy <= 2.0 style
    assert tile.__dlpack_device__() == (1, 0)


def test_argument_errors(ds, pool):
    tile = ds.read_hwc(window=WIN, pool=pool)
    with pytest.raises(TypeError):
        tile.__dlpack__(max_version=(1,))
    with pytest.raises(TypeError):
        tile.__dlpack__(max_version="1.0")
    with pytest.raises(TypeError):
        tile.__dlpack__(None)                          # keyword-only
    with pytest.raises(ValueError, match="stream"):
        tile.__dlpack__(stream=1)
    with pytest.raises(BufferError, match="device"):
        tile.__dlpack__(dl_device=(2, 0))
    with pytest.raises(TypeError):
        tile.__dlpack__(dl_device="cpu")
    tile.__dlpack__(dl_device=(1, 0), max_version=(1, 0))
    with pytest.raises(TypeError):
        tile.__dlpack__(copy="yes")
    gc.collect()
    assert stats(pool)[2] == 0


def test_copy_true_and_false(ds, pool):
    tile = ds.read_hwc(window=WIN, pool=pool)
    for mv in (None, (1, 0)):
        c = FakeConsumer(tile.__dlpack__(max_version=mv, copy=True))
        assert c.data != tile.data_ptr
        if mv:
            assert c.flags & IS_COPIED
        got = np.ctypeslib.as_array(ctypes.cast(c.data, ctypes.POINTER(ctypes.c_uint16)),
                                    shape=c.shape)
        assert np.array_equal(got, np.asarray(memoryview(tile)))
        assert stats(pool)[2] == 0          # a copy holds no pool buffer
        c.delete()
        c = FakeConsumer(tile.__dlpack__(max_version=mv, copy=False))
        assert c.data == tile.data_ptr
        c.delete()
    a = np.from_dlpack(tile, copy=True)
    assert not np.shares_memory(a, tile.numpy())


def test_read_only(ds, pool):
    tile = ds.read_hwc(window=WIN, pool=pool)
    tile.set_read_only()
    assert tile.read_only
    with pytest.raises(BufferError, match="read-only"):
        tile.__dlpack__()                                   # legacy cannot say so
    FakeConsumer(tile.__dlpack__(copy=True)).delete()       # a copy is fine
    c = FakeConsumer(tile.__dlpack__(max_version=(1, 0)))
    assert c.flags & READ_ONLY
    c.delete()
    arr = np.from_dlpack(tile)
    assert not arr.flags.writeable
    assert memoryview(tile).readonly
    with pytest.raises((BufferError, TypeError), match="not writable|read-only"):
        ctypes.c_char.from_buffer(tile)                     # asks for a writable buffer


# ---------------------------------------------------------------- lifetimes


def test_capsule_never_consumed(ds, pool):
    tile = ds.read_hwc(window=WIN, pool=pool)
    for mv in (None, (1, 0)):
        cap = tile.__dlpack__(max_version=mv)
        assert stats(pool)[2] == 1
        del cap
        assert stats(pool)[2] == 0
    tile.release()
    assert stats(pool) == (0, 0, 0)


def test_renamed_capsule_is_left_alone(ds, pool):
    tile = ds.read_hwc(window=WIN, pool=pool)
    cap = tile.__dlpack__(max_version=(1, 0))
    c = FakeConsumer(cap)
    del cap
    gc.collect()
    tile.release()
    assert stats(pool)[1:] == (1, 1)        # the consumer still owns it
    c.delete()
    assert stats(pool) == (0, 0, 0)


def test_deleter_from_a_plain_thread_without_gil(ds, pool):
    tile = ds.read_hwc(window=WIN, pool=pool)
    c = FakeConsumer(tile.__dlpack__(max_version=(1, 0)))
    tile.release()
    th = threading.Thread(target=c.delete)
    th.start()
    th.join()
    assert stats(pool) == (0, 0, 0)


@pytest.mark.parametrize("consumer", ["numpy", "torch", "torch-legacy"])
def test_consumer_holds_memory_until_it_dies(ds, pool, consumer):
    tile = ds.read_hwc(window=WIN, pool=pool)
    want = np.asarray(memoryview(tile)).copy()
    if consumer == "numpy":
        x = np.from_dlpack(tile)
        view = x
    elif consumer == "torch":
        x = torch.from_dlpack(tile)
        view = x.numpy()
    else:
        x = torch.utils.dlpack.from_dlpack(tile.__dlpack__())
        view = x.numpy()
    assert np.shares_memory(view, np.asarray(memoryview(tile)))
    refs = sys.getrefcount(tile)
    tile.release()                        # Tile gone first: tensor outlives the Tile
    del tile
    gc.collect()
    assert stats(pool)[1:] == (1, 1)
    assert np.array_equal(view, want)     # still valid, same pixels
    del view, x
    gc.collect()
    assert stats(pool) == (0, 0, 0)
    assert refs >= 2


def test_tile_outlives_tensor(ds, pool):
    tile = ds.read_hwc(window=WIN, pool=pool)
    refs = sys.getrefcount(tile)
    x = torch.from_dlpack(tile)
    y = np.from_dlpack(tile)
    assert sys.getrefcount(tile) == refs    # C leases, no Python references
    x[0, 0, 0] = 12345                      # writes are shared
    assert y[0, 0, 0] == 12345 and np.asarray(memoryview(tile))[0, 0, 0] == 12345
    del x, y
    gc.collect()
    assert stats(pool)[1:] == (1, 0)
    assert tile.numpy().shape == tile.shape
    tile.release()
    assert stats(pool) == (0, 0, 0)


def test_double_import_fails_cleanly(ds, pool):
    tile = ds.read_hwc(window=WIN, pool=pool)
    cap = tile.__dlpack__()
    x = torch.utils.dlpack.from_dlpack(cap)
    with pytest.raises(Exception):
        torch.utils.dlpack.from_dlpack(cap)
    del cap, x
    gc.collect()
    tile.release()
    assert stats(pool) == (0, 0, 0)


def test_pool_destroyed_while_tensors_alive(ds):
    p = rasterloader.BufferPool(1 << 20)
    tile = ds.read_hwc(window=WIN, pool=p)
    want = np.asarray(memoryview(tile)).copy()
    x, y = torch.from_dlpack(tile), np.from_dlpack(tile)
    mv = memoryview(tile)
    tile.release()
    p.close()
    del p, tile
    gc.collect()
    assert np.array_equal(x.numpy(), want) and np.array_equal(y, want)
    assert np.array_equal(np.asarray(mv), want)
    del x, y, mv                    # the last owners free the memory (ASan-clean in C)
    gc.collect()


def test_released_tile_refuses_exports(ds, pool):
    tile = ds.read_hwc(window=WIN, pool=pool)
    tile.release()
    tile.release()                           # idempotent
    assert tile.released and "released" in repr(tile)
    for call in (tile.__dlpack__, tile.numpy, lambda: memoryview(tile)):
        with pytest.raises(BufferError, match="released"):
            call()
    with pytest.raises(TypeError):
        rasterloader.Tile()


def test_buffer_protocol_holds_its_own_reference(ds, pool):
    tile = ds.read_hwc(window=WIN, pool=pool)
    mv = memoryview(tile)
    assert mv.shape == tile.shape and mv.format == "H" and mv.strides == (
        tile.shape[1] * tile.shape[2] * 2, tile.shape[2] * 2, 2)
    assert not mv.readonly and mv.c_contiguous
    want = np.asarray(mv).copy()
    tile.release()
    assert stats(pool)[1] == 1
    assert np.array_equal(np.asarray(mv), want)
    mv.release()
    assert stats(pool) == (0, 0, 0)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16", "uint32", "int32",
                                   "float16", "float32", "float64"])
def test_dtypes_round_trip(ds, pool, dtype):
    tile = ds.read_hwc(window=WIN, pool=pool, out_dtype=dtype)
    assert tile.dtype == dtype
    a = np.from_dlpack(tile)
    assert a.dtype == np.dtype(dtype) and np.shares_memory(a, np.asarray(memoryview(tile)))
    t = torch.from_dlpack(tile)
    assert str(t.dtype) == f"torch.{dtype}"
    assert np.array_equal(t.numpy(), a)
    del a, t
    tile.release()
    assert stats(pool) == (0, 0, 0)


def test_interpreter_exit_with_live_exports():
    code = textwrap.dedent(f"""
        import atexit, numpy as np, torch, rasterloader
        ds = rasterloader.open({fixture_path(NAME)!r})
        pool = rasterloader.BufferPool(1 << 20)
        tile = ds.read_hwc(window=((0, 8), (0, 8)), pool=pool)
        KEEP = [torch.from_dlpack(tile), np.from_dlpack(tile), tile.__dlpack__(),
                tile.__dlpack__(max_version=(1, 0)), memoryview(tile)]
        atexit.register(lambda: KEEP.append(torch.from_dlpack(tile)))
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
