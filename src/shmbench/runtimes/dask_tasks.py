"""What runs on a Dask worker: a task pinned to it finds its seat (the rows of its share, kept
between passes in a module-level table there) and answers one command.

Module-level functions of an importable module: Dask sends them to the workers by reference.
"""
from __future__ import annotations

import numpy as np

from .seat import Command, Seat, collected

_SEATS: dict[int, Seat] = {}  # a worker process's seats, by slot (one, as each share has its worker)


def forget() -> int:
    """On a worker of a cluster we joined: drop our seats (their rows), as we leave."""
    count = len(_SEATS)
    _SEATS.clear()
    return count


def _aligned(array: np.ndarray | None) -> np.ndarray | None:
    """``array``, copied to a 64-byte boundary if it is not on one. Dask unpickles a scattered array
    wherever its message put it, and numpy's sum of a row depends on the row's alignment (its
    vector loops start where the address allows): rowsum's sums came out different in the last
    bit for rows that were not aligned as the parent's."""
    if array is None or array.ctypes.data % 64 == 0:
        return array
    raw = np.empty(array.nbytes + 64, np.uint8)
    start = -raw.ctypes.data % 64
    copy = raw[start:start + array.nbytes].view(array.dtype).reshape(array.shape)
    copy[...] = array
    return copy


def run_task(slot: int, attachment, plan, rows: range, command: Command, source, source_first_row: int):
    seat = _SEATS.get(slot)
    if seat is None:
        matrix, first_row, _ = attachment.open(plan, rows)
        seat = _SEATS[slot] = Seat(plan, rows, matrix, first_row)
    # Dask sends arrays without a pickle copy: the answer's blocks are views of the seat's rows,
    # serialized as they are, so keeping the rows costs no second copy.
    return collected(seat, command, _aligned(source), source_first_row)
