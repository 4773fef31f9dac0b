"""The book's dispatch: a process pool mapping one task per row, chunked as ``Pool.map`` chunks them.

The pool is ``concurrent.futures.ProcessPoolExecutor`` rather than ``multiprocessing.Pool``: both
hand chunks of tasks out through one shared queue, but when a worker is killed ``Pool.map`` waits
forever, and ``Pool.terminate`` can then block for good on the queue lock the dead worker held;
the executor reports the death and shuts down cleanly. Workers take chunks from one queue, so a
quick worker may take them all: which worker ran a row is not known, only that the row was lost.
"""
from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial

import numpy as np

from .base import FirstDeath, OnPart, Runtime, become_worker, children_now, end, failed, new_children
from .seat import Command, Seat, collected

# Each pool worker's view of the matrix, set by the initializer (fork: inherited, nothing pickled).
_MATRIX: tuple | None = None


def _init(attachment, plan, parent_pid: int) -> None:
    global _MATRIX
    become_worker(parent_pid)
    _MATRIX = attachment.open(plan, range(plan.rows))[:2]


def _row(plan, command: Command, row: int):
    matrix, first_row = _MATRIX
    return collected(Seat(plan, range(row, row + 1), matrix, first_row), command)[1]


def book_chunksize(tasks: int, workers: int) -> int:
    """The chunk size ``multiprocessing.Pool.map`` picks by default: about 4 chunks per worker."""
    chunks, extra = divmod(tasks, workers * 4)
    return chunks + 1 if extra else max(chunks, 1)


class RowPool(Runtime):
    """``len(shares)`` forked pool workers; every command is one task per row of the matrix."""

    launcher = "process pool"

    def start(self) -> list[int]:
        before = children_now()
        self.pool = ProcessPoolExecutor(len(self.shares), mp_context=mp.get_context(self.start_method),
                                        initializer=_init, initargs=(self.attachments[0], self.plan, os.getpid()))
        self.pool.submit(os.getpid).result()  # under fork the executor starts every worker at once
        self.ids = new_children(before)
        self._deaths = FirstDeath(self.ids)
        return self.ids

    def run(self, command: Command, on_part: OnPart | None = None, source: np.ndarray | None = None) -> list[int]:
        if command.name != "fill":
            return []  # the book's workers only fill; the matrix is already the parent's
        rows = range(self.plan.rows)
        try:
            for parts in self.pool.map(partial(_row, self.plan, command), rows,
                                       chunksize=book_chunksize(len(rows), len(self.shares))):
                for part in parts:
                    if on_part is not None:
                        on_part(0, *part)
        except BrokenProcessPool as error:
            raise self._deaths.report(command.name, "; its row tasks are lost") from error
        except Exception as error:
            raise failed(command.name, f"{getattr(error, '__cause__', None) or error!r}") from error
        return []

    def close(self) -> None:
        pool, self.pool = getattr(self, "pool", None), None
        if pool is not None:  # a stopped or stuck worker would hold shutdown(wait=True) for ever
            end(self.ids, lambda: pool.shutdown(wait=False, cancel_futures=True))
            pool.shutdown(wait=True)  # every worker has ended: the executor reaps them
        if getattr(self, "_deaths", None) is not None:
            self._deaths.close()
            self._deaths = None
