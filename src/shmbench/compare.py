"""A comparison: a grid of runs, each figure set against the serial baseline of its size and workload."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from .plan import Plan
from .result import RunResult
from .runner import run
from .strategies import REGISTRY, create, get


@dataclass(frozen=True)
class Case:
    """One cell of the grid."""

    strategy: str
    start_method: str | None
    workers: int
    rows: int
    cols: int
    workload: str


def available_strategies() -> list[str]:
    return [name for name, cls in REGISTRY.items() if cls.unavailable_reason() is None]


def grid(strategies: Sequence[str], workers: Sequence[int], sizes: Sequence[tuple[int, int]],
         workloads: Sequence[str], start_methods: Sequence[str | None]) -> list[Case]:
    """Every combination; serial runs once per size and workload, strategies without start methods
    (threads, joblib, Ray, MPI) once per worker count, and book only under fork."""
    cases = []
    for rows, cols in sizes:
        for workload in workloads:
            for name in strategies:
                traits = get(name).traits
                if not traits.parallel:
                    cases.append(Case(name, None, 1, rows, cols, workload))
                    continue
                # A strategy keeps the start methods it has; one with a launcher of its own runs once.
                methods = [m for m in start_methods if m in traits.start_methods] or [traits.default_start_method()]
                for method in methods:
                    for count in workers:
                        cases.append(Case(name, method, count, rows, cols, workload))
    return list(dict.fromkeys(cases))


def check_cases(cases: Iterable[Case], block_rows: int | None = None, force: bool = False) -> None:
    """Raise ``ValueError`` for the first case that is bad input or cannot fit, before any run starts."""
    for case in cases:
        plan = Plan(case.rows, case.cols, block_rows=block_rows)
        create(case.strategy, plan, case.workers, case.workload, case.start_method).check_fits(force)


def run_case(case: Case, seed: int, repeat: int, block_rows: int | None, force: bool) -> RunResult:
    return run(case.strategy, case.rows, case.cols, workers=case.workers, workload=case.workload, seed=seed,
               start_method=case.start_method, block_rows=block_rows, repeat=repeat, force=force)


def run_grid(cases: Iterable[Case], seed: int = 0, repeat: int = 3, block_rows: int | None = None,
             force: bool = False, on_result: Callable[[Case, RunResult], None] | None = None) -> list[RunResult]:
    results = []
    for case in cases:
        result = run_case(case, seed, repeat, block_rows, force)
        results.append(result)
        if on_result is not None:
            on_result(case, result)
    return results


def steady_seconds(result: RunResult) -> float:
    """The figure to compare: the warm median where there were repeats, else the cold pass."""
    return result.warm_median if result.warm_passes else result.cold_seconds


def record(result: RunResult, baseline: RunResult | None) -> dict:
    """The JSON/CSV record of one result: its fields plus the derived figures."""
    out = result.as_dict()
    seconds = steady_seconds(result)
    out.update(
        steady_seconds=seconds,
        warm_seconds=result.warm_median,
        warm_min=min(result.warm_passes) if result.warm_passes else None,
        warm_max=max(result.warm_passes) if result.warm_passes else None,
        speedup=steady_seconds(baseline) / seconds if baseline and seconds > 0 else None,
        gbps=result.nbytes / seconds / 1e9 if seconds > 0 else None,
        pss_multiple=(result.peak_total_pss_bytes / result.nbytes if result.peak_total_pss_bytes else None),
    )
    return out


def records(results: Sequence[RunResult]) -> list[dict]:
    """Records for every result, with speed-up over the serial run of the same size and workload."""
    baselines = {(r.rows, r.cols, r.workload): r for r in results if r.strategy == "serial"}
    return [record(r, baselines.get((r.rows, r.cols, r.workload))) for r in results]

