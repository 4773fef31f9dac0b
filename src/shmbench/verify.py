"""Checks a finished matrix at memory-bandwidth speed, block by block, with no per-element Python."""
from __future__ import annotations

from collections import Counter
from collections.abc import Collection

import numpy as np

from . import kernels
from .plan import Plan
from .work import DEFAULT_VALUE

# Rows are compared on their first few values first; only rows that agree there are
# compared in full, so finding repeated rows costs one small sort, not a pass per row.
_FINGERPRINT_COLS = 4
_MAX_LISTED = 3


def pid_counts(matrix: np.ndarray, plan: Plan) -> tuple[Counter, list[str]]:
    """Elements written per worker id, and the rows that do not hold exactly one id.

    Row by row, not block by block: the book's pool hands out one row per task, so two workers
    may share a block, but a row is always written whole by one worker.
    """
    counts: Counter = Counter()
    problems: list[str] = []
    for index in range(plan.n_blocks):
        block = matrix[plan.block(index)]
        firsts = block[:, :1]
        mixed = np.flatnonzero((block != firsts).any(axis=1))
        if mixed.size:
            problems.append(f"row {plan.block(index).start + int(mixed[0])} of block {index} holds more than one "
                            f"value (two workers wrote it, or none did)")
            continue
        values, rows = np.unique(firsts, return_counts=True)
        if DEFAULT_VALUE in values:
            problems.append(f"block {index} still holds the default {DEFAULT_VALUE}: no worker wrote it")
            continue
        for value, count in zip(values, rows):
            counts[int(np.real(value))] += int(count) * block.shape[1]
    return counts, problems


def verify_pid(matrix: np.ndarray, plan: Plan, worker_ids: Collection[int], every_worker: bool = True) -> list[str]:
    """The book's checks: no default left, per-id counts sum to the size, every worker did some work
    (unless ``every_worker`` is False: a shared task queue promises no worker a share)."""
    counts, problems = pid_counts(matrix, plan)
    if problems:
        return problems
    if sum(counts.values()) != plan.rows * plan.cols:
        problems.append(f"per-worker counts sum to {sum(counts.values())}, not {plan.rows * plan.cols}")
    strangers = sorted(set(counts) - set(worker_ids))
    if strangers:
        problems.append(f"ids {strangers[:_MAX_LISTED]} belong to no worker of this run")
    expected = min(len(set(worker_ids)), plan.n_blocks)
    if every_worker and len(counts) != expected:
        problems.append(f"{len(counts)} distinct worker ids wrote the matrix, expected {expected}")
    return problems


def repeated_rows(matrix: np.ndarray) -> list[tuple[int, int]]:
    """Pairs of row indices whose rows are identical (a repeated random stream)."""
    if matrix.shape[0] < 2:
        return []
    keys = np.ascontiguousarray(matrix[:, :_FINGERPRINT_COLS])
    order = np.lexsort(keys.T[::-1])
    ordered = keys[order]
    candidates = np.flatnonzero((ordered[1:] == ordered[:-1]).all(axis=1))
    pairs = []
    for c in candidates:
        i, j = int(order[c]), int(order[c + 1])
        if np.array_equal(matrix[i], matrix[j]):
            pairs.append((min(i, j), max(i, j)))
    return pairs


def verify_random(matrix: np.ndarray, plan: Plan) -> list[str]:
    """Every value in [0, 1) (floats; real and imaginary parts of complex; integers take their whole
    range) and no two rows alike (which a stream duplicated by fork gives)."""
    problems = []
    floats = matrix.view(np.float64) if matrix.dtype.kind == "c" else matrix
    for index in range(plan.n_blocks if floats.dtype.kind == "f" else 0):
        block = floats[plan.block(index)]
        low, high = block.min(), block.max()
        if not (low >= 0.0 and high < 1.0):
            problems.append(f"block {index} holds values outside [0, 1): min {low}, max {high}")
            break
    pairs = repeated_rows(matrix)
    if pairs:
        shown = ", ".join(f"{i}={j}" for i, j in pairs[:_MAX_LISTED])
        problems.append(f"{len(pairs)} pairs of identical rows ({shown}): workers drew the same random stream")
    return problems


def verify_rowsum(matrix: np.ndarray, plan: Plan, row_sums: np.ndarray | None) -> list[str]:
    """The input is still a valid random matrix, and each returned sum is its row's sum, bit for bit
    (the same numpy reduction over the same row gives the same double wherever it runs)."""
    problems = verify_random(matrix, plan)
    if row_sums is None or row_sums.shape != (plan.rows,):
        shape = None if row_sums is None else row_sums.shape
        return problems + [f"expected {plan.rows} row sums, got {shape}"]
    wrong = 0
    first_wrong = None
    for index in range(plan.n_blocks):
        rows = plan.block(index)
        bad = np.flatnonzero(matrix[rows].sum(axis=1) != row_sums[rows])
        if bad.size and first_wrong is None:
            first_wrong = rows.start + int(bad[0])
        wrong += bad.size
    if wrong:
        problems.append(f"{wrong} row sums differ from the input's rows (first: row {first_wrong})")
    return problems


def verify(matrix: np.ndarray, plan: Plan, workload: str, worker_ids: Collection[int],
           every_worker: bool = True, row_sums: np.ndarray | None = None,
           source: np.ndarray | None = None) -> list[str]:
    """Problems found in ``matrix`` (and in ``row_sums``, for ``rowsum``) after ``workload`` ran;
    an empty list means verified. A kernel's output is checked against serial's, and its input
    ``source`` for changes (``shmbench.kernels.verify``)."""
    if matrix.shape != plan.shape or matrix.dtype != np.dtype(plan.dtype):
        return [f"matrix is {matrix.dtype}{matrix.shape}, expected {plan.dtype}{plan.shape}"]
    if kernels.is_kernel(workload):
        return kernels.verify(row_sums if kernels.load(workload).read_only else matrix,
                              matrix if source is None else source, plan, workload)
    if workload == "pid":
        return verify_pid(matrix, plan, worker_ids, every_worker)
    if workload == "rowsum":
        return verify_rowsum(matrix, plan, row_sums)
    return verify_random(matrix, plan)
