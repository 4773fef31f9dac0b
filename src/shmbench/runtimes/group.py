"""shmbench's own process group: one ``multiprocessing`` process per share, each with its own pipe.

Why not ``multiprocessing.Pool.map``: when a pool worker is killed its task is lost and ``map``
waits forever, and a pool may hand every task to one fast worker, so the book's "every worker did
some work" check could fail by chance. Here each worker owns a fixed, contiguous share of the
rows, and the parent waits on each worker's pipe *and* its process sentinel, so a death is seen
at once and reported with the block the worker was on.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import traceback
from multiprocessing.connection import wait
from typing import Any

import numpy as np

from .._system.inherited import left_alone
from .base import Attachment, OnPart, Runtime, become_worker, died, end, failed, ignore, on_block
from .seat import Command, Seat, execute

_NOT_STARTED = -1  # a worker's progress before its first block


def _worker_main(conn, slot: int, attachment: Attachment, plan, rows: range, progress, parent_pid: int,
                 parent_fds: list[int]) -> None:
    # A forked worker holds copies of the parent's pipe ends; left open, a dead parent would
    # never show as a closed pipe and a large send would block forever.
    for fd in parent_fds:
        os.close(fd)
    become_worker(parent_pid)
    release = lambda: None  # noqa: E731
    seat = None
    try:
        matrix, first_row, release = attachment.open(plan, rows)
        seat = Seat(plan, rows, matrix, first_row, on_block=lambda index: progress.__setitem__(slot, index))
        conn.send(("ready", os.getpid()))
        send = lambda *part: conn.send(("part", *part))  # noqa: E731
        while True:
            command, source = conn.recv()
            if command is None:
                break
            # Every answer carries the minor page faults the command cost this worker.
            conn.send(("done", execute(seat, command, send, source, 0 if command.work.whole_input else rows.start)))
    except EOFError:
        pass  # the parent is gone; nothing more to do
    except BaseException:
        try:
            conn.send(("error", traceback.format_exc()))
        except OSError:
            pass
    finally:
        seat = matrix = None
        release()
        conn.close()


class ProcessGroup(Runtime):
    """``len(shares)`` processes started with ``start_method``, worker ``i`` opening ``attachments[i]``."""

    launcher = "multiprocessing"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._ctx = mp.get_context(self.start_method)
        self._procs: list[Any] = []
        self._conns: list[Any] = []
        self._progress = None
        self._busy = False  # a command is out and not every worker has answered
        self._pending: tuple[str, set[int]] = ("", set())  # the command out, and who owes an answer

    def start(self) -> list[int]:
        self.made(self._stop)
        self._progress = self._ctx.RawArray("q", [_NOT_STARTED] * len(self.shares))
        for slot, (rows, attachment) in enumerate(zip(self.shares, self.attachments)):
            parent_end, child_end = self._ctx.Pipe()
            inherited = [c.fileno() for c in [*self._conns, parent_end]] if self.start_method == "fork" else []
            proc = self._ctx.Process(target=_worker_main, name=f"shmbench-worker-{slot}", daemon=True,
                                     args=(child_end, slot, attachment, self.plan, rows, self._progress,
                                           os.getpid(), inherited))
            try:
                with left_alone(self.start_method):
                    proc.start()
            except BaseException:
                parent_end.close()
                raise
            finally:
                child_end.close()
            self._conns.append(parent_end)
            self._procs.append(proc)
        pids: dict[int, int] = {}
        self._gather("start", ignore, pids.__setitem__, done_word="ready")
        self.ids = [pids[slot] for slot in range(len(self._procs))]
        return self.ids

    def run(self, command: Command, on_part: OnPart = ignore, source: np.ndarray | None = None) -> list[int]:
        faults = [0] * len(self._procs)
        self._busy = True
        self._progress[:] = [_NOT_STARTED] * len(self._procs)
        for slot, (conn, rows) in enumerate(zip(self._conns, self.shares)):
            try:  # a private copy of the input goes with the command, where the worker needs one:
                # its own rows, or all of them for a kernel (a stencil reads around its rows)
                part = source if source is None or command.work.whole_input else source[rows.start:rows.stop]
                conn.send((command, part))
            except OSError:  # the pipe broke: the worker is gone
                self._procs[slot].join(1.0)
                raise died(slot, self.ids[slot], command.name, code=self._procs[slot].exitcode) from None
        self._gather(command.name, on_part, faults.__setitem__)
        return faults

    def _gather(self, what: str, on_part: OnPart, on_done, done_word: str = "done") -> None:
        pending = set(range(len(self._procs)))
        self._busy, self._pending = True, (what, pending)
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
                        raise failed(what, f"worker {slot} (pid {self._pid(slot)}):\n{message[1]}")
                    if message[0] == done_word:
                        pending.discard(slot)
                        on_done(slot, message[1])
                    else:
                        on_part(slot, *message[1:])
                if slot in pending and not self._procs[slot].is_alive():
                    raise died(slot, self._pid(slot), what, self._where(slot, what), code=self._procs[slot].exitcode)
        self._busy = False

    def busy(self) -> list[str]:
        what, pending = self._pending
        return [f"worker {slot} (pid {self._pid(slot)}){self._where(slot, what)}" for slot in sorted(pending)]

    def progress(self, slot: int) -> int | None:
        """The block worker ``slot`` is on (or last finished) in the current command; None before its first."""
        at = self._progress[slot]
        return None if at == _NOT_STARTED else at

    def _pid(self, slot: int) -> int:
        return self.ids[slot] if slot < len(self.ids) else self._procs[slot].pid

    def _where(self, slot: int, what: str) -> str:
        return on_block(self.plan, self.shares[slot], self.progress(slot)) if what == "fill" else ""

    def _stop(self) -> None:
        procs, conns, busy = self._procs, self._conns, self._busy
        self._procs, self._conns, self._progress, self._busy = [], [], None, False

        def ask() -> None:
            for conn in conns:
                try:
                    conn.send((None, None))
                except OSError:
                    pass

        try:  # idle workers stop when asked; busy ones (after an error or an interrupt) get SIGTERM
            end([p for p in procs if p.pid is not None], None if busy else ask)
        finally:
            for proc in procs:
                try:
                    proc.close()
                except ValueError:  # somebody else reaped it (multiprocessing cannot tell): let it go
                    pass
            for conn in conns:
                conn.close()
