"""Which worker died first, seen as it happens.

Pools and launchers (a process pool, loky, mpiexec) only say that *a* worker died and then end
the others themselves: asking afterwards would find them all dead. A roll (workers calling in on
a socket of the parent's) and a watch on pidfds or sockets see the first death before that.
"""
from __future__ import annotations

import os
import select
import threading
from collections.abc import Sequence
from multiprocessing.connection import Client, Connection, Listener

from .errors import WorkerDiedError, died
from .worker_side import become_worker, process_alive


def first_dead(pids: Sequence[int]) -> int | None:
    """The slot of the first worker among ``pids`` that no longer runs."""
    return next((slot for slot, pid in enumerate(pids) if not process_alive(pid)), None)


class FirstDeath:
    """Which of ``pids`` died first, seen as it happens, on a thread: the one watch of every
    runtime whose launcher (mpiexec, a pool) ends the other workers itself when one dies.

    mpiexec's report may name a rank it killed: asking afterwards would find them all dead. A worker with a socket of its own to the parent
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


class Roll:
    """The roll of a pool that starts its workers itself (a process pool, loky): each worker calls
    in from its initializer (``call_in``), so the parent learns every worker's pid; and each keeps
    its end open until it exits, so a ``FirstDeath`` on those ends names the worker that died first.

    Such pools only say that *a* worker died, then end the others themselves: asking afterwards
    would find them all dead. The roll sees the same event the pool reacts to, before it reacts.
    """

    def __init__(self, workers: int) -> None:
        self.workers, self.pids = workers, []
        # A backlog for every worker: they call in while the parent still waits on the pool.
        self._listener = Listener(family="AF_UNIX", backlog=max(1, workers))
        self.address = self._listener.address
        self._conns: list[Connection] = []
        self._watch: FirstDeath | None = None

    def take(self) -> list[int]:
        """Accept every worker's call (they have all started by now); returns pids, by slot."""
        for _ in range(self.workers):
            conn = self._listener.accept()
            self._conns.append(conn)
            self.pids.append(conn.recv())
        self._watch = FirstDeath(self.pids, {slot: conn.fileno() for slot, conn in enumerate(self._conns)})
        return self.pids

    def check(self, during: str, where: str = "") -> None:
        """Raise the death report if a worker has already gone (asked of the process table first:
        the pool may have ended the others since, and their ends closed too)."""
        gone = [slot for slot, pid in enumerate(self.pids) if not process_alive(pid)]
        if len(gone) == 1:  # the one that died: the pool has not ended the others yet
            raise died(gone[0], self.pids[gone[0]], during, where)
        if gone or (self._watch is not None and self._watch.slot is not None):  # the first end to close names it
            raise self.report(during, where)

    def report(self, during: str, where: str = "") -> WorkerDiedError:
        slot = self._watch.first() if self._watch is not None else None  # None: not every worker called in
        if slot is None:
            slot = first_dead(self.pids)
        return died(slot, None if slot is None else self.pids[slot], during, where)

    def close(self) -> None:
        if self._watch is not None:  # it polls the ends: stopped before they close
            self._watch.close()
        for conn in self._conns:
            conn.close()
        self._listener.close()


_ROLL: Connection | None = None  # a pool worker's end of its roll call, held until it exits


def call_in(address: str, parent_pid: int) -> None:
    """A pool worker's initializer: become a worker, and call in on the parent's roll."""
    global _ROLL
    become_worker(parent_pid)
    _ROLL = Client(address, family="AF_UNIX")
    _ROLL.send(os.getpid())
