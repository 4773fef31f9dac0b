"""The book's recipe: ``multiprocessing.Array(c_double, N, lock=False)`` seen through ``np.frombuffer``.

The array goes to each worker with the process itself: inherited under fork, as in the book; under
spawn and forkserver multiprocessing passes its file descriptor, which is what still works on
Python 3.14, whose Linux default is forkserver.
"""
from __future__ import annotations

import ctypes
import multiprocessing as mp
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._system import preflight
from ..plan import Plan
from ._runtimes.base import START_METHODS
from ._runtimes.group import ProcessGroup
from .base import Strategy, Traits


def as_matrix(raw: Any, shape: tuple[int, int]) -> np.ndarray:
    """A float64 matrix over the array's memory, with no copy."""
    return np.frombuffer(raw, dtype=np.float64).reshape(shape)


@dataclass(frozen=True)
class _ArrayAttachment:
    raw: Any

    def open(self, plan: Plan, rows: range):
        return as_matrix(self.raw, plan.shape), 0, lambda: None


class MpArray(Strategy):
    name = "mp_array"
    summary = "multiprocessing.Array(lock=False) + np.frombuffer, as in High Performance Python"
    traits = Traits(launcher="multiprocessing", start_methods=START_METHODS)
    runtime = ProcessGroup

    def allocate(self) -> None:
        # lock=False gives a RawArray; it zero-fills every page here, in the parent.
        self._raw = mp.get_context(self.start_method).Array(ctypes.c_double, self.plan.rows * self.plan.cols,
                                                            lock=False)
        self.matrix = as_matrix(self._raw, self.plan.shape)

    def need(self) -> preflight.Need:
        # multiprocessing.heap puts the array in /dev/shm when it has room and falls back to a
        # temporary directory otherwise, so a small /dev/shm never makes it fail.
        return preflight.Need(super().need().ram, 0)

    def prefault_pays(self) -> bool:
        return True  # the parent zero-filled every page at allocation

    def attachment(self, slot: int) -> _ArrayAttachment:
        return _ArrayAttachment(self._raw)

    def is_shared_view(self) -> bool:
        return np.shares_memory(self.matrix, np.frombuffer(self._raw, dtype=np.uint8))

    @property
    def mapping_name(self) -> str:
        # multiprocessing.heap backs the array with an unlinked file /dev/shm/pym-<pid>-*.
        return "/pym-"

    def release(self) -> None:
        self._raw = None
