"""Runtimes inside the parent process: the parent alone (serial), or a pool of threads.

numpy's ``Generator.random`` and ``ndarray.fill`` release the GIL, so threads fill in parallel with
no sharing mechanism at all; the ``pid`` workload writes each thread's native id.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .base import OnPart, Runtime, WorkerError, ignore
from .seat import Command, Seat, execute

# A thread that never reaches the barrier has failed to start: do not wait on it forever.
_BARRIER_SECONDS = 60.0


class Inline(Runtime):
    """No workers: the parent runs every command on the whole matrix itself."""

    launcher = "none"

    def start(self) -> list[int]:
        matrix, first_row, _ = self.attachments[0].open(self.plan, self.shares[0])
        self._seat = Seat(self.plan, self.shares[0], matrix, first_row)
        self.ids = [os.getpid()]
        return self.ids

    def run(self, command: Command, on_part: OnPart = ignore, source: np.ndarray | None = None) -> list[int]:
        execute(self._seat, command, lambda *part: on_part(0, *part), source)
        return []  # the parent's own faults are the parent's figure

    def close(self) -> None:
        self._seat = None


class Threads(Runtime):
    """A ``ThreadPoolExecutor`` of one thread per share; a barrier makes each take exactly one share."""

    launcher = "threads"

    def start(self) -> list[int]:
        self.pool = ThreadPoolExecutor(len(self.shares), thread_name_prefix="shmbench-thread")
        self._seats: dict[int, Seat] = {}
        self.ids = self._on_every_thread(self._sit)
        return self.ids

    def _sit(self, slot: int) -> int:
        matrix, first_row, _ = self.attachments[slot].open(self.plan, self.shares[slot])
        self._seats[slot] = Seat(self.plan, self.shares[slot], matrix, first_row,
                                 worker_id=threading.get_native_id())
        return threading.get_native_id()

    def _on_every_thread(self, work) -> list:
        """Run ``work(slot)`` once on each thread, all at once."""
        barrier = threading.Barrier(len(self.shares))

        def task(slot: int):
            barrier.wait(_BARRIER_SECONDS)
            return work(slot)

        futures = [self.pool.submit(task, slot) for slot in range(len(self.shares))]
        try:
            return [future.result() for future in futures]
        except threading.BrokenBarrierError as error:
            raise WorkerError("a thread never reached the start barrier") from error
        except Exception as error:
            barrier.abort()
            raise WorkerError(f"a thread failed: {error!r}") from error

    def run(self, command: Command, on_part: OnPart = ignore, source: np.ndarray | None = None) -> list[int]:
        def work(slot: int) -> int:
            return execute(self._seats[slot], command, lambda *part: on_part(slot, *part), source)

        self._on_every_thread(work)
        return []  # threads share the parent's fault counter: the parent's figure is theirs

    def close(self) -> None:
        pool, self.pool = getattr(self, "pool", None), None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        self._seats = {}
