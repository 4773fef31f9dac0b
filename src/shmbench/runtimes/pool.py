"""The book's dispatch: a process pool mapping one task per row, chunked as ``Pool.map`` chunks them.

``concurrent.futures.ProcessPoolExecutor``, not ``multiprocessing.Pool``: when a worker is killed
``Pool.map`` waits forever, and ``Pool.terminate`` can then block for good on the queue lock the
dead worker held; the executor reports the death. Workers take chunks from one queue, so which
worker ran a row is not known: a death report says the rows were lost.
"""
from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial

import numpy as np

from .._system.inherited import left_alone
from .base import OnPart, Roll, Runtime, call_in, deliver, end, failed, ignore
from .seat import Command, Seat, collected

_SEAT: Seat | None = None  # each pool worker's seat, set by the initializer (fork: inherited)


def _init(attachment, plan, address: str, parent_pid: int) -> None:
    global _SEAT
    call_in(address, parent_pid)
    plan.seeds  # once here, not once per chunk of tasks (a chunk carries only the command)
    _SEAT = Seat(plan, range(0), *attachment.open(plan, range(plan.rows))[:2])


def _rows(command: Command, rows: range):
    _SEAT.rows = rows
    return collected(_SEAT, command)[1]


def book_chunksize(tasks: int, workers: int) -> int:
    """The chunk size ``multiprocessing.Pool.map`` picks by default: about 4 chunks per worker."""
    chunks, extra = divmod(tasks, workers * 4)
    return chunks + 1 if extra else max(chunks, 1)


class RowPool(Runtime):
    """``len(shares)`` pool workers; a fill is one task per row of the matrix."""

    launcher = "process pool"
    pool: ProcessPoolExecutor | None = None

    def start(self) -> list[int]:
        self._roll = Roll(len(self.shares))
        self.made(self._roll.close)
        self.pool = ProcessPoolExecutor(len(self.shares), mp_context=mp.get_context(self.start_method), initializer=_init,
                                        initargs=(self.attachments[0], self.plan, self._roll.address, os.getpid()))
        self.made(self._stop, self.pool)
        with left_alone(self.start_method):  # under fork the executor starts every worker at once
            self.pool.submit(os.getpid).result()
        self.ids = self._roll.take()
        return self.ids

    def run(self, command: Command, on_part: OnPart = ignore, source: np.ndarray | None = None) -> list[int]:
        if command.name == "fill":  # the book's workers only fill: the matrix is the parent's already
            # One task per row; a kernel is promised whole blocks (and its block's generator).
            if command.work.is_kernel:
                blocks = (self.plan.block(i) for i in range(self.plan.n_blocks))
                rows = [range(b.start, b.stop) for b in blocks]
            else:
                rows = [range(row, row + 1) for row in range(self.plan.rows)]
            # A worker that died while idle: the others might do every row before the executor
            # noticed, so ask the roll first (and after, for one that died during the fill).
            self._roll.check(command.name, "; its row tasks are lost")
            try:
                tasks = self.pool.map(partial(_rows, command), rows,
                                      chunksize=book_chunksize(len(rows), len(self.shares)))
                deliver(on_part, ((0, parts) for parts in tasks))
            except BrokenProcessPool as error:
                raise self._roll.report(command.name, "; its row tasks are lost") from error
            except Exception as error:
                raise failed(command.name, str(error.__cause__) if error.__cause__ else repr(error)) from error
            self._roll.check(command.name, "; its row tasks are lost")
        return []

    def _stop(self, pool: ProcessPoolExecutor) -> None:
        # A stopped or stuck worker would hold shutdown(wait=True) for ever: end them first.
        end(self.ids, lambda: pool.shutdown(wait=False, cancel_futures=True))
        pool.shutdown(wait=True)  # every worker has ended: the executor reaps them
