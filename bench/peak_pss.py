"""Peak PSS of a process tree, sampled in a thread: the benches' memory figure
(PSS splits shared pages between the processes that map them, so a tree of
DataLoader workers sharing the tile-cache arena is not counted once per worker,
as RSS would count it)."""

import threading
import time


class PeakPss:
    """Peak summed PSS of this process and its children, every 'period' s."""

    def __init__(self, period=0.2):
        import psutil
        self.proc, self.period, self.pss = psutil.Process(), period, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def sample(self):
        import psutil
        total = 0
        for p in [self.proc] + self.proc.children(recursive=True):
            try:
                total += p.memory_full_info().pss
            except psutil.Error:
                pass
        self.pss = max(self.pss, total)

    def run(self):
        while not self.stop.is_set():
            self.sample()
            time.sleep(self.period)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
