"""Runtimes inside the parent process: the parent alone (serial), or a pool of threads.

numpy's ``Generator.random`` and ``ndarray.fill`` release the GIL, so threads fill in parallel with
no sharing mechanism at all; the ``pid`` workload writes each thread's native id.
"""
from __future__ import annotations

import os
import queue
import threading
from typing import Any

import numpy as np

from .base import OnPart, Runtime, WorkerError, ignore, on_block
from .seat import Command, Seat, execute


class Inline(Runtime):
    """No workers: the parent runs every command on the whole matrix itself."""

    launcher = "none"

    def start(self) -> list[int]:
        matrix, first_row, _ = self.attachments[0].open(self.plan, self.shares[0])
        self._seat = Seat(self.plan, self.shares[0], matrix, first_row)
        self.ids = [os.getpid()]
        return self.ids

    def run(self, command: Command, on_part: OnPart = ignore, source: np.ndarray | None = None) -> list[int]:
        execute(self._seat, command, lambda *part: on_part(0, *part), source)
        return []  # the parent's own faults are the parent's figure


class Threads(Runtime):
    """One daemon thread per share, each serving the commands of its own share.

    Not a ``ThreadPoolExecutor``: nothing can stop a thread, and the executor's threads are joined
    at exit, so a kernel that never returned (a cell past its time limit) held the process for
    ever. A daemon thread ends with the process; ``close`` does not wait for a busy one.
    """

    launcher = "threads"

    def start(self) -> list[int]:
        self._inboxes: list[queue.SimpleQueue] = [queue.SimpleQueue() for _ in self.shares]
        self._answers: queue.Queue = queue.Queue()
        self._command = 0
        self._pending: set[int] = set()
        self._at: list[int | None] = [None] * len(self.shares)
        self._seats: dict[int, Seat] = {}
        self._threads = [threading.Thread(target=self._serve, args=(slot,), name=f"shmbench-thread-{slot}",
                                          daemon=True) for slot in range(len(self.shares))]
        self.made(self._stop)
        for thread in self._threads:
            thread.start()
        self.ids = self._on_every_thread(self._sit)
        return self.ids

    def _serve(self, slot: int) -> None:
        while (order := self._inboxes[slot].get()) is not None:
            number, work = order
            try:
                self._answers.put((number, slot, work(slot), None))
            except BaseException as error:  # handed to the parent's thread
                self._answers.put((number, slot, None, error))

    def _sit(self, slot: int) -> int:
        matrix, first_row, _ = self.attachments[slot].open(self.plan, self.shares[slot])
        self._seats[slot] = Seat(self.plan, self.shares[slot], matrix, first_row,
                                 on_block=lambda index: self._at.__setitem__(slot, index),
                                 worker_id=threading.get_native_id())
        return threading.get_native_id()

    def _on_every_thread(self, work) -> list:
        """Run ``work(slot)`` once on each thread, all at once."""
        self._command += 1
        self._at = [None] * len(self.shares)
        self._pending = set(range(len(self.shares)))
        for inbox in self._inboxes:
            inbox.put((self._command, work))
        results: dict[int, Any] = {}
        while self._pending:
            try:  # with a timeout: a signal (Ctrl-C, a time limit) is handled between two waits
                number, slot, value, error = self._answers.get(timeout=0.1)
            except queue.Empty:
                continue
            if number != self._command:
                continue  # a late answer to a command given up on
            self._pending.discard(slot)
            if error is not None:
                raise WorkerError(f"a thread failed: {error!r}") from error
            results[slot] = value
        return [results[slot] for slot in range(len(self.shares))]

    def run(self, command: Command, on_part: OnPart = ignore, source: np.ndarray | None = None) -> list[int]:
        def work(slot: int) -> int:
            return execute(self._seats[slot], command, lambda *part: on_part(slot, *part), source)

        self._on_every_thread(work)
        return []  # threads share the parent's fault counter: the parent's figure is theirs

    def busy(self) -> list[str]:
        return [f"thread {slot} (id {self.ids[slot] if slot < len(self.ids) else '?'})"
                f"{on_block(self.plan, self.shares[slot], self._at[slot])}" for slot in sorted(self._pending)]

    def _stop(self) -> None:
        for inbox in self._inboxes:
            inbox.put(None)
        for slot, thread in enumerate(self._threads):
            if slot not in self._pending and thread.ident is not None:  # a busy one cannot be stopped;
                thread.join()  # it ends with the process
        self._seats = {}
