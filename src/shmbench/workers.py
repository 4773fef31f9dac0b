"""A group of worker processes, each with its own pipe and its own share of the blocks.

Why not ``multiprocessing.Pool.map``: when a pool worker is killed its task is lost and
``map`` waits forever, and a pool may hand every task to one fast worker, so the book's
"every worker did some work" check could fail by chance. Here each worker owns a fixed,
contiguous share of the blocks, and the parent waits on each worker's pipe *and* its process
sentinel, so a death is seen at once and reported with the block the worker was on.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import wait
from typing import Any, Protocol

import numpy as np
import psutil
from threadpoolctl import threadpool_limits

from .plan import Plan
from .pages import minor_faults, prefault
from .work import fill_blocks

START_METHODS = ("fork", "spawn", "forkserver")
# Explicit, so results do not change with the interpreter (Python 3.14 made forkserver
# the Linux default). fork is the book's way and the cheapest start.
DEFAULT_START_METHOD = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
_JOIN_SECONDS = 2.0
#: Each worker's BLAS/OpenMP pool is capped at this, so W workers never run W x cores threads.
WORKER_BLAS_THREADS = 1


class WorkerError(RuntimeError):
    """A worker raised; the message carries the worker's traceback."""


class WorkerDiedError(RuntimeError):
    """A worker process ended without answering (killed, or crashed in C code)."""


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_gone(pids: Sequence[int], timeout: float) -> None:
    """Wait up to ``timeout`` seconds in all for processes we did not start to exit; kill the rest."""
    _, alive = psutil.wait_procs([p for p in map(_process, pids) if p is not None], timeout=timeout)
    for process in alive:
        process.kill()


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


def resolve_start_method(start_method: str | None) -> str:
    if start_method is None:
        return DEFAULT_START_METHOD
    available = [m for m in START_METHODS if m in mp.get_all_start_methods()]
    if start_method not in available:
        raise ValueError(f"unknown start method {start_method!r}; choose one of: {', '.join(available)}")
    return start_method


def share_rows(plan: Plan, share: range, first_row: int = 0) -> slice:
    """The rows of a worker's share, in a matrix whose row 0 is the plan's ``first_row``."""
    if not share:
        return slice(0, 0)
    return slice(plan.block(share.start).start - first_row, plan.block(share.stop - 1).stop - first_row)


class Attachment(Protocol):
    """How a worker reaches the matrix; pickled into the worker (or inherited with fork)."""

    def open(self, plan: Plan, share: range) -> tuple[np.ndarray, int, Callable[[], None]]:
        """Return (matrix view, plan row of its row 0, function that releases it)."""


def become_worker() -> None:
    """What every worker process sets first, whatever pool it belongs to."""
    # The parent owns interrupts: it stops the workers itself and releases what they share.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler, inherited with fork
    threadpool_limits(WORKER_BLAS_THREADS)


def _worker_main(conn, slot: int, attachment: Attachment, plan: Plan, share: range, progress,
                 parent_fds: list[int]) -> None:
    # A forked worker holds copies of the parent's pipe ends; left open, a dead parent would
    # never show as a closed pipe and a large send would block forever.
    for fd in parent_fds:
        os.close(fd)
    become_worker()
    release: Callable[[], None] = lambda: None
    try:
        matrix, first_row, release = attachment.open(plan, share)
        conn.send(("ready", os.getpid()))
        # Watch the parent itself too: whatever else holds the pipe open, its sentinel tells.
        parent = mp.parent_process()
        watched = [conn] + ([parent.sentinel] if parent is not None else [])
        while True:
            if conn not in wait(watched):
                break  # the parent is gone
            command, *args = conn.recv()
            if command == "stop":
                break
            faults = minor_faults()
            if command == "fill":
                workload, check_default, rows_in = args
                if rows_in is not None:  # a private copy of the input rows of this share
                    matrix[share_rows(plan, share, first_row)] = rows_in
                    rows_in = None
                sums = fill_blocks(matrix, plan, share, workload, os.getpid(), check_default, first_row,
                                   on_block=lambda index: progress.__setitem__(slot, index))
                if sums is not None and share:
                    conn.send(("sums", plan.block(share.start).start, sums))
            elif command == "touch":
                prefault(matrix[share_rows(plan, share, first_row)])
            elif command == "collect":
                for index in share:
                    rows = plan.block(index)
                    conn.send(("block", index, matrix[rows.start - first_row:rows.stop - first_row]))
            # Every answer carries the minor page faults the command cost this worker.
            conn.send(("done", minor_faults() - faults))
    except EOFError:
        pass  # the parent is gone; nothing more to do
    except BaseException:
        try:
            conn.send(("error", traceback.format_exc()))
        except OSError:
            pass
    finally:
        matrix = None
        release()
        conn.close()


