"""The worker's side of every runtime: what one worker holds, and what it does for each command.

Process workers, pool tasks, loky tasks, Ray actors, MPI ranks and threads all answer a command
by calling ``execute`` on their ``Seat``; only how the command reaches them differs.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .._system.pages import minor_faults, prefault
from ..plan import Plan
from ..work import DEFAULT_VALUE, fill_rows
from ..workloads import Workload, resolve

#: ``send(kind, where, array)``: a part of the answer ("block", block index) or ("sums", first row).
Send = Callable[[str, int, np.ndarray], None]


@dataclass(frozen=True)
class Command:
    """What every worker is asked to do with its rows: ``prepare``, ``touch``, ``fill`` or ``collect``."""

    name: str
    workload: str = "random"
    #: Refuse rows that do not hold the prepared value (``pid``); off where rows are the worker's own.
    check_default: bool = True

    @property
    def work(self) -> Workload:
        """The workload, resolved in this process (a kernel imported here); ``ValueError`` if unknown."""
        return resolve(self.workload)


@dataclass
class Seat:
    """One worker's place: the plan ``rows`` it owns, in ``matrix`` whose row 0 is plan row ``first_row``.

    ``exchange`` is a copy the parent can read, where the matrix itself is out of its reach (MPI's
    window): inputs come from it and ``collect`` puts results into it.
    """

    plan: Plan
    rows: range
    matrix: np.ndarray
    first_row: int = 0
    exchange: np.ndarray | None = None
    #: Called with each block's index before the worker starts it.
    on_block: Callable[[int], None] | None = None
    #: What the ``pid`` workload writes: the process id (a thread writes its native id).
    worker_id: int = field(default_factory=os.getpid)

    @property
    def view(self) -> slice:
        return slice(self.rows.start - self.first_row, self.rows.stop - self.first_row)


def execute(seat: Seat, command: Command, send: Send, source: np.ndarray | None = None,
            source_first_row: int = 0) -> int:
    """Do ``command`` on the seat's rows; return the minor page faults it cost this process.

    ``source`` holds the input of a read-only workload where the seat's own rows cannot (rows
    private to the worker), with its row 0 at plan row ``source_first_row``; for a kernel, the
    whole input, which otherwise is the seat's storage (or exchange) below the matrix's rows.
    """
    faults = minor_faults()
    mine = seat.matrix[seat.view]
    if command.name == "prepare":
        if command.work.over_default:
            mine.fill(DEFAULT_VALUE)
        elif command.work.from_input:
            mine.fill(0)  # as the parent's own prepare leaves a kernel's output
    elif command.name == "touch":
        prefault(mine)
    elif command.name == "fill":
        matrix, first_row, given = seat.matrix, seat.first_row, None
        work = command.work
        if work.whole_input:
            if source is None:
                shared = seat.exchange if seat.exchange is not None else seat.matrix
                source = shared[seat.plan.rows:] if work.from_input else shared
            given = source
            if work.reads:
                matrix, first_row = source, 0
        elif source is not None:
            matrix, first_row = source, source_first_row
        elif work.reads and seat.exchange is not None:
            mine[...] = seat.exchange[seat.rows.start:seat.rows.stop]
        sums = fill_rows(matrix, seat.plan, seat.rows, work, seat.worker_id, command.check_default,
                         first_row, seat.on_block, given)
        if sums is not None and seat.rows:
            send("sums", seat.rows.start, sums)
    elif command.name == "collect":
        if seat.exchange is not None:
            if not command.work.reads:
                seat.exchange[seat.rows.start:seat.rows.stop] = mine
        else:  # block by block: a large share never sits in memory twice at once
            for index in seat.plan.blocks_of(seat.rows):
                block = seat.plan.block(index)
                send("block", index, seat.matrix[block.start - seat.first_row:block.stop - seat.first_row])
    else:
        raise ValueError(f"unknown command {command.name!r}")
    return minor_faults() - faults


def collected(seat: Seat, command: Command, source: np.ndarray | None = None,
              source_first_row: int = 0) -> tuple[int, list[tuple[str, int, np.ndarray]]]:
    """``execute`` for runtimes that answer once: (faults, every part of the answer)."""
    parts: list[tuple[str, int, np.ndarray]] = []
    faults = execute(seat, command, lambda *part: parts.append(part), source, source_first_row)
    return faults, parts
