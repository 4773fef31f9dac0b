"""The worker core: the only code that writes matrix elements, shared by every strategy.

A strategy decides how a worker reaches its view of the matrix; what the worker then does
to that view is decided here, so every strategy does exactly the same work.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .plan import Plan

WORKLOADS = ("pid", "random", "legacy-random")
# The book fills the matrix with 42 before the workers run; a worker that finds anything
# else in its rows knows another worker has been there.
DEFAULT_VALUE = 42.0


class BlockTouchedError(RuntimeError):
    """A block did not hold the default value when its worker reached it."""


def check_workload(workload: str) -> str:
    if workload not in WORKLOADS:
        raise ValueError(f"unknown workload {workload!r}; choose one of: {', '.join(WORKLOADS)}")
    return workload


def seed_legacy(workload: str, seed: int) -> None:
    """Seed numpy's module-level generator in the parent, as a reproducible script does.

    numpy seeds that generator lazily, on first use; once the parent has seeded (or used) it,
    fork copies its state into every worker, which then all draw the same stream. spawn and
    forkserver workers import numpy afresh and seed their own.
    """
    if workload == "legacy-random":
        np.random.seed(seed)


def prepare(matrix: np.ndarray, workload: str) -> None:
    """Put the matrix into the state the workload expects before workers start on it."""
    if workload == "pid":
        matrix.fill(DEFAULT_VALUE)


def fill_block(view: np.ndarray, workload: str, seed: np.random.SeedSequence, worker_id: int,
               check_default: bool = True) -> None:
    """Fill ``view`` (one block of rows, C-contiguous) in place.

    - ``pid``: check the rows still hold ``DEFAULT_VALUE`` (unless the block is private to the
      worker, ``check_default=False``), then write ``worker_id`` into every element;
    - ``random``: uniform [0, 1) doubles from this block's own PCG64 stream, written in place;
    - ``legacy-random``: the book's ``np.random.random(cols)`` row by row from the module-level
      legacy generator, which fork copies into every worker unchanged.
    """
    if workload == "pid":
        if check_default and (view != DEFAULT_VALUE).any():
            raise BlockTouchedError(f"worker {worker_id} found rows already written by another worker")
        view.fill(worker_id)
    elif workload == "random":
        np.random.Generator(np.random.PCG64(seed)).random(out=view)
    elif workload == "legacy-random":
        for row in view:
            row[:] = np.random.random(view.shape[1])
    else:
        check_workload(workload)


def fill_blocks(matrix: np.ndarray, plan: Plan, blocks: range, workload: str, worker_id: int,
                check_default: bool = True, first_row: int = 0,
                on_block: Callable[[int], None] | None = None) -> None:
    """Fill ``blocks`` of the plan in ``matrix``, whose row 0 is the plan's row ``first_row``.

    ``on_block(index)`` is called before each block, so a watcher knows where a worker was.
    """
    seeds = plan.seeds
    for index in blocks:
        if on_block is not None:
            on_block(index)
        rows = plan.block(index)
        view = matrix[rows.start - first_row:rows.stop - first_row]
        fill_block(view, workload, seeds[index], worker_id, check_default)
