"""``multiprocessing.shared_memory.SharedMemory``: a named segment in /dev/shm, attached by name.

The parent creates the segment and unlinks it exactly once, after every worker has closed it.
Workers started by multiprocessing share the parent's resource tracker, so their attach
registers nothing new and no "leaked shared_memory" warning follows (cpython gh-82300 bites
processes with a tracker of their own); on Python >= 3.13 workers attach with track=False.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from multiprocessing import shared_memory

import numpy as np

from .._system.preflight import SHM_DIR
from ..plan import Plan
from ..runtimes.base import START_METHODS
from ..runtimes.group import ProcessGroup
from .base import Strategy, Traits


def _attach(name: str) -> shared_memory.SharedMemory:
    if sys.version_info >= (3, 13):
        return shared_memory.SharedMemory(name, track=False)
    return shared_memory.SharedMemory(name)


@dataclass
class _SegmentAttachment:
    name: str

    def open(self, plan: Plan, rows: range):
        segment = _attach(self.name)
        matrix = np.ndarray(plan.storage_shape, dtype=plan.dtype, buffer=segment.buf)

        def release() -> None:
            nonlocal matrix
            del matrix  # the segment cannot close while an array still exports its buffer
            segment.close()

        return matrix, 0, release


class SharedMemoryStrategy(Strategy):
    name = "shared_memory"
    summary = "multiprocessing.shared_memory.SharedMemory in /dev/shm, attached by name"
    traits = Traits(launcher="multiprocessing", start_methods=START_METHODS)
    runtime = ProcessGroup

    def allocate(self) -> None:
        # Pages come lazily: creating even a large segment takes microseconds.
        self._segment = shared_memory.SharedMemory(create=True, size=self.plan.storage_nbytes)
        self.storage = np.ndarray(self.plan.storage_shape, dtype=self.plan.dtype, buffer=self._segment.buf)

    @property
    def mapping_name(self) -> str | None:
        segment = getattr(self, "_segment", None)
        return f"/{segment.name}" if segment is not None else None

    def backing_file(self) -> str | None:  # /dev/shm, the default storage_directory
        segment = getattr(self, "_segment", None)
        return os.path.join(SHM_DIR, segment.name.lstrip("/")) if segment is not None else None

    def prefault_pays(self) -> bool:
        # The parent's 42.0 fill (pid) or its input (rowsum) created the pages.
        return self.work.over_default or self.work.reads

    def attachment(self, slot: int) -> _SegmentAttachment:
        return _SegmentAttachment(self._segment.name)

    def is_shared_view(self) -> bool:
        return np.shares_memory(self.storage, np.frombuffer(self._segment.buf, dtype=np.uint8))

    def release(self) -> None:
        segment = getattr(self, "_segment", None)
        if segment is None:
            return
        self._segment = None
        self.storage = None
        try:
            segment.close()
        finally:
            segment.unlink()
