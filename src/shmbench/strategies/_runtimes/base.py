"""What every way of running workers shares, written once: the protocol, the errors and the death
report, the parent watch, and the reaper.

A runtime knows *how* its workers run (our process group, a process pool, loky, Ray actors, MPI
ranks, threads); this module knows what to do when one dies, when the parent dies, and how to
make sure none is left.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import re
import select
import shutil
import signal
import subprocess
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from multiprocessing.connection import Client, Connection, Listener, wait
from typing import Any, ClassVar, Protocol

import numpy as np
import psutil
from threadpoolctl import threadpool_limits

from ..._system import preflight
from ...plan import Plan
from .seat import Command

START_METHODS = ("fork", "spawn", "forkserver")
# Explicit, so results do not change with the interpreter (Python 3.14 made forkserver the
# Linux default). fork is the book's way and the cheapest start.
DEFAULT_START_METHOD = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
#: Each worker's BLAS/OpenMP pool is capped at this, so W workers never run W x cores threads.
WORKER_BLAS_THREADS = 1
#: How long a stopping worker gets at each step (asked, SIGTERM, SIGKILL).
GRACE_SECONDS = 5.0
_POLL_SECONDS = 0.5

#: ``on_part(slot, kind, where, array)``: a worker's block ("block", block index) or sums ("sums", first row).
OnPart = Callable[[int, str, int, np.ndarray], None]


def ignore(*part: Any) -> None:
    """An ``OnPart`` for commands whose answers carry nothing to keep."""


def deliver(on_part: OnPart, answers: Iterable[tuple[int, Iterable[tuple]]]) -> None:
    """Hand every part of every worker's answer, (slot, parts), to ``on_part``."""
    for slot, parts in answers:
        for part in parts:
            on_part(slot, *part)


class WorkerError(RuntimeError):
    """A worker raised; the message carries the worker's traceback."""


class WorkerDiedError(RuntimeError):
    """A worker process ended without answering (killed, or crashed in C code)."""


def died(slot: int | None, pid: int | None, during: str, where: str = "", how: str = "") -> WorkerDiedError:
    """The one death report: which worker (slot and pid), in which command, where it was, how it ended."""
    who = "a worker" if slot is None else f"worker {slot} (pid {pid})"
    return WorkerDiedError(f"{who} died during {during}{how}{where}")


