"""The book's recipe: ``multiprocessing.Array(c_double, N, lock=False)`` seen through ``np.frombuffer``.

With fork the array reaches workers as an inherited module global, as in the book. spawn and
forkserver children start from a fresh interpreter, so the array is handed to them when the
process is created (multiprocessing passes its file descriptor), which is what still works on
Python 3.14, whose Linux default is forkserver.
"""
from __future__ import annotations

import ctypes
import multiprocessing as mp
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import preflight
from ..plan import Plan
from .base import ProcessStrategy

# Set by the parent just before forking; fork children find the array here.
_INHERITED: Any = None


def as_matrix(raw: Any, shape: tuple[int, int]) -> np.ndarray:
    """A float64 matrix over the array's memory, with no copy."""
    return np.frombuffer(raw, dtype=np.float64).reshape(shape)


@dataclass
class _ArrayAttachment:
    raw: Any  # None under fork: the worker reads the inherited global instead

    def open(self, plan: Plan, share: range):
        raw = _INHERITED if self.raw is None else self.raw
        return as_matrix(raw, plan.shape), 0, lambda: None


class MpArray(ProcessStrategy):
    name = "mp_array"
    summary = "multiprocessing.Array(lock=False) + np.frombuffer, as in High Performance Python"

    def allocate(self) -> None:
        global _INHERITED
        ctx = mp.get_context(self.start_method)
        # lock=False gives a RawArray; it zero-fills every page here, in the parent.
        self._raw = ctx.Array(ctypes.c_double, self.plan.rows * self.plan.cols, lock=False)
        self.matrix = as_matrix(self._raw, self.plan.shape)
        if self.start_method == "fork":
            _INHERITED = self._raw
        if not self.is_shared_view():
            raise RuntimeError("np.frombuffer copied the multiprocessing.Array")

    def need(self) -> preflight.Need:
        # multiprocessing.heap puts the array in /dev/shm when it has room and falls back to a
        # temporary directory otherwise, so a small /dev/shm never makes it fail.
        return preflight.Need(super().need().ram, 0)

    def prefault_pays(self) -> bool:
        return True  # the parent zero-filled every page at allocation

    def attachment(self, slot: int) -> _ArrayAttachment:
        return _ArrayAttachment(None if self.start_method == "fork" else self._raw)

    def is_shared_view(self) -> bool:
        return np.shares_memory(self.matrix, np.frombuffer(self._raw, dtype=np.uint8))

    @property
    def mapping_name(self) -> str:
        # multiprocessing.heap backs the array with an unlinked file /dev/shm/pym-<pid>-*.
        return "/pym-"

    def release(self) -> None:
        global _INHERITED
        if _INHERITED is getattr(self, "_raw", None):
            _INHERITED = None
        self._raw = None
