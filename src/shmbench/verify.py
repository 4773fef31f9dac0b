"""Checks a finished matrix at memory-bandwidth speed, block by block, with no per-element Python."""
from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from . import kernels
from .plan import Plan
from .work import DEFAULT_VALUE, fill_rows, prepare, sums_dtype
from .workloads import Workload, resolve

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


def verify(matrix: np.ndarray, plan: Plan, workload: str | Workload, worker_ids: Collection[int],
           every_worker: bool = True, row_sums: np.ndarray | None = None,
           source: np.ndarray | None = None) -> list[str]:
    """Problems found in ``matrix`` (and in ``row_sums``, for a workload that reads) after
    ``workload`` ran; an empty list means verified. A kernel's output is checked against serial's,
    and its input ``source`` for changes (``verify_kernel``)."""
    workload = resolve(workload)
    if matrix.shape != plan.shape or matrix.dtype != np.dtype(plan.dtype):
        return [f"matrix is {matrix.dtype}{matrix.shape}, expected {plan.dtype}{plan.shape}"]
    if workload.is_kernel:
        return verify_kernel(row_sums if workload.reads else matrix, matrix if source is None else source, plan,
                             workload.name)
    if workload.over_default:
        return verify_pid(matrix, plan, worker_ids, every_worker)
    if workload.reads:
        return verify_rowsum(matrix, plan, row_sums)
    return verify_random(matrix, plan)


@dataclass(frozen=True)
class Reference:
    """What serial makes of the kernel: its output's digest, its input's, and whether two runs agreed."""

    digest: str
    input_digest: str
    deterministic: bool
    #: The kernel's module has a ``check``.
    checked: bool = False

    @property
    def judged_by(self) -> str:
        if self.deterministic:
            return "serial's output, bit for bit"
        if self.checked:
            return "check() alone: the kernel is not deterministic (two serial runs differed)"
        return "nothing: the kernel is not deterministic (two serial runs differed) and has no check()"


@lru_cache(maxsize=8)
def reference(plan: Plan, spec: str) -> Reference:
    """Serial's run of the kernel, twice, in this process (cached per plan and kernel)."""
    kernel = kernels.load(spec)
    storage = np.empty(plan.storage_shape, plan.dtype)
    source = storage if kernel.read_only else storage[plan.rows:]
    digests, input_digest = [], None
    for _ in range(2):
        prepare(storage, spec, plan)
        input_digest = input_digest or kernels.digest(source)  # as prepared: the kernel may not change it
        out = fill_rows(storage, plan, range(plan.rows), spec, 0)
        digests.append(kernels.digest(out.astype(sums_dtype(plan.dtype)) if kernel.read_only else storage[:plan.rows]))
    return Reference(digests[0], input_digest, digests[0] == digests[1], kernel.check is not None)


def verify_kernel(output: np.ndarray | None, source: np.ndarray, plan: Plan, spec: str) -> list[str]:
    """The kernel's output against serial's, its input unchanged, and the module's ``check``."""
    kernel, ref = kernels.load(spec), reference(plan, spec)
    problems = []
    if kernel.read_only and (output is None or output.shape != (plan.rows,)):
        return [f"expected {plan.rows} values, one per row, got {None if output is None else output.shape}"]
    if kernels.digest(source) != ref.input_digest:
        problems.append("the input matrix changed: the kernel wrote where it may only read")
    if not ref.deterministic and kernel.check is None:  # verified means something was compared and matched
        problems.append("not deterministic and no check(): nothing to compare")
    if ref.deterministic and kernels.digest(output) != ref.digest:
        problems.append("the output differs from serial's (sha256): a block written outside its worker's rows, "
                        "or not written whole")
    if kernel.check is not None:
        try:
            if kernel.check(output) is False:
                problems.append("check() returned False")
        except Exception as error:
            problems.append(f"check() failed: {type(error).__name__}: {error}")
    return problems