class WorkerGroup:
    """``workers`` processes, worker ``i`` owning ``shares[i]`` and opening ``attachments[i]``.

    Used as a context manager, or with ``start()`` and ``close()``; ``close`` always leaves no
    process behind, whatever state the workers are in.
    """

    def __init__(self, start_method: str, plan: Plan, shares: Sequence[range],
                 attachments: Sequence[Attachment]) -> None:
        self.start_method = start_method
        self.plan = plan
        self.shares = list(shares)
        self.attachments = list(attachments)
        self._ctx = mp.get_context(start_method)
        self._procs: list[Any] = []
        self._conns: list[Any] = []
        self.pids: list[int] = []
        self._progress = None
        self._busy = False  # a command is out and not every worker has answered

    def __enter__(self) -> WorkerGroup:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start every worker and wait until each has opened its view of the matrix."""
        self._progress = self._ctx.RawArray("q", len(self.shares))
        for slot, (share, attachment) in enumerate(zip(self.shares, self.attachments)):
            parent_end, child_end = self._ctx.Pipe()
            inherited = [c.fileno() for c in [*self._conns, parent_end]] if self.start_method == "fork" else []
            proc = self._ctx.Process(target=_worker_main, name=f"shmbench-worker-{slot}", daemon=True,
                                     args=(child_end, slot, attachment, self.plan, share, self._progress,
                                           inherited))
            try:
                proc.start()
            except BaseException:
                parent_end.close()
                raise
            finally:
                child_end.close()
            self._conns.append(parent_end)
            self._procs.append(proc)
        pids: dict[int, int] = {}
        self._gather("start", lambda slot, msg: None, on_done=lambda slot, pid: pids.__setitem__(slot, pid),
                     done_word="ready")
        self.pids = [pids[slot] for slot in range(len(self._procs))]

    def fill(self, workload: str, check_default: bool = True,
             on_sums: Callable[[int, np.ndarray], None] | None = None,
             inputs: Sequence[np.ndarray] | None = None) -> list[int]:
        """Every worker fills (or reads) its share; returns each worker's minor page faults.

        A read-only workload's per-row results go to ``on_sums(first_row, sums)``; ``inputs``
        (one array of rows per worker) are sent first, for workers that hold private copies.
        """
        messages = [("fill", workload, check_default, None if inputs is None else inputs[slot])
                    for slot in range(len(self._procs))]
        on_message = (lambda slot, msg: on_sums(msg[1], msg[2])) if on_sums else (lambda slot, msg: None)
        return self._command(messages, on_message)

    def touch(self) -> list[int]:
        """Every worker prefaults the pages of its share; returns each worker's minor faults."""
        return self._command(("touch",))

    def collect(self, on_block: Callable[[int, np.ndarray], None]) -> list[int]:
        """Ask every worker for its blocks; ``on_block(index, block)`` receives each copy."""
        return self._command(("collect",), lambda slot, msg: on_block(msg[1], msg[2]))

    def _command(self, message: tuple | list[tuple],
                 on_message: Callable[[int, tuple], None] = lambda slot, msg: None) -> list[int]:
        """Send one message to every worker (or ``message[slot]`` to each) and wait for all."""
        messages = message if isinstance(message, list) else [message] * len(self._procs)
        faults = [0] * len(self._procs)
        self._broadcast(messages)
        self._gather(messages[0][0], on_message, on_done=faults.__setitem__)
        return faults

    def _broadcast(self, messages: list[tuple]) -> None:
        self._busy = True
        for slot, (conn, message) in enumerate(zip(self._conns, messages)):
            try:
                conn.send(message)
            except OSError:  # the pipe broke: the worker is gone
                self._procs[slot].join(_JOIN_SECONDS)
                raise WorkerDiedError(f"{self._describe(slot)} died before it was given {message[0]!r} "
                                      f"(exit code {self._procs[slot].exitcode})") from None

    def _gather(self, what: str, on_message: Callable[[int, tuple], None],
                on_done: Callable[[int, Any], None] | None = None, done_word: str = "done") -> None:
        pending = set(range(len(self._procs)))
        self._busy = True
        while pending:
            conns = {self._conns[s]: s for s in pending}
            sentinels = {self._procs[s].sentinel: s for s in pending}
            for ready in wait(list(conns) + list(sentinels)):
                slot = conns.get(ready, sentinels.get(ready))
                if slot not in pending:
                    continue
                conn = self._conns[slot]
                # A dead worker's last words may still sit in its pipe: read them first.
                while slot in pending and conn.poll():
                    try:
                        message = conn.recv()
                    except (EOFError, OSError):  # a killed worker's end may also reset
                        break
                    if message[0] == "error":
                        raise WorkerError(f"{self._describe(slot)} failed during {what}:\n{message[1]}")
                    if message[0] == done_word:
                        pending.discard(slot)
                        if on_done is not None:
                            on_done(slot, message[1])
                    else:
                        on_message(slot, message)
                if slot in pending and not self._procs[slot].is_alive():
                    raise WorkerDiedError(f"{self._describe(slot)} died during {what} "
                                          f"(exit code {self._procs[slot].exitcode}){self._where(slot, what)}")
        self._busy = False

    def _describe(self, slot: int) -> str:
        pid = self.pids[slot] if slot < len(self.pids) else self._procs[slot].pid
        return f"worker {slot} (pid {pid})"

    def _where(self, slot: int, what: str) -> str:
        if what != "fill":
            return ""
        share = self.shares[slot]
        return f" on block {self._progress[slot]} of its blocks {share.start}-{share.stop - 1}"

    def close(self) -> None:
        """Stop every worker and reap it: ask idle workers to stop, terminate busy ones (after an
        error or an interrupt they may be deep in a fill), kill any that still linger."""
        busy = self._busy
        for proc, conn in zip(self._procs, self._conns):
            if busy and proc.is_alive():
                proc.terminate()
            elif proc.is_alive():
                try:
                    conn.send(("stop",))
                except OSError:
                    pass
        for proc in self._procs:
            proc.join(_JOIN_SECONDS)
            if proc.is_alive():
                proc.terminate()
                proc.join(_JOIN_SECONDS)
            if proc.is_alive():
                proc.kill()
                proc.join(_JOIN_SECONDS)
            try:
                proc.close()
            except ValueError:  # somebody else reaped it (multiprocessing cannot tell): let it go
                pass
        for conn in self._conns:
            conn.close()
        self._procs, self._conns = [], []
        self._progress = None
        self._busy = False
