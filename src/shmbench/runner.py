"""``run``: one strategy through all its phases, timed, measured and verified."""
from __future__ import annotations

import hashlib
import os
import time
from contextlib import contextmanager

from . import memory
from .pages import minor_faults
from .plan import Plan
from .result import PHASES, RunResult
from .strategies import Strategy, create
from .verify import verify
from .workers import WORKER_BLAS_THREADS


@contextmanager
def _timed(phases: dict[str, float], name: str):
    start = time.perf_counter()
    try:
        yield
    finally:
        phases[name] += time.perf_counter() - start


@contextmanager
def _faults(record: dict[str, dict[str, int]], name: str, strategy: Strategy):
    """Minor faults of the parent and of each worker during one phase."""
    strategy.last_faults = {}
    before = minor_faults()
    yield
    record[name] = {"parent": minor_faults() - before, **strategy.last_faults}


def check(strategy: Strategy) -> list[str]:
    """Every problem with the strategy's finished matrix; empty when it verifies."""
    problems = verify(strategy.matrix, strategy.plan, strategy.workload, strategy.worker_ids,
                      every_worker=strategy.every_worker_gets_work, row_sums=strategy.row_sums)
    if strategy.shares_memory and not strategy.is_shared_view():
        problems.append("the matrix the parent reads is a copy, not the shared buffer")
    return problems


def _processes(strategy: Strategy) -> list[tuple[int, str]]:
    # joblib with one worker runs in the parent, which is already counted.
    workers = [pid for pid in strategy.worker_ids if pid != os.getpid()] if strategy.uses_processes else []
    return [(os.getpid(), "parent")] + [(pid, f"worker {i}") for i, pid in enumerate(workers)]


def run(strategy: str, rows: int, cols: int, workers: int = 1, workload: str = "random", seed: int = 0,
        start_method: str | None = None, block_rows: int | None = None, digest: bool = False,
        repeat: int = 0, memory_usage: bool = True, force: bool = False,
        prefault: bool | None = None) -> RunResult:
    """Fill a ``rows`` x ``cols`` float64 matrix with ``strategy`` and verify it.

    ``repeat`` more passes follow the first with the same workers (warm timings). With
    ``memory_usage`` the PSS of the parent and every worker is read after the fill and the
    collect, outside the timed phases. ``prefault`` maps the pages before the first fill (the
    ``touch`` phase); ``None`` does it where it pays (``Strategy.prefault_pays``).
    Raises ``ValueError`` on bad input, and ``PreflightError`` (a ``ValueError``) when the run
    cannot fit in memory unless ``force``, both before allocating anything.
    """
    plan = Plan(rows, cols, seed, block_rows)
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 0:
        raise ValueError(f"repeat must be a non-negative integer, got {repeat!r}")
    instance = create(strategy, plan, workers, workload, start_method)
    plan = instance.plan  # a strategy may fix its own split (book maps one row per task)
    instance.check_fits(force)
    if prefault is None:
        prefault = instance.prefault_pays()
    phases = dict.fromkeys(PHASES, 0.0)
    faults: dict[str, dict[str, int]] = {}
    samples: list[list[memory.ProcessMemory]] = []
    warm: list[float] = []
    problems: list[str] = []  # those of the first pass that failed
    failed_again = 0
    pids: list[int] = []
    sha = None

    def sample() -> None:
        if memory_usage:
            samples.append(memory.snapshot(_processes(instance)))

    try:
        with _timed(phases, "allocate"):
            instance.allocate()
        with _timed(phases, "start"):
            instance.start()
        pids = list(instance.worker_ids)
        for attempt in range(repeat + 1):
            first = attempt == 0
            timings = phases if first else dict.fromkeys(PHASES, 0.0)
            with _timed(timings, "prepare"):
                instance.prepare()
            if first and prefault:
                with _faults(faults, "touch", instance), _timed(timings, "touch"):
                    instance.touch()
            with _faults(faults, "fill" if first else "warm_fill", instance), _timed(timings, "fill"):
                instance.fill()
            sample()
            with _timed(timings, "collect"):
                instance.collect()
            sample()
            with _timed(timings, "verify"):
                found = check(instance)
            if found and not problems:
                problems = found
            elif found:
                failed_again += 1
            if not first:
                warm.append(timings["fill"] + timings["collect"])
        if failed_again:
            problems.append(f"{failed_again} later pass(es) failed verification too")
        if digest:
            sha = hashlib.sha256(memoryview(instance.output).cast("B")).hexdigest()
    finally:
        with _timed(phases, "close"):
            instance.close()

    peak = max(samples, key=memory.total_pss) if samples else []
    return RunResult(
        strategy=strategy, workload=workload, rows=plan.rows, cols=plan.cols, workers=instance.workers,
        start_method=instance.start_method, n_blocks=plan.n_blocks, block_rows=plan.block_rows,
        seed=plan.seed, phases=phases, total_seconds=sum(phases.values()), pids=pids,
        verified=not problems, problems=problems, digest=sha, warm_passes=warm,
        peak_total_pss_bytes=memory.total_pss(peak) if samples else None,
        memory=[m.as_dict() for m in peak], prefault=bool(prefault), minor_faults=faults,
        blas_threads_per_worker=WORKER_BLAS_THREADS if instance.uses_processes else None,
    )