def failed(during: str, detail: str) -> WorkerError:
    """A worker's exception: its own last line (the exception and its message) on the first line,
    which is what a table or a one-line report shows, and the worker's whole traceback after it."""
    lines = [line.strip() for line in detail.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else "no detail"
    # A kernel's failure already says which kernel, exception, worker and rows: not who wrapped it.
    last = re.sub(r"^shmbench\.kernels\.KernelError: ", "", last)
    return WorkerError(f"a worker failed during {during}: {last}\n{detail}")


def bus_error() -> str:
    """What a worker's SIGBUS means here, in words: a page of the tmpfs (/dev/shm) or of the file
    the matrix lives in could not be had, its file system being full."""
    room = ""
    if os.path.isdir(preflight.SHM_DIR):
        usage = shutil.disk_usage(preflight.SHM_DIR)
        room = f"; {preflight.SHM_DIR} has {usage.free / 2**20:.0f} MiB free of {usage.total / 2**20:.0f} MiB"
    return f", SIGBUS: a page of the shared matrix could not be had, its file system is full{room}"


def on_block(plan: Plan, rows: range, at: int | None) -> str:
    """Where in its share a worker on ``rows`` is, ``at`` being its block (None: before its first)."""
    blocks = plan.blocks_of(rows)
    if not blocks:
        return ""
    mine = f"its blocks {blocks.start}-{blocks.stop - 1}"
    return f" before its first block, of {mine}" if at is None else f" on block {at} of {mine}"


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def first_dead(pids: Sequence[int]) -> int | None:
    """The slot of the first worker among ``pids`` that no longer runs."""
    return next((slot for slot, pid in enumerate(pids) if not process_alive(pid)), None)


class Roll:
    """The roll of a pool that starts its workers itself (a process pool, loky): each worker calls
    in from its initializer (``call_in``), so the parent learns every worker's pid; and each keeps
    its end open until it exits, so the first end to close names the worker that died first.

    Such pools only say that *a* worker died, then end the others themselves: asking afterwards
    would find them all dead. The roll sees the same event the pool reacts to, before it reacts.
    """

    def __init__(self, workers: int) -> None:
        self.workers, self.pids, self.dead = workers, [], None
        # A backlog for every worker: they call in while the parent still waits on the pool.
        self._listener = Listener(family="AF_UNIX", backlog=max(1, workers))
        self.address = self._listener.address
        self._conns: list[Connection] = []
        self._wake_r, self._wake_w = mp.Pipe(duplex=False)
        self._thread = threading.Thread(target=self._watch, name="shmbench-roll", daemon=True)

    def take(self) -> list[int]:
        """Accept every worker's call (they have all started by now); returns pids, by slot."""
        for _ in range(self.workers):
            conn = self._listener.accept()
            self._conns.append(conn)
            self.pids.append(conn.recv())
        self._thread.start()
        return self.pids

    def _watch(self) -> None:
        ready = wait([*self._conns, self._wake_r])
        gone = [self._conns.index(c) for c in ready if c is not self._wake_r]
        if gone:
            self.dead = min(gone)

    def check(self, during: str, where: str = "") -> None:
        """Raise the death report if a worker has already gone (asked of the process table first:
        the pool may have ended the others since, and their ends closed too)."""
        gone = [slot for slot, pid in enumerate(self.pids) if not process_alive(pid)]
        if len(gone) == 1:  # the one that died: the pool has not ended the others yet
            raise died(gone[0], self.pids[gone[0]], during, where)
        if gone or self.dead is not None:  # several gone: the first end to close names it
            raise self.report(during, where)

    def report(self, during: str, where: str = "") -> WorkerDiedError:
        if self._thread.ident is not None:  # started: every worker had called in
            self._thread.join(1.0)
        slot = self.dead if self.dead is not None else first_dead(self.pids)
        return died(slot, None if slot is None else self.pids[slot], during, where)

    def close(self) -> None:
        self._wake_w.send(None)
        if self._thread.is_alive():
            self._thread.join()
        for conn in [*self._conns, self._wake_r, self._wake_w]:
            conn.close()
        self._listener.close()


class FirstDeath:
    """Which of ``pids`` (processes of another launcher) died first, seen as it happens, on a thread.

    mpiexec ends the other ranks itself when one dies, and its report may name one it killed:
    asking afterwards would find them all dead. A worker with a socket of its own to the parent
    (``lines``: slot -> file descriptor) is watched there: its end closes as it exits, before
    anyone else can notice the death and react. Others are watched by pidfd, which becomes
    readable only once the process is fully gone: a rank killed beside one that died could be
    seen gone first that way (1 run in 15 here).
    """

    def __init__(self, pids: Sequence[int], lines: dict[int, int] | None = None) -> None:
        self.slot: int | None = None
        lines = lines or {}
        self._poll = select.poll()
        self._opened: list[int] = []
        self._slots: dict[int, int] = {}  # watched fd -> slot
        try:
            for slot, pid in enumerate(pids):
                if slot in lines:  # a hang-up only: rank 0's answers on the same socket are no death
                    self._watch(lines[slot], slot, select.POLLRDHUP)
                else:
                    fd = os.pidfd_open(pid)
                    self._opened.append(fd)
                    self._watch(fd, slot, select.POLLIN)
        except (AttributeError, OSError):  # no pidfd here, or one already gone: the launcher's word stands
            self._slots = {}
        self._wake_r, self._wake_w = os.pipe()
        self._poll.register(self._wake_r, select.POLLIN)
        self._thread = threading.Thread(target=self._run, name="shmbench-first-death", daemon=True)
        self._thread.start()

    def _watch(self, fd: int, slot: int, events: int) -> None:
        self._poll.register(fd, events)
        self._slots[fd] = slot

    def _run(self) -> None:
        if not self._slots:
            return
        gone = [self._slots[fd] for fd, _ in self._poll.poll() if fd in self._slots]
        if gone:
            self.slot = min(gone)

    def first(self, timeout: float = 1.0) -> int | None:
        self._thread.join(timeout)
        return self.slot

    def close(self) -> None:
        os.write(self._wake_w, b"x")
        self._thread.join()
        for fd in [*self._opened, self._wake_r, self._wake_w]:
            os.close(fd)
        self._opened, self._slots = [], {}


_ROLL: Connection | None = None  # a pool worker's end of its roll call, held until it exits


def call_in(address: str, parent_pid: int) -> None:
    """A pool worker's initializer: become a worker, and call in on the parent's roll."""
    global _ROLL
    become_worker(parent_pid)
    _ROLL = Client(address, family="AF_UNIX")
    _ROLL.send(os.getpid())


# ---- the worker's side -------------------------------------------------------------------------

def become_worker(parent_pid: int | None = None, on_parent_death: Callable[[], None] | None = None) -> None:
    """What every worker process sets first, whatever runs it."""
    # The parent owns interrupts: it stops the workers itself and releases what they share.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler, inherited with fork
    threadpool_limits(WORKER_BLAS_THREADS)
    if parent_pid is not None:
        watch_parent(parent_pid, on_parent_death)


def watch_parent(pid: int, on_death: Callable[[], None] | None = None) -> None:
    """Exit this process as soon as process ``pid`` (the benchmark's parent) ends.

    A worker waiting on a queue, a collective or a pipe that other processes hold open would
    otherwise outlive a killed parent and keep the matrix mapped. ``on_death`` runs first.
    """
    def watch() -> None:
        try:
            handle = os.pidfd_open(pid)  # Linux >= 5.3: readable once the process has exited
        except ProcessLookupError:
            handle = None
        except (AttributeError, OSError):  # no pidfd here: poll
            while psutil.pid_exists(pid) and process_alive(pid):
                time.sleep(_POLL_SECONDS)
            handle = None
        if handle is not None:
            select.select([handle], [], [])
        try:
            if on_death is not None:
                on_death()
        finally:
            os._exit(1)

    threading.Thread(target=watch, name="shmbench-parent-watch", daemon=True).start()


# ---- stopping: asked, SIGTERM, SIGKILL, reaped -----------------------------------------------

class _Waitable(Protocol):
    pid: int

    def gone(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; True once the process has exited (and is reaped, if ours)."""


class _Child:
    """A ``multiprocessing`` process of ours: joined, so multiprocessing reaps it and knows it."""

    def __init__(self, proc: Any) -> None:
        self.proc, self.pid = proc, proc.pid

    def gone(self, timeout: float) -> bool:
        self.proc.join(timeout)
        return self.proc.exitcode is not None


class _Popen:
    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc, self.pid = proc, proc.pid

    def gone(self, timeout: float) -> bool:
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False


class _Foreign:
    """A process a library started (a pool's worker, a Ray actor, an MPI rank): watched, never
    reaped here, so the library that started it still can."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while process_alive(self.pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True


def end(processes: Iterable[Any], ask: Callable[[], None] | None = None, grace: float = GRACE_SECONDS) -> None:
    """Stop ``processes`` for good: ``ask`` them (a stop command, a pool's shutdown), then SIGTERM,
    then SIGKILL whatever still runs, waiting up to ``grace`` seconds after each step.

    ``processes`` are pids (processes of other programs), ``multiprocessing`` processes or
    ``subprocess.Popen`` objects (both reaped here).
    """
    waitables: list[_Waitable] = [
        _Popen(p) if isinstance(p, subprocess.Popen) else _Foreign(p) if isinstance(p, int) else _Child(p)
        for p in processes]
    steps: list[int | None] = [signal.SIGTERM, signal.SIGKILL]
    if ask is not None:
        try:
            ask()
            steps.insert(0, None)  # asked: give them the grace to stop on their own
        except Exception:  # a broken pipe or a pool already down: the signals still work
            pass
    for signum in steps:
        if signum is not None:
            for w in waitables:
                try:
                    os.kill(w.pid, signum)
                except (ProcessLookupError, PermissionError):
                    pass
        deadline = time.monotonic() + grace
        waitables = [w for w in waitables if not w.gone(max(0.0, deadline - time.monotonic()))]
        if not waitables:
            return


# ---- the protocol -----------------------------------------------------------------------------

class Attachment(Protocol):
    """How a worker reaches the matrix; pickled into the worker (or inherited with fork)."""

    def open(self, plan: Plan, rows: range) -> tuple[np.ndarray, int, Callable[[], None]]:
        """Return (matrix view, plan row of its row 0, function that releases it)."""


class Runtime(ABC):
    """A way of running ``len(shares)`` workers, worker ``i`` owning the plan rows ``shares[i]``.

    ``start`` returns the worker ids; ``run`` carries one command to every worker and returns each
    one's minor page faults, or raises the one ``WorkerDiedError``/``WorkerError``; ``close`` stops
    and reaps every worker, once, whatever state they are in.
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

    @abstractmethod
    def close(self) -> None:
        """Stop and reap every worker; idempotent."""

    def busy(self) -> list[str]:
        """The workers that have not answered the command out, in words; [] where it cannot tell."""
        return []

    def where(self, slot: int | None) -> str:
        """A share in words, for reports of runtimes that cannot tell the block a worker was on."""
        rows = self.shares[slot] if slot is not None else None
        return f" in its share (rows {rows.start}-{rows.stop - 1})" if rows else ""
