"""Ray actors on a private Ray instance of this node: one actor per share, answers through the store.

``start`` is ``ray.init`` with one CPU per worker, a bounded object store and no dashboard, in a
session directory of ours that close removes. What an actor returns (its blocks, its sums) is
copied into the store, and the parent reads it from there zero-copy. A read-only workload's input
is put into the store once per pass and every actor reads its share of that one copy.
"""
from __future__ import annotations

import gc
import logging
import os
import shutil
import signal
import tempfile

import numpy as np

from .base import OnPart, Runtime, become_worker, deliver, died, end, failed, ignore
from .seat import Command, Seat, collected

_STORE_SLACK = 64 * 2**20  # Ray's own objects, beside one matrix
_STORE_MINIMUM = 96 * 2**20  # Ray refuses a store under 75 MiB


def store_bytes(nbytes: int) -> int:
    """The object store for a matrix of ``nbytes``: the answers (or the input) of one pass."""
    return max(_STORE_MINIMUM, nbytes + _STORE_SLACK)


class _Actor:
    """One Ray actor holding a seat (Ray imports this class by name)."""

    def __init__(self, attachment, plan, rows: range) -> None:
        become_worker()  # Ray ends its actors itself when the driver dies
        self.attachment = attachment
        self.seat = Seat(plan, rows, None)

    def pid(self) -> int:
        return os.getpid()

    def run(self, command: Command, source: np.ndarray | None):
        seat = self.seat
        if seat.matrix is None:
            seat.matrix, seat.first_row, _ = self.attachment.open(seat.plan, seat.rows)
        answer = collected(seat, command, source)
        if command.name == "collect":
            seat.matrix = None  # the rows live in the store now: held once, not twice
        return answer


class RayActors(Runtime):
    launcher = "ray"
    _actors: list = []
    _session: str | None = None

    def start(self) -> list[int]:
        import ray

        if ray.is_initialized():
            raise RuntimeError("Ray is already running in this process; the ray strategy starts its own")
        # Ray's sockets live under its temporary directory, whose path must stay short.
        self._session = tempfile.mkdtemp(prefix="shmbench-ray-", dir="/tmp" if os.path.isdir("/tmp") else None)
        handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
        ray.init(num_cpus=len(self.shares), object_store_memory=store_bytes(self.plan.nbytes),
                 include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR, _temp_dir=self._session)
        # Ray's core installs its own fatal-signal handlers in this process; the caller's (the CLI
        # stops workers and exits 130 on SIGTERM) must stay in charge.
        for signum, handler in handlers.items():
            if handler is not None:
                signal.signal(signum, handler)
        actor = ray.remote(num_cpus=1)(_Actor)
        self._actors = [actor.remote(a, self.plan, rows) for a, rows in zip(self.attachments, self.shares)]
        self.ids = self._get([a.pid.remote() for a in self._actors], "start")
        return self.ids

    def _get(self, refs, what: str) -> list:
        import ray

        try:
            return ray.get(refs)
        except ray.exceptions.RayActorError as error:
            gone = [i for i, a in enumerate(self._actors) if a._actor_id.hex() == getattr(error, "actor_id", None)]
            slot = gone[0] if gone and gone[0] < len(self.ids) else None
            raise died(slot, self.ids[slot] if slot is not None else None, what, self.where(slot)) from error
        except ray.exceptions.RayTaskError as error:
            raise failed(what, str(error)) from error

    def run(self, command: Command, on_part: OnPart = ignore, source: np.ndarray | None = None) -> list[int]:
        import ray

        stored = None if source is None else ray.put(source)  # one copy, read by every actor
        answers = self._get([a.run.remote(command, stored) for a in self._actors], command.name)
        deliver(on_part, ((slot, parts) for slot, (_, parts) in enumerate(answers)))  # views of the store
        return [faults for faults, _ in answers]

    def close(self) -> None:
        import ray

        actors, self._actors = self._actors, []

        def ask() -> None:
            for actor in actors:
                ray.kill(actor)
            if ray.is_initialized():
                ray.shutdown()
            # Ray's leftovers are collected later otherwise, and with them went file descriptors
            # that a fork pool started afterwards had been given: book lost its pool workers in 4
            # of 6 runs after ray in one process here, and in none once they are collected now.
            gc.collect()

        try:
            end(self.ids, ask)
        finally:
            session, self._session = self._session, None
            if session is not None:
                shutil.rmtree(session, ignore_errors=True)
