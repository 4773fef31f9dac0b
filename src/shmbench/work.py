"""The worker core: the only code that writes matrix elements, shared by every strategy.

A strategy decides how a worker reaches its view of the matrix; what the worker then does
to that view is decided here, so every strategy does exactly the same work.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import kernels
from .plan import Plan
from .workloads import DEFAULT_VALUE, WORKLOADS, Workload, resolve

__all__ = ["DEFAULT_VALUE", "WORKLOADS", "BlockTouchedError", "fill_block", "fill_rows", "prepare", "seed_legacy",
           "sums_dtype"]


class BlockTouchedError(RuntimeError):
    """A block did not hold the default value when its worker reached it."""


def sums_dtype(dtype: str) -> np.dtype:
    """What per-row results are kept as: float64, or complex128 for a complex matrix."""
    return np.dtype(np.complex128 if np.dtype(dtype).kind == "c" else np.float64)


def seed_legacy(workload: str | Workload, seed: int) -> None:
    """Seed numpy's module-level generator in the parent, as a reproducible script does.

    numpy seeds that generator lazily, on first use; once the parent has seeded (or used) it,
    fork copies its state into every worker, which then all draw the same stream. spawn and
    forkserver workers import numpy afresh and seed their own.
    """
    if resolve(workload).legacy:
        np.random.seed(seed)


def prepare(storage: np.ndarray, workload: str | Workload, plan: Plan) -> None:
    """Put the storage into the state the workload expects before workers start on it.

    ``pid`` expects 42.0 everywhere; ``rowsum`` and a read-only kernel read an input, which is the
    matrix the ``random`` workload writes (so its digest is known and every strategy reads the
    same). A writing kernel's input is that matrix too, below an output of zeros.
    """
    workload = resolve(workload)
    if workload.over_default:
        storage.fill(DEFAULT_VALUE)
    elif workload.reads:
        fill_rows(storage, plan, range(plan.rows), "random", 0)
    elif workload.from_input:
        storage[:plan.rows].fill(0)
        fill_rows(storage[plan.rows:], plan, range(plan.rows), "random", 0)


def fill_block(view: np.ndarray, workload: str | Workload, seed: np.random.SeedSequence, worker_id: int,
               check_default: bool = True, row_offset: int = 0, rows: range | None = None,
               source: np.ndarray | None = None) -> np.ndarray | None:
    """Fill ``view`` (rows of one block, C-contiguous) in place, or read it.

    - ``pid``: check the rows still hold ``DEFAULT_VALUE`` (unless the rows are private to the
      worker, ``check_default=False``), then write ``worker_id`` into every element;
    - ``random``: the dtype's natural distribution from the block's own PCG64 stream, the view's
      first row being ``row_offset`` rows into the block: uniform [0, 1) for floats (real and
      imaginary parts for complex), the full range for integers;
    - ``legacy-random``: the book's ``np.random.random(cols)`` row by row from the module-level
      legacy generator, which fork copies into every worker unchanged;
    - ``rowsum`` (read-only): return the sum of each row, leaving the view untouched;
    - a kernel of yours (``shmbench.kernels``): called with the view, its plan ``rows``, the
      block's generator and the whole input matrix ``source``.
    """
    workload = resolve(workload)
    if workload.is_kernel:
        return kernels.call(workload.name, view, rows, seed, source, worker_id)
    if workload.over_default:
        if check_default and (view != DEFAULT_VALUE).any():
            raise BlockTouchedError(f"worker {worker_id} found rows already written by another worker")
        view.fill(worker_id)
    elif workload.reads:
        return view.sum(axis=1)
    elif workload.legacy:
        for row in view:
            row[:] = np.random.random(view.shape[1])
    else:  # random
        if view.dtype.kind == "c":
            view = view.view(np.float64)  # real and imaginary parts, interleaved: two draws an element
        if view.dtype == np.float64:
            skip = row_offset * view.shape[1]
            bits = np.random.PCG64(seed)
            if skip:
                bits.advance(skip)  # one 64-bit draw per double: any row starts where the block's stream has it
            np.random.Generator(bits).random(out=view)
        else:
            _random_rows(view, seed, row_offset)
    return None


def _random_rows(view: np.ndarray, seed: np.random.SeedSequence, row_offset: int) -> None:
    """float32 and integers, row by row from the stream's raw 64-bit draws.

    ``Generator.integers`` has no ``out=``, and numpy's float32 draws take half a 64-bit draw each,
    which a row in the middle of a block could not skip to. Here every row takes a fixed number of
    draws, so any row starts where the block's stream has it; the only temporaries are one row's
    draws.
    """
    cols = view.shape[1]
    floats = view.dtype.kind == "f"
    per_row = cols if floats else -(-cols * view.itemsize // 8)
    bits = np.random.PCG64(seed)
    if row_offset:
        bits.advance(row_offset * per_row)
    for row in view:
        raw = bits.random_raw(per_row)
        if floats:  # the top 24 bits scaled by 2**-24, as numpy makes a float32: uniform in [0, 1), exact
            np.multiply(raw >> np.uint64(40), 2.0**-24, out=row, casting="unsafe")
        else:  # the full range: the row's bytes are the draws' bytes
            row.view(np.uint8)[:] = raw.view(np.uint8)[:row.nbytes]



def fill_rows(matrix: np.ndarray, plan: Plan, rows: range, workload: str | Workload, worker_id: int,
              check_default: bool = True, first_row: int = 0,
              on_block: Callable[[int], None] | None = None, source: np.ndarray | None = None) -> np.ndarray | None:
    """Fill the plan's ``rows`` in ``matrix``, whose row 0 is the plan's row ``first_row``.

    Any run of rows gives the values the whole plan has there, whether it covers whole blocks (a
    worker's share) or one row (the book's tasks; a kernel is always given whole blocks).
    ``on_block(index)`` is called before each block, so a watcher knows where a worker was. A
    read-only workload returns its per-row results for ``rows``, in order. ``source`` is the whole
    input a kernel reads (for a writing kernel, by default the storage's rows below the matrix's).
    """
    workload = resolve(workload)
    if source is None and workload.is_kernel:
        source = matrix[plan.rows:] if workload.from_input else matrix
    seeds = plan.seeds
    results = []
    for index in plan.blocks_of(rows):
        block = plan.block(index)
        start, stop = max(block.start, rows.start), min(block.stop, rows.stop)
        if on_block is not None:
            on_block(index)
        view = matrix[start - first_row:stop - first_row]
        results.append(fill_block(view, workload, seeds[index], worker_id, check_default,
                                  row_offset=start - block.start, rows=range(start, stop), source=source))
    if not workload.reads:
        return None
    return np.concatenate(results) if results else np.empty(0)
