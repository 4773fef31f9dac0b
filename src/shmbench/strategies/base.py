"""A strategy is a *storage* (how the matrix is allocated and how a worker reaches it) plus a
*runtime* (how its workers run), described by a few frozen ``Traits``.

Its phases are methods: allocate -> start -> prepare -> touch -> fill -> internode -> collect -> close. The work
itself is ``shmbench.work`` for all of them, reached through the runtime's seats.
"""
from __future__ import annotations

import importlib
import os
import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from .._system import preflight, wire
from .._system.pages import prefault
from ..plan import Plan, positive_int
from ..work import prepare, seed_legacy, sums_dtype
from ..workloads import Workload, resolve
from ..runtimes.base import DEFAULT_START_METHOD, START_METHODS, Attachment, Runtime
from .traits import Traits
from ..runtimes.seat import Command


class StorageFullError(RuntimeError):
    """The file system the storage lives in has no room for the pages the parent is about to write."""


@dataclass(frozen=True)
class Given:
    """Workers that can hold the parent's storage itself: threads, or joblib, which sends a memmap by name."""

    storage: np.ndarray

    def open(self, plan: Plan, rows: range):
        return self.storage, 0, lambda: None


@dataclass(frozen=True)
class Private:
    """Each worker fills rows of its own (copies travel back in ``collect``)."""

    def open(self, plan: Plan, rows: range):
        return np.empty((len(rows), plan.cols), plan.dtype), rows.start, lambda: None


