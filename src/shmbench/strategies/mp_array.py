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
from ..runtimes.base import START_METHODS
from ..runtimes.group import ProcessGroup
from .base import Strategy, Traits


#: The ctypes element of the array: the book's ``c_double`` for float64. ctypes has no complex type,
#: so complex128 is an array of twice as many doubles.
CTYPES = {"float64": (ctypes.c_double, 1), "float32": (ctypes.c_float, 1), "int64": (ctypes.c_int64, 1),
          "int32": (ctypes.c_int32, 1), "uint8": (ctypes.c_uint8, 1), "complex128": (ctypes.c_double, 2)}


def as_storage(raw: Any, plan: Plan) -> np.ndarray:
    """The storage (the matrix, and any input below it) over the array's memory, with no copy."""
    return np.frombuffer(raw, dtype=plan.dtype).reshape(plan.storage_shape)


@dataclass(frozen=True)
class _ArrayAttachment:
    raw: Any

    def open(self, plan: Plan, rows: range):
        return as_storage(self.raw, plan), 0, lambda: None


class MpArray(Strategy):
    name = "mp_array"
    summary = "multiprocessing.Array(lock=False) + np.frombuffer, as in High Performance Python"
    traits = Traits(launcher="multiprocessing", start_methods=START_METHODS)
    runtime = ProcessGroup

    def allocate(self) -> None:
        # lock=False gives a RawArray; it zero-fills every page here, in the parent.
        kind, per_element = CTYPES[self.plan.dtype]
        self._raw = mp.get_context(self.start_method).Array(kind, self.plan.storage_nbytes // self.plan.itemsize * per_element,
                                                            lock=False)
        self.storage = as_storage(self._raw, self.plan)

    def need(self) -> preflight.Need:
        # multiprocessing.heap puts the array in /dev/shm when it has room and falls back to a
        # temporary directory otherwise, so a small /dev/shm never makes it fail.
        return preflight.Need(super().need().ram, 0)

    def prefault_pays(self) -> bool:
        return True  # the parent zero-filled every page at allocation

    def attachment(self, slot: int) -> _ArrayAttachment:
        return _ArrayAttachment(self._raw)

    def is_shared_view(self) -> bool:
        return np.shares_memory(self.storage, np.frombuffer(self._raw, dtype=np.uint8))

    @property
    def mapping_name(self) -> str:
        # multiprocessing.heap backs the array with an unlinked file /dev/shm/pym-<pid>-*.
        return "/pym-"

    def release(self) -> None:
        self._raw = None
