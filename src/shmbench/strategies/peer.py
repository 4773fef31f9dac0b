"""A contender's peer (``shmbench.peers``) as a cell like any other: started, its passes timed and
paired with serial's and the yardstick's, verified, closed.

The peer's own code does the job its engine's way; this adapter only owns what a benchmark must:
a scratch folder for the engine's files, a janitor should the parent die, the signal handlers an
engine takes over, and every process the peer started ended at close (a joblib script leaves its
workers for reuse, as it should; a benchmark must leave none).
"""
from __future__ import annotations

import importlib
import shutil
import tempfile
from contextlib import ExitStack
from typing import ClassVar

import numpy as np
import psutil

from .._system import interrupts, preflight
from .._system.janitor import Janitor
from ..peers import PEERS, WORKLOADS
from ..runtimes.base import end
from .base import Strategy, Traits

#: Long-lived helpers of multiprocessing and loky, shared with whatever runs next in this process.
_HELPERS = ("resource_tracker", "forkserver")


def _descendants() -> dict[int, psutil.Process]:
    return {p.pid: p for p in psutil.Process().children(recursive=True)}


class PeerStrategy(Strategy):
    """The peer of the contender ``contender``: its module's ``Peer`` driven through the phases."""

    contender: ClassVar[str]
    #: The contender's own class.
    of: ClassVar[type[Strategy]]
    module: ClassVar[str]

    def __init__(self, plan, workers: int = 1, workload: str = "random", start_method: str | None = None,
                 nodes: int = 1) -> None:
        if workload not in WORKLOADS:
            raise ValueError(f"{self.name} runs {' and '.join(WORKLOADS)} only, not {workload!r}")
        super().__init__(plan, workers, workload, start_method, nodes)
        self._peer = None
        self._started: list[psutil.Process] = []
        self._owned = ExitStack()  # what start made, undone in reverse at close

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return cls.of.unavailable_reason()

    def need(self) -> preflight.Need:
        return self.of(self.plan, self.workers, self.workload).need()

    def allocate(self) -> None:
        self.storage = np.empty(self.plan.storage_shape, self.plan.dtype)

    def start(self) -> None:
        janitor = Janitor()
        self._owned.callback(janitor.close)  # dismissed last: it stands by until the rest is undone
        scratch = tempfile.mkdtemp(prefix="shmbench-peer-", dir="/tmp")  # short: Ray's sockets live there
        self._owned.callback(shutil.rmtree, scratch, ignore_errors=True)
        janitor.watch(paths=[scratch])
        before = _descendants()
        try:
            with janitor.marking(), interrupts.kept():  # Ray's driver installs handlers of its own
                self._peer = importlib.import_module(self.module).Peer(self.plan, self.workers, scratch)
                self._peer.start()
        finally:
            self._started = [p for pid, p in _descendants().items() if pid not in before]
            janitor.watch([p.pid for p in self._started])
        mine = getattr(self._peer, "matrix", None)  # joblib's memmap is the parent's matrix
        if mine is not None:
            mine[...] = self.storage
            self.storage = mine
        self.settings = {"peer": f"python -m {self.module}: {self._summary()}"}

    def _summary(self) -> str:
        doc = importlib.import_module(self.module).__doc__ or ""
        return " ".join(doc.split("\n\n")[1].split()) if "\n\n" in doc else ""

    @property
    def worker_ids(self) -> list[int]:
        return list(getattr(self._peer, "pids", []))

    def touch(self) -> None:
        """Nothing: the peer's pages are its engine's business."""

    def prepare(self) -> None:
        super().prepare()
        if hasattr(self._peer, "prepare"):  # its matrix lives in the program (MPI's rank 0)
            self._peer.prepare(self.workload)

    def fill(self) -> None:
        sums = self._peer.run(self.workload, self.storage)
        if self.work.reads:
            self.row_sums[:] = sums

    def internode(self) -> None:
        """Nothing: a peer runs on one node, and its pass brought the rows to the parent."""

    def collect(self) -> None:
        """Nothing: the peer's pass ends with the parent holding the result."""

    def reveal(self) -> None:
        if hasattr(self._peer, "show") and not self.work.reads:
            self._peer.show(self.storage)

    def close(self) -> None:
        peer, self._peer = self._peer, None
        try:
            if peer is not None:
                started = [p for p in self._started if p.is_running()]
                # Whatever the peer started and did not stop itself (its engine's workers, kept for reuse).
                with interrupts.kept():  # as in start: an engine's stop may take the handlers too
                    end([p.pid for p in started if not any(h in " ".join(_cmdline(p)) for h in _HELPERS)],
                        peer.close)
        finally:
            self.storage = None
            self._owned.close()


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


def peer_of(base: type[Strategy]) -> type[PeerStrategy]:
    """The cell class of the peer of the contender ``base`` (``dask`` -> ``dask_peer``)."""
    contender = base.name
    return type(f"{base.__name__}Peer", (PeerStrategy,), {
        "name": f"{contender}_peer", "contender": contender, "of": base, "module": PEERS[contender],
        "summary": f"{contender}'s own documented way of doing the job (shmbench.peers), beside {contender}",
        # The parent's matrix is a copy (or, for joblib, a memmap of its own); a task may go anywhere.
        "traits": Traits(launcher=base.traits.launcher, shares_memory=False, every_worker_gets_work=False)})