class Strategy(ABC):
    """One way of sharing a matrix between workers, with its phases as methods.

    Create once, then ``allocate()`` and ``start()``; ``prepare()``, ``fill()`` and ``collect()`` may
    be repeated for warm timings; ``close()`` releases everything and is safe to call twice.

    ``allocate`` makes ``self.storage`` of ``plan.storage_shape``: the matrix, with a writing
    kernel's input below it (``plan.with_input``); ``matrix`` and ``input`` are views of it.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    traits: ClassVar[Traits]
    runtime: ClassVar[type[Runtime]]
    #: Workers write rows of their own, which the parent never prepared; results come back in ``collect``.
    private_rows: ClassVar[bool] = False

    def __init__(self, plan: Plan, workers: int = 1, workload: str | Workload = "random",
                 start_method: str | None = None, nodes: int = 1) -> None:
        self.plan = plan
        self.workers = positive_int("workers", workers) if self.traits.parallel else 1
        #: The workload, resolved once: what it reads and writes, and what it needs around it.
        self.work = resolve(workload)
        self.work.check_dtype(plan.dtype)
        self.nodes = self._nodes(positive_int("nodes", nodes))
        if self.work.from_input and not plan.with_input:
            self.plan = replace(plan, with_input=True)
        self.start_method = self._start_method(start_method)
        self.storage: np.ndarray | None = None
        #: Per-row results of a read-only workload (``rowsum``), gathered from the workers.
        self.row_sums: np.ndarray | None = None
        #: Minor page faults per worker role ("worker 0", ...) in the last touch/fill/collect.
        self.last_faults: dict[str, int] = {}
        #: Bytes the last ``internode`` moved between nodes, and how that figure was had
        #: ("measured: ..." where the engine reports it, "computed: ..." otherwise); None for
        #: strategies that never cross nodes.
        self.internode_bytes: int | None = None
        self.internode_bytes_how: str | None = None
        #: What this host's network links received during the last ``internode``, less headers;
        #: None unless some workers run on other hosts.
        self.internode_wire_bytes: int | None = None
        #: How the engine was set up (``Runtime.settings``), kept after close for the record.
        self.settings: dict[str, str] = {}
        self._runtime: Runtime | None = None

    @property
    def workload(self) -> str:
        """The workload's name, as records and the commands sent to workers carry it."""
        return self.work.name

    def _nodes(self, nodes: int) -> int:
        if nodes > 1 and not self.traits.nodes:
            raise ValueError(f"{self.name} runs on one node; --nodes is for {', '.join(crossing())}")
        if nodes > self.workers:
            raise ValueError(f"{nodes} nodes need at least {nodes} workers: --workers is the total, split across nodes")
        return nodes

    def node_of(self, slot: int) -> int:
        """The node worker ``slot`` runs on: the workers split evenly, node 0 (the parent's) first
        (or as the started runtime placed them)."""
        if self._runtime is not None and self._runtime.nodes:
            return self._runtime.nodes[slot]
        return next(node for node, slots in enumerate(np.array_split(range(self.workers), self.nodes))
                    if slot in slots)

    def _start_method(self, asked: str | None) -> str | None:
        methods = self.traits.start_methods
        if asked is None:
            return self.traits.default_start_method()
        if not methods:
            raise ValueError(f"{self.name} runs under {self.traits.launcher} only, not {asked!r}")
        if asked not in methods:
            if asked in START_METHODS:
                raise ValueError(f"{self.name} runs under {' or '.join(methods)} only, not {asked!r}")
            raise ValueError(f"unknown start method {asked!r}; choose one of: {', '.join(methods)}")
        return asked

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why this strategy cannot run here, or None when it can."""
        for module in cls.traits.needs:
            try:
                importlib.import_module(module)
            except ImportError:
                install = f"'shmbench[{cls.traits.extra}]'" if cls.traits.extra else module
                return f"{module} is not installed (pip install {install})"
        return None

    def need(self) -> preflight.Need:
        """Bytes this run needs at once (RAM in all, and /dev/shm), for the preflight."""
        return preflight.matrix_need(self.plan.storage_nbytes, self.workers, self.traits.processes,
                                     in_shm=self.traits.shares_memory)

    def check_fits(self, force: bool = False) -> None:
        """Raise ``PreflightError`` if this run cannot fit the machine; call before ``allocate``."""
        preflight.check(self.need(), force)

    @property
    def worker_ids(self) -> list[int]:
        """The ids the ``pid`` workload writes: one per worker."""
        return list(self._runtime.ids) if self._runtime else []

    def on_this_host(self, slot: int) -> bool:
        """Whether worker ``slot`` runs on this host (its pid is one of this process table's)."""
        return self._runtime.on_this_host(slot) if self._runtime else True

    @abstractmethod
    def allocate(self) -> None:
        """Create the parent's storage (``self.storage``, of ``plan.storage_shape``)."""

    @property
    def matrix(self) -> np.ndarray | None:
        """The matrix the workers write (or, for a read-only workload, read)."""
        if self.storage is None or not self.plan.with_input:
            return self.storage
        return self.storage[:self.plan.rows]

    @property
    def input(self) -> np.ndarray | None:
        """What a read-only workload or a kernel reads: the input below the matrix, or the matrix."""
        if self.storage is None:
            return None
        if self.plan.with_input:
            return self.storage[self.plan.rows:]
        return self.storage if self.work.reads else None

    def attachment(self, slot: int) -> Attachment:
        """What worker ``slot`` is given to reach the storage."""
        return Private() if self.private_rows else Given(self.storage)

    def start(self) -> None:
        """Start the workers and let each reach the matrix."""
        seed_legacy(self.work, self.plan.seed)
        self._runtime = self.runtime(self.plan, self.plan.share_rows(self.workers),
                                     [self.attachment(slot) for slot in range(self.workers)], self.start_method,
                                     [self.node_of(slot) for slot in range(self.workers)])
        self._runtime.start()
        self.settings = dict(self._runtime.settings)

    def prefault_pays(self) -> bool:
        """Whether prefaulting before the first fill saves time: only where the pages already
        exist (a new process then takes one fault per page to map them; populating fresh
        tmpfs pages with madvise was slower here than faulting them in during the fill)."""
        return False

    def touch(self) -> None:
        """Map the pages the fill will write before it starts (the ``touch`` phase)."""
        if self.traits.processes:
            self._note(self._runtime.run(Command("touch")))
        else:
            prefault(self.matrix)

    def backing_file(self) -> str | int | None:
        """The storage's file in a file system (a /dev/shm segment), by its path or by a descriptor
        the strategy holds open (a file whose name is gone); None where there is none."""
        return None

    def storage_directory(self) -> str | None:
        """The directory of the file system the shared matrix's pages come from, where a shortage
        is looked for when a worker dies (/dev/shm unless the strategy says otherwise)."""
        return preflight.SHM_DIR if self.traits.processes else None

    def check_room(self) -> None:
        """Before the parent writes the storage itself: a page of a full tmpfs would kill it with
        SIGBUS, which no handler survives, so the room its file still lacks is compared with the
        room its file system has, and a shortage is raised as ``StorageFullError``."""
        backing, directory = self.backing_file(), self.storage_directory()
        try:
            status = os.stat(backing) if backing is not None and directory else None
        except FileNotFoundError:
            return
        if status is None:
            return
        lacking = status.st_size - status.st_blocks * 512  # the pages not yet allocated to it
        usage = shutil.disk_usage(directory)
        if lacking > usage.free:
            raise StorageFullError(f"the parent cannot write the matrix: {directory} has "
                                   f"{usage.free / 2**20:.0f} MiB free of {usage.total / 2**20:.0f} MiB, and its "
                                   f"file needs {lacking / 2**20:.0f} MiB more (each write past that dies of SIGBUS)")

    def prepare(self) -> None:
        """Reset the storage to what the workload expects (42.0 everywhere for ``pid``, the
        input for ``rowsum``, whose sums start as NaN so a missing one cannot pass)."""
        if self.work.parent_writes:
            self.check_room()
        prepare(self.storage, self.work, self.plan)
        if self.work.reads:
            self.row_sums = np.full(self.plan.rows, np.nan, sums_dtype(self.plan.dtype))

    def fill(self) -> None:
        """Run the worker core on every row."""
        self._note(self._runtime.run(Command("fill", self.workload, not self.private_rows), self._take,
                                     self.input if self.private_rows else None))

    def internode(self) -> None:
        """Move what the parent's node needs from the other nodes (the ``internode`` phase): the
        rows the workers off it wrote. Nothing for strategies on one node, or a read-only workload."""
        if not self.traits.nodes:
            return
        if self.work.reads:
            self.internode_bytes, self.internode_bytes_how = 0, "computed: a read-only workload sends back sums only"
            return
        # Where workers run on other hosts, what arrived over this host's links is read as well.
        elsewhere = not all(self._runtime.on_this_host(slot) for slot in range(self.workers))
        before = wire.received() if elsewhere else None
        faults, self.internode_bytes, self.internode_bytes_how = self._runtime.internode(
            Command("collect", self.workload), self._take)
        if before is not None:
            self.internode_wire_bytes = wire.payload_since(before)
        self._note(faults)

    def collect(self) -> None:
        """Bring results back into the parent's matrix, where they do not land there already."""
        if self.private_rows and not self.work.reads:
            self._note(self._runtime.run(Command("collect", self.workload), self._take))

    def _take(self, slot: int, kind: str, where: int, part: np.ndarray) -> None:
        if kind == "sums":
            self.row_sums[where:where + len(part)] = part
        else:
            self.matrix[self.plan.block(where)] = part

    def _note(self, faults: list[int]) -> None:
        self.last_faults = {f"worker {slot}": count for slot, count in enumerate(faults)}

    @property
    def output(self) -> np.ndarray:
        """What the run produced: the matrix, or the row sums of a read-only workload."""
        return self.row_sums if self.work.reads else self.matrix

    def busy(self) -> list[str]:
        """The workers still on a command, each with the block it is on, where the runtime can tell."""
        return self._runtime.busy() if self._runtime is not None else []

    def reveal(self) -> None:
        """Make the output readable by the parent for verification, untimed: nothing, except for a
        program that keeps its result out of the parent's reach (the MPI peer's rank 0)."""

    def is_shared_view(self) -> bool:
        """True when ``self.matrix`` is the shared buffer itself, not a copy of it."""
        return self.traits.shares_memory

    @property
    def mapping_name(self) -> str | None:
        """A part of the path under which the shared matrix shows in ``/proc/PID/maps``."""
        return None

    def release(self) -> None:
        """Free the matrix's memory, once, after every worker has stopped."""

    def close(self) -> None:
        """Stop workers and release the matrix; idempotent."""
        runtime, self._runtime = self._runtime, None
        try:
            if runtime is not None:
                runtime.close()
        finally:
            self.release()
            self.storage = None

    def __enter__(self) -> Strategy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def crossing() -> list[str]:
    """The names of the strategies that run across nodes, read from the strategy classes
    themselves (the registry imports this module, so it is not asked)."""
    found, todo = [], list(Strategy.__subclasses__())
    while todo:
        cls = todo.pop(0)
        todo.extend(cls.__subclasses__())
        if "name" in vars(cls) and cls.traits.nodes and cls.name not in found:
            found.append(cls.name)
    return sorted(found)


__all__ = ["DEFAULT_START_METHOD", "START_METHODS", "Given", "Private", "Strategy", "Traits", "crossing"]
