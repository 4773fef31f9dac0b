"""Threads of the parent, writing their blocks of one matrix in place.

numpy's ``Generator.random`` and ``ndarray.fill`` release the GIL, so threads fill in parallel
with no sharing mechanism at all. The ``pid`` workload writes each thread's native id.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..work import fill_blocks
from ..workers import WorkerError
from .base import Strategy

# A thread that never reaches the barrier has failed to start: do not wait on it forever.
_BARRIER_SECONDS = 60.0


class Threads(Strategy):
    name = "threads"
    summary = "a ThreadPoolExecutor of W threads writing blocks in place (pid: native thread ids)"
    uses_processes = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pool: ThreadPoolExecutor | None = None
        self._ids: list[int] = []

    @property
    def worker_ids(self) -> list[int]:
        return list(self._ids)

    def allocate(self) -> None:
        self.matrix = np.empty(self.plan.shape)

    def start(self) -> None:
        super().start()
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="shmbench-thread")
        self._ids = sorted(self._on_every_thread(lambda share: threading.get_native_id()))

    def _on_every_thread(self, work) -> list:
        """Run ``work(share)`` once on each of the W threads, one share each."""
        # The barrier holds every task until all W run at once, so no thread takes two shares.
        barrier = threading.Barrier(self.workers)

        def task(share: range):
            barrier.wait(_BARRIER_SECONDS)
            return work(share)

        futures = [self.pool.submit(task, share) for share in self.plan.shares(self.workers)]
        try:
            return [future.result() for future in futures]
        except threading.BrokenBarrierError as error:
            raise WorkerError("a thread never reached the start barrier") from error
        except Exception as error:
            barrier.abort()
            raise WorkerError(f"a thread failed: {error!r}") from error

    def fill(self) -> None:
        def work(share: range) -> None:
            sums = fill_blocks(self.matrix, self.plan, share, self.workload, threading.get_native_id())
            if share:
                self.take_sums(self.plan.block(share.start).start, sums)

        self._on_every_thread(work)

    def close(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        super().close()
