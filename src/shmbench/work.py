"""The worker core: the only code that writes matrix elements, shared by every strategy.

A strategy decides how a worker reaches its view of the matrix; what the worker then does
to that view is decided here, so every strategy does exactly the same work.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import kernels
from .plan import Plan

#: The built-in workloads; a user's kernel is named ``module:function`` or ``path/file.py:function``.
WORKLOADS = ("pid", "random", "legacy-random", "rowsum")
#: Built-in workloads that only read the matrix (an input the parent prepared) and return a result per row.
READ_ONLY = frozenset({"rowsum"})
# The book fills the matrix with 42 before the workers run; a worker that finds anything
# else in its rows knows another worker has been there.
DEFAULT_VALUE = 42.0


class BlockTouchedError(RuntimeError):
    """A block did not hold the default value when its worker reached it."""


def check_workload(workload: str | Callable) -> str:
    """The workload's name (a kernel's with its file's path made absolute; a function becomes its
    ``module:function``); ``ValueError`` if it is unknown or, for a kernel, does not import or does
    not take ``(out, rows, rng, input)``."""
    if callable(workload):
        workload = kernels.spec_of(workload)
    if not isinstance(workload, str):
        raise ValueError(f"a workload is a name or a function, not {workload!r}")
    if kernels.is_kernel(workload):
        return kernels.load(workload).spec
    if workload not in WORKLOADS:
        raise ValueError(f"unknown workload {workload!r}; choose one of: {', '.join(WORKLOADS)}, "
                         f"or a kernel of yours as module:function or path/file.py:function")
    return workload


def reads_only(workload: str) -> bool:
    """The workload reads an input the parent prepared and returns one value per row (``rowsum``)."""
    return workload in READ_ONLY or (kernels.is_kernel(workload) and kernels.load(workload).read_only)


def sums_dtype(dtype: str) -> np.dtype:
    """What per-row results are kept as: float64, or complex128 for a complex matrix."""
    return np.dtype(np.complex128 if np.dtype(dtype).kind == "c" else np.float64)


def needs_input(workload: str) -> bool:
    """The workload writes an output from a second matrix, its input (a user's writing kernel)."""
    return kernels.is_kernel(workload) and not kernels.load(workload).read_only


def seed_legacy(workload: str, seed: int) -> None:
    """Seed numpy's module-level generator in the parent, as a reproducible script does.

    numpy seeds that generator lazily, on first use; once the parent has seeded (or used) it,
    fork copies its state into every worker, which then all draw the same stream. spawn and
    forkserver workers import numpy afresh and seed their own.
    """
    if workload == "legacy-random":
        np.random.seed(seed)


def prepare(storage: np.ndarray, workload: str, plan: Plan) -> None:
    """Put the storage into the state the workload expects before workers start on it.

    ``pid`` expects 42.0 everywhere; ``rowsum`` and a read-only kernel read an input, which is the
    matrix the ``random`` workload writes (so its digest is known and every strategy reads the
    same). A writing kernel's input is that matrix too, below an output of zeros.
    """
    if workload == "pid":
        storage.fill(DEFAULT_VALUE)
    elif reads_only(workload):
        fill_rows(storage, plan, range(plan.rows), "random", 0)
    elif needs_input(workload):
        storage[:plan.rows].fill(0)
        fill_rows(storage[plan.rows:], plan, range(plan.rows), "random", 0)


def fill_block(view: np.ndarray, workload: str, seed: np.random.SeedSequence, worker_id: int,
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
    if kernels.is_kernel(workload):
        return kernels.call(workload, view, rows, seed, source, worker_id)
    if workload == "pid":
        if check_default and (view != DEFAULT_VALUE).any():
            raise BlockTouchedError(f"worker {worker_id} found rows already written by another worker")
        view.fill(worker_id)
    elif workload == "random":
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
    elif workload == "legacy-random":
        for row in view:
            row[:] = np.random.random(view.shape[1])
    elif workload == "rowsum":
        return view.sum(axis=1)
    else:
        check_workload(workload)
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


def pid_max() -> int:
    """The largest process id this kernel hands out."""
    try:
        with open("/proc/sys/kernel/pid_max") as stream:
            return int(stream.read())
    except (OSError, ValueError):
        return 2**22  # Linux's ceiling on 64-bit machines


def check_dtype_for(workload: str, dtype: str) -> None:
    """``ValueError`` when ``workload`` cannot be written in ``dtype`` (a PID in a uint8)."""
    if workload != "pid":
        return
    kind = np.dtype(dtype)
    exact = np.iinfo(kind).max if kind.kind in "iu" else 2 ** (np.finfo(kind).nmant + 1)
    if exact < pid_max():
        raise ValueError(f"the pid workload cannot use {dtype}: it holds whole numbers up to {exact}, "
                         f"and process ids here go up to {pid_max()}")


def fill_rows(matrix: np.ndarray, plan: Plan, rows: range, workload: str, worker_id: int,
              check_default: bool = True, first_row: int = 0,
              on_block: Callable[[int], None] | None = None, source: np.ndarray | None = None) -> np.ndarray | None:
    """Fill the plan's ``rows`` in ``matrix``, whose row 0 is the plan's row ``first_row``.

    Any run of rows gives the values the whole plan has there, whether it covers whole blocks (a
    worker's share) or one row (the book's tasks; a kernel is always given whole blocks).
    ``on_block(index)`` is called before each block, so a watcher knows where a worker was. A
    read-only workload returns its per-row results for ``rows``, in order. ``source`` is the whole
    input a kernel reads (for a writing kernel, by default the storage's rows below the matrix's).
    """
    if source is None and kernels.is_kernel(workload):
        source = matrix[plan.rows:] if needs_input(workload) else matrix
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
    if not reads_only(workload):
        return None
    return np.concatenate(results) if results else np.empty(0)
