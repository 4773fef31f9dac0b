"""The interface every strategy implements: allocate -> start -> prepare -> fill -> collect -> close.

A strategy only decides how workers reach the matrix and how results come back; the work
itself is ``shmbench.work.fill_blocks`` for all of them.
"""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from .. import preflight
from ..pages import prefault
from ..plan import Plan, _positive_int
from ..work import READ_ONLY, check_workload, prepare, seed_legacy
from ..workers import Attachment, WorkerGroup, resolve_start_method


class Strategy(ABC):
    """One way of sharing a matrix between workers, with its phases as methods.

    Create once, then ``allocate()`` and ``start()``; ``prepare()``, ``fill()`` and ``collect()``
    may be repeated for warm timings; ``close()`` releases everything and is safe to call twice.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    #: Has workers of its own (threads or processes); serial has none.
    parallel: ClassVar[bool] = True
    uses_processes: ClassVar[bool] = True
    #: The parent's matrix is the very memory the workers write (no copy anywhere).
    shares_memory: ClassVar[bool] = True
    #: Whether each worker is sure to get a share of the blocks (the book's third check holds).
    every_worker_gets_work: ClassVar[bool] = True
    #: The only start method this strategy runs with, where it has one.
    fixed_start_method: ClassVar[str | None] = None

    def __init__(self, plan: Plan, workers: int = 1, workload: str = "random",
                 start_method: str | None = None) -> None:
        self.plan = plan
        self.workers = _positive_int("workers", workers)
        self.workload = check_workload(workload)
        if self.fixed_start_method and start_method not in (None, self.fixed_start_method):
            raise ValueError(f"{self.name} runs under {self.fixed_start_method} only, not {start_method!r}")
        if not self.uses_processes:
            self.start_method = None
        elif self.fixed_start_method:  # may be a pool's own way of starting, like joblib's loky
            self.start_method = self.fixed_start_method
        else:
            self.start_method = resolve_start_method(start_method)
        self.matrix: np.ndarray | None = None
        #: Per-row results of a read-only workload (``rowsum``), gathered from the workers.
        self.row_sums: np.ndarray | None = None
        #: Minor page faults per worker role ("worker 0", ...) in the last touch/fill/collect.
        self.last_faults: dict[str, int] = {}

    def _note(self, faults: list[int]) -> None:
        """Record the minor faults of worker 0, 1, ... in the phase that just ran."""
        self.last_faults = {f"worker {slot}": count for slot, count in enumerate(faults)}

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why this strategy cannot run here, or None when it can."""
        return None

    def need(self) -> preflight.Need:
        """Bytes this run needs at once (RAM in all, and /dev/shm), for the preflight."""
        return preflight.matrix_need(self.plan, self.workers, self.uses_processes, in_shm=self.shares_memory)

    def check_fits(self, force: bool = False) -> None:
        """Raise ``PreflightError`` if this run cannot fit the machine; call before ``allocate``."""
        preflight.check(self.need(), force)

    @property
    def worker_ids(self) -> list[int]:
        """The ids the ``pid`` workload writes: one per worker."""
        return [os.getpid()]

    @abstractmethod
    def allocate(self) -> None:
        """Create the parent's matrix (``self.matrix``)."""

    def start(self) -> None:
        """Start the workers and let each reach the matrix."""
        seed_legacy(self.workload, self.plan.seed)

    def prefault_pays(self) -> bool:
        """Whether prefaulting before the first fill saves time: only where the pages already
        exist (a new process then takes one fault per page to map them; populating fresh
        tmpfs pages with madvise was slower here than faulting them in during the fill)."""
        return False

    def touch(self) -> None:
        """Map the pages the fill will write before it starts (the ``touch`` phase)."""
        prefault(self.matrix)

    def prepare(self) -> None:
        """Reset the matrix to what the workload expects (42.0 everywhere for ``pid``, the
        input for ``rowsum``, whose sums start as NaN so a missing one cannot pass)."""
        prepare(self.matrix, self.workload, self.plan)
        if self.workload in READ_ONLY:
            self.row_sums = np.full(self.plan.rows, np.nan)

    def take_sums(self, first_row: int, sums: np.ndarray | None) -> None:
        """Place a worker's per-row results, which start at plan row ``first_row``."""
        if sums is not None:
            self.row_sums[first_row:first_row + len(sums)] = sums

    @property
    def output(self) -> np.ndarray:
        """What the run produced: the matrix, or the row sums of a read-only workload."""
        return self.row_sums if self.workload in READ_ONLY else self.matrix

    @abstractmethod
    def fill(self) -> None:
        """Run the worker core on every block."""

    def collect(self) -> None:
        """Bring results back into the parent's matrix, where they do not land there already."""

    def is_shared_view(self) -> bool:
        """True when ``self.matrix`` is the shared buffer itself, not a copy of it."""
        return True

    @property
    def mapping_name(self) -> str | None:
        """A part of the path under which the shared matrix shows in ``/proc/PID/maps``."""
        return None

    def close(self) -> None:
        """Stop workers and release the matrix; idempotent."""
        self.matrix = None

    def __enter__(self) -> Strategy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ProcessStrategy(Strategy):
    """A strategy whose workers are processes in a ``WorkerGroup``, one share of blocks each."""

    #: Whether a worker's rows hold the parent's prepared values (shared) or are its own.
    check_default: ClassVar[bool] = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.group: WorkerGroup | None = None

    @property
    def worker_ids(self) -> list[int]:
        return list(self.group.pids) if self.group else []

    @abstractmethod
    def attachment(self, slot: int) -> Attachment:
        """What worker ``slot`` is given to reach the matrix."""

    def start(self) -> None:
        super().start()
        shares = self.plan.shares(self.workers)
        group = WorkerGroup(self.start_method, self.plan, shares,
                            [self.attachment(slot) for slot in range(self.workers)])
        self.group = group
        group.start()

    def touch(self) -> None:
        self._note(self.group.touch())

    def fill(self) -> None:
        self._note(self.group.fill(self.workload, self.check_default, on_sums=self.take_sums))

    def close(self) -> None:
        try:
            if self.group is not None:
                self.group.close()
        finally:
            self.group = None
            self.release()
            super().close()

    def release(self) -> None:
        """Free the shared memory, once, after every worker has stopped."""

