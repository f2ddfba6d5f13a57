"""Does torch's shared cache map a reused worker buffer once in the main process?

    python bench/defaults/torch_shared_cache_probe.py    (bench/results/loader_breakdown.md quotes it)
A worker returns views of ONE shared storage (allocated once) for every batch;
the main process drops each batch before asking for the next (as a training loop
does).  Count the main's mappings (_new_shared_fd_cpu calls: rebuild_storage_fd
maps only on a shared_cache miss) and its time per batch."""
import time, torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

N, NB = 32 * 256 * 256 * 4, 64

class Reuse(IterableDataset):
    def __iter__(self):
        buf = torch.empty(0).set_(torch.UntypedStorage._new_shared(N * 4), 0, (N,))
        for i in range(NB):
            buf[::1024].fill_(i)
            yield buf.view(32, 256, 256, 4)

if __name__ == "__main__":
    calls = [0]
    orig = torch.UntypedStorage._new_shared_fd_cpu
    def counting(*a, **k):
        calls[0] += 1
        return orig(*a, **k)
    torch.UntypedStorage._new_shared_fd_cpu = counting
    for hold in (False, True):
        calls[0] = 0
        kept = []
        t0 = time.perf_counter()
        for x in DataLoader(Reuse(), batch_size=None, num_workers=1, multiprocessing_context="fork"):
            float(x.mean())
            if hold:
                kept.append(x)
            del x
        dt = (time.perf_counter() - t0) / NB * 1e3
        print(f"hold={hold}: {NB} batches, main mapped the buffer {calls[0]} times, {dt:.2f} ms per batch")
