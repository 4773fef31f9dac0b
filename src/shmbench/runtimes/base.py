"""The protocol every way of running workers follows: start, run a command, close.

A runtime knows *how* its workers run (our process group, a process pool, loky, Ray actors, MPI
ranks, threads, Dask); what to do when one fails or dies (``errors``, ``deaths``), what a worker
sets first (``worker_side``) and how workers are stopped for good (``stopping``) are written
once beside it. The names they define are importable from here too.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, ExitStack
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np

from .._system.janitor import Janitor
from .._system.start_methods import DEFAULT_START_METHOD, START_METHODS
from ..plan import Plan
from .deaths import FirstDeath, Roll, call_in, first_dead
from .errors import WorkerDiedError, WorkerError, died, failed, on_block
from .seat import Command
from .stopping import GRACE_SECONDS, end
from .worker_side import WORKER_BLAS_THREADS, become_worker, process_alive, watch_parent

T = TypeVar("T")

#: How long a worker on another host may go unheard (no heartbeat at its scheduler, no answer at its
#: node's port) before it is called lost: an engine's own checks take minutes to give up on a host.
SILENT_SECONDS = 10.0

__all__ = ["DEFAULT_START_METHOD", "GRACE_SECONDS", "START_METHODS", "WORKER_BLAS_THREADS", "Attachment", "Command",
           "FirstDeath", "OnPart", "Roll", "Runtime", "WorkerDiedError", "WorkerError", "become_worker",
           "call_in", "deliver", "died", "end", "failed", "first_dead", "ignore", "on_block", "process_alive",
           "watch_parent"]

#: ``on_part(slot, kind, where, array)``: a worker's block ("block", block index) or sums ("sums", first row).
OnPart = Callable[[int, str, int, np.ndarray], None]


def ignore(*part: Any) -> None:
    """An ``OnPart`` for commands whose answers carry nothing to keep."""


def deliver(on_part: OnPart, answers: Iterable[tuple[int, Iterable[tuple]]]) -> None:
    """Hand every part of every worker's answer, (slot, parts), to ``on_part``."""
    for slot, parts in answers:
        for part in parts:
            on_part(slot, *part)


class Attachment(Protocol):
    """How a worker reaches the matrix; pickled into the worker (or inherited with fork)."""

    def open(self, plan: Plan, rows: range) -> tuple[np.ndarray, int, Callable[[], None]]:
        """Return (matrix view, plan row of its row 0, function that releases it)."""


class Runtime(ABC):
    """A way of running ``len(shares)`` workers, worker ``i`` owning the plan rows ``shares[i]``.

    ``start`` returns the worker ids; ``run`` carries one command to every worker and returns each
    one's minor page faults, or raises the one ``WorkerDiedError``/``WorkerError``; ``close`` stops
    and reaps every worker, once, whatever state they are in.

    Teardown is written where things are made: ``start`` registers the undoing of each thing as it
    makes it (``made``, ``hire_janitor``), and the one ``close`` undoes them, the last
    made first, also after a start cut short midway.
    """

    #: How the workers are launched, as ``shmbench list`` and the results name it.
    launcher: ClassVar[str]

    def __init__(self, plan: Plan, shares: Sequence[range], attachments: Sequence[Attachment],
                 start_method: str | None = None, nodes: Sequence[int] = ()) -> None:
        self.plan = plan
        self.shares = list(shares)
        self.attachments = list(attachments)
        self.start_method = start_method
        #: The node each worker runs on; node 0 is the parent's.
        self.nodes = list(nodes) or [0] * len(self.shares)
        self.ids: list[int] = []
        #: How the engine was set up (client options, store size, wait mode...), in words, for the
        #: record: a reader can check each contender was run as its engine's users would.
        self.settings: dict[str, str] = {}
        self._made = ExitStack()

    def made(self, undo: Callable[..., object], *args: object, **kwargs: object) -> None:
        """Have ``close`` call ``undo(*args, **kwargs)``: registered as the thing it undoes is made."""
        self._made.callback(undo, *args, **kwargs)

    def entered(self, context: AbstractContextManager[T]) -> T:
        """``context`` entered now and left by ``close`` in its turn (a setting held while the runtime runs)."""
        return self._made.enter_context(context)

    def hire_janitor(self, paths: Sequence[str] = ()) -> Janitor:
        """A janitor for what the runtime starts beside its workers, which it ends (and ``paths``
        it removes) should the parent die. Hired first, it is dismissed after everything else is
        undone; if ``start`` was cut short (no worker ids yet), it first sweeps as if the parent
        had died: the runtime does not know all it started."""
        janitor = Janitor()
        janitor.watch(paths=list(paths))
        self.made(lambda: janitor.close(clean=not self.ids))
        return janitor

    @abstractmethod
    def start(self) -> list[int]:
        """Start every worker and wait until each has reached the matrix; return their ids."""

    @abstractmethod
    def run(self, command: Command, on_part: OnPart = ignore, source: np.ndarray | None = None) -> list[int]:
        """Run ``command`` on every worker. ``source`` is the parent's input matrix, for workers
        that cannot see it (a read-only workload on private storage)."""

    def internode(self, command: Command, on_part: OnPart = ignore) -> tuple[list[int], int, str]:
        """Bring what the workers off the parent's node hold to it (a ``collect``'s answers, where
        the runtime has several nodes): (each worker's faults, bytes moved, how they were counted)."""
        return [0] * len(self.shares), 0, "computed: nothing crosses nodes"

    def close(self) -> None:
        """Stop and reap every worker and undo whatever ``start`` made, the last made first; once
        (again, it does nothing), whatever state the workers are in."""
        made, self._made = self._made, ExitStack()
        made.close()

    def busy(self) -> list[str]:
        """The workers that have not answered the command out, in words; [] where it cannot tell."""
        return []

    def on_this_host(self, slot: int) -> bool:
        """Whether worker ``slot`` runs on this host, where its pid means something (its memory can
        be read); False for a worker of a cluster elsewhere that the run joined."""
        return True

    def where(self, slot: int | None) -> str:
        """A share in words, for reports of runtimes that cannot tell the block a worker was on."""
        rows = self.shares[slot] if slot is not None else None
        return f" in its share (rows {rows.start}-{rows.stop - 1})" if rows else ""
