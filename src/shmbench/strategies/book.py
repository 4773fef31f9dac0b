"""The book's recipe, kept as the reference every report measures against.

High Performance Python (ch. 9) forks a process pool over a ``multiprocessing.Array`` and
maps one task per row, chunked as ``Pool.map`` chunks them. That is ``mp_array`` under fork
with ``block_rows=1`` and a pool's own dispatch, which is what this strategy runs; with the
``legacy-random`` workload it is the book's code, repeated random streams included.

The pool is ``concurrent.futures.ProcessPoolExecutor`` rather than ``multiprocessing.Pool``:
both dispatch chunks of tasks through one shared queue, but when a worker is killed
``Pool.map`` waits forever, and ``Pool.terminate`` can then block for good on the queue lock
the dead worker held; the executor reports the death and shuts down cleanly.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import wait

from ..plan import Plan
from ..work import fill_block, seed_legacy
from ..workers import WorkerDiedError, WorkerError, become_worker, process_alive
from . import mp_array
from .mp_array import MpArray

# Set in each pool worker by the initializer (fork: inherited, nothing is pickled).
_TASK: tuple | None = None


def _init(plan: Plan, workload: str) -> None:
    global _TASK
    become_worker()
    _TASK = (mp_array.as_matrix(mp_array._INHERITED, plan.shape), plan, workload)
    # Forked workers all hold the task queue open, so a killed parent never shows there:
    # without this watch they would wait for tasks forever.
    threading.Thread(target=_exit_with_parent, args=(mp.parent_process().sentinel,), daemon=True).start()


def _exit_with_parent(sentinel: int) -> None:
    wait([sentinel])
    os._exit(1)


def _fill_row(index: int):
    matrix, plan, workload = _TASK
    return fill_block(matrix[index:index + 1], workload, plan.seeds[index], os.getpid())


def _ready() -> int:
    return os.getpid()


def book_chunksize(tasks: int, workers: int) -> int:
    """The chunk size ``multiprocessing.Pool.map`` picks by default: about 4 chunks per worker."""
    chunks, extra = divmod(tasks, workers * 4)
    return chunks + 1 if extra else max(chunks, 1)


class Book(MpArray):
    name = "book"
    summary = "the book's recipe as a reference: mp_array, fork, a pool mapping one task per row"
    fixed_start_method = "fork"
    # Workers take chunks from one queue: on a small matrix a quick worker may take them all,
    # and the book's "every worker did some work" check would fail by chance.
    every_worker_gets_work = False

    def __init__(self, plan: Plan, workers: int = 1, workload: str = "random",
                 start_method: str | None = None) -> None:
        super().__init__(Plan(plan.rows, plan.cols, plan.seed, block_rows=1), workers, workload, start_method)
        self.pool: ProcessPoolExecutor | None = None
        self._pids: list[int] = []

    @property
    def worker_ids(self) -> list[int]:
        return list(self._pids)

    def prefault_pays(self) -> bool:
        return False  # the book does not prefault: the reference pays its first touch in the fill

    def start(self) -> None:
        seed_legacy(self.workload, self.plan.seed)
        before = {p.pid for p in mp.active_children()}
        self.pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("fork"), initializer=_init,
                                        initargs=(self.plan, self.workload))
        self.pool.submit(_ready).result()  # under fork the executor starts every worker at once
        self._pids = sorted(p.pid for p in mp.active_children() if p.pid not in before)

    def fill(self) -> None:
        chunksize = book_chunksize(self.plan.rows, self.workers)
        try:
            for row, sums in enumerate(self.pool.map(_fill_row, range(self.plan.rows), chunksize=chunksize)):
                self.take_sums(row, sums)
        except BrokenProcessPool as error:
            dead = [pid for pid in self._pids if not process_alive(pid)]
            who = f"pool worker {self._pids.index(dead[0])} (pid {dead[0]})" if dead else "a pool worker"
            raise WorkerDiedError(f"{who} died during fill; its row tasks are lost") from error
        except Exception as error:
            remote = getattr(error, "__cause__", None)
            raise WorkerError(f"a pool worker failed during fill:\n{remote or error!r}") from error

    def touch(self) -> None:
        pass

    def close(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        super().close()
