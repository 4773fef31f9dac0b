"""Stopping workers for good: asked, then SIGTERM, then SIGKILL, each with its grace, and reaped."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from .worker_side import process_alive

#: How long a stopping worker gets at each step (asked, SIGTERM, SIGKILL).
GRACE_SECONDS = 5.0


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
