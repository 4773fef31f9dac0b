"""What runs on a Dask worker: a task pinned to it opens its seat (the rows of its share), which
stays in the worker's memory as that task's result, and each command's task takes the seat as its
input. The seat is Dask's to keep: it goes when our client releases it, closes or is killed (the
scheduler forgets a client's futures when its connection drops), as any result does.

Module-level functions of an importable module: Dask sends them to the workers by reference.
"""
from __future__ import annotations

import numpy as np

from .seat import Command, Seat, collected

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


def open_seat(attachment, plan, rows: range) -> Seat:
    """The worker's seat on ``rows``: kept by Dask as this task's result, on this worker."""
    matrix, first_row, _ = attachment.open(plan, rows)
    return Seat(plan, rows, matrix, first_row)


def run_task(seat: Seat, command: Command, source, source_first_row: int):
    # Dask sends arrays without a pickle copy: the answer's blocks are views of the seat's rows,
    # serialized as they are, so keeping the rows costs no second copy.
    return collected(seat, command, _aligned(source), source_first_row)
