"""Errors keep their attributes across processes.

torch's DataLoader does not pickle a worker's exception: it sends the class
and the formatted traceback and re-raises ``cls(text)`` in the main process
(torch/_utils.py, ExceptionWrapper.reraise).  rasterloader's Datasets put the
attributes in that text and the classes take them back, so a failing sample's
``.index`` (its index into the samples, not its slot in the batch) arrives
with ``.status``, ``.message`` and the rest, with fork and spawn workers.
Plain pickling keeps every attribute too.
"""

import os
import pickle

import pytest
from torch.utils.data import DataLoader

import rasterloader
from rasterloader import errors
from rasterloader.torch import BatchDataset, WindowDataset, dataloader
from conftest import fixture_path

# corrupt_tile.tif: tile 4 (rows/cols 256..511) is garbage, the rest decodes.
BAD = fixture_path("corrupt_tile.tif")
GOOD_WINDOW = (0, 0, 64, 64)
BAD_WINDOW = (300, 300, 64, 64)
BAD_SAMPLE = 5


def _samples(n=8):
    return [(BAD, None, BAD_WINDOW if i == BAD_SAMPLE else GOOD_WINDOW) for i in range(n)]


def _expected(indices=tuple(range(8))):
    """The error the same batch read raises in this process, without workers."""
    with pytest.raises(errors.CorruptError) as ei:
        rasterloader.BatchLoader(_samples(), 8, prefetch=0, masks=False).read(list(indices))
    return ei.value


def _check(e, want):
    assert type(e) is type(want) and isinstance(e, OSError)
    assert e.index == BAD_SAMPLE
    assert e.status == want.status == 4 and e.status_name == "RASTER_E_CORRUPT"
    assert e.message == want.message and "corrupt_tile.tif" in e.message
    assert "DataLoader worker" in str(e)         # torch's text, with the worker traceback


def test_in_process_index_is_the_sample_index():
    """Without workers: .index is the sample's index into samples, .batch_index
    its slot in the batch that failed."""
    loader = rasterloader.BatchLoader(_samples(), 4, prefetch=0)
    with pytest.raises(errors.CorruptError) as ei:
        list(loader)
    assert ei.value.index == BAD_SAMPLE and ei.value.batch_index == BAD_SAMPLE - 4
    assert "batch sample 1 of 4" in str(ei.value)


def test_a_sample_that_does_not_open_has_its_index():
    samples = _samples()
    samples[6] = (BAD.replace("corrupt_tile", "no_such_file"), None, GOOD_WINDOW)
    loader = rasterloader.BatchLoader(samples, 4, prefetch=0)
    with pytest.raises(errors.RasterFileNotFoundError) as ei:
        loader.read([4, 6, 7])
    assert ei.value.index == 6 and ei.value.batch_index == 1
    assert "no_such_file" in str(ei.value)


def test_pickle_keeps_every_attribute():
    e = _expected()
    e.custom = {"path": BAD}
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is type(e) and str(back) == str(e)
    assert vars(back) == vars(e)
    fnf = pickle.loads(pickle.dumps(errors.RasterFileNotFoundError("x.tif: no such file", 2)))
    assert fnf.errno == 2 and isinstance(fnf, FileNotFoundError)


# A spawn worker costs a fresh interpreter importing torch (20-30 s of a
# loaded 2-core machine); what spawn adds over fork (the dataset pickled into
# the worker, the error pickled back) is one behaviour, checked once with
# BatchDataset here; WindowDataset's pickling is test_loader's
# test_datasets_and_loaders_pickle.  RASTER_TEST_ALL_START_METHODS=1 runs
# WindowDataset under spawn too.
WINDOW_CTXS = ["fork", "spawn"] if os.environ.get("RASTER_TEST_ALL_START_METHODS") == "1" else ["fork"]


@pytest.mark.parametrize("ctx", ["fork", "spawn"])
def test_batch_dataset_worker_error_keeps_index(ctx):
    want = _expected([4, 5])
    ds = BatchDataset(_samples(), batch_size=2)       # sample 5 is in batch 2, worker 0
    loader = DataLoader(ds, batch_size=None, num_workers=2, multiprocessing_context=ctx)
    with pytest.raises(errors.CorruptError) as ei:
        list(loader)
    _check(ei.value, want)
    assert ei.value.batch_index == 1


@pytest.mark.parametrize("ctx", WINDOW_CTXS)
def test_window_dataset_worker_error_keeps_index(ctx):
    wd = WindowDataset(_samples(), masks=False)
    per_sample = DataLoader(wd, batch_size=4, num_workers=2, multiprocessing_context=ctx)
    with pytest.raises(errors.CorruptError) as ei:
        list(per_sample)
    _check(ei.value, _expected([BAD_SAMPLE]))
    if ctx == "fork":                                  # batched reads: one spawn run is enough
        batched = dataloader(wd, 4, num_workers=2, multiprocessing_context=ctx)
        with pytest.raises(errors.CorruptError) as ei:
            list(batched)
        _check(ei.value, _expected([4, 5, 6, 7]))


def test_attributes_note_round_trip_through_torch_reraise():
    """The exact path torch takes: ExceptionWrapper(exc_info).reraise()."""
    import sys
    from torch._utils import ExceptionWrapper
    e = _expected()
    e.add_note(errors._attributes_note(e))
    try:
        raise e
    except errors.RasterError:
        wrapper = ExceptionWrapper(sys.exc_info(), where="in DataLoader worker process 0")
    wrapper = pickle.loads(pickle.dumps(wrapper))
    with pytest.raises(errors.CorruptError) as ei:
        wrapper.reraise()
    assert ei.value.index == e.index and ei.value.status == e.status
    assert ei.value.message == e.message
    # An error without the note still re-raises as its class, with the defaults.
    plain = errors.WindowError("x.tif: window outside", 7)
    try:
        raise plain
    except errors.RasterError:
        wrapper = ExceptionWrapper(sys.exc_info(), where="in DataLoader worker process 0")
    with pytest.raises(errors.WindowError) as ei:
        wrapper.reraise()
    assert ei.value.status == 7 and not hasattr(ei.value, "index")
