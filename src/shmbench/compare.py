"""A comparison: a grid of cells, each measured in pairs against serial and a yardstick.

``shmbench.run`` is one strategy on its own; a comparison keeps serial's fill of the same plan alive
beside each cell in turn (never more than one cell's workers at once) and interleaves their passes
(``paired``), so every ratio in a record comes from passes measured back to back, and the record
carries those reference passes itself.
"""
from __future__ import annotations

import itertools
import time
import traceback
from collections.abc import Callable, Collection, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace

from . import capacity, kernels
from ._system import memory, preflight
from ._system.deadline import FIRST_LIMIT, phase_limit
from ._system.pages import unforked_array
from ._system.yardstick import Yardstick, yardstick_bytes
from .paired import Rounds, interleave
from .plan import DEFAULT_DTYPE, Plan
from .sizes import parse_size
from .result import RunResult
from .runner import Driver, output_digest, processes, result_of
from .records import PLAUSIBLE_SLACK, STABLE_SPREAD, speedup, usable_cores
from .strategies import PEER_REGISTRY, REFERENCE, REGISTRY, create, get
from .strategies.base import crossing

@dataclass(frozen=True)
class Case:
    """One cell of the grid."""

    strategy: str
    start_method: str | None
    workers: int
    rows: int
    cols: int
    workload: str
    dtype: str = DEFAULT_DTYPE
    nodes: int = 1


def available_strategies() -> list[str]:
    return [name for name, cls in REGISTRY.items() if cls.unavailable_reason() is None]


def grid(strategies: Sequence[str], workers: Sequence[int], sizes: Sequence[str | tuple[int, int]],
         workloads: Sequence[str], start_methods: Sequence[str | None],
         dtypes: Sequence[str] = (DEFAULT_DTYPE,), nodes: Sequence[int] = (1,)) -> list[Case]:
    """Every combination; serial runs once per size, dtype and workload, strategies without start
    methods (threads, joblib, Ray, MPI) once per worker count, and book only under fork. A size in
    bytes (``"1GiB"``) holds as many elements of each dtype as fit in it. Node counts above one go
    to the strategies that cross nodes, with at least as many workers as nodes; ``ValueError``
    when none of ``strategies`` can take them."""
    if any(n > 1 for n in nodes) and not any(get(name).traits.nodes for name in strategies):
        raise ValueError(f"--nodes above 1 is for {', '.join(crossing())}; none of them is asked for")
    cases = []
    for dtype, size in itertools.product(dtypes, sizes):
        rows, cols = parse_size(size, dtype) if isinstance(size, str) else size
        for workload in workloads:
            for name in strategies:
                traits = get(name).traits
                if not traits.parallel:
                    cases.append(Case(name, None, 1, rows, cols, workload, dtype))
                    continue
                # A strategy keeps the start methods it has; one with a launcher of its own runs once.
                methods = [m for m in start_methods if m in traits.start_methods] or [traits.default_start_method()]
                counts = sorted(set(nodes)) if traits.nodes else [1]
                for method, count, n in itertools.product(methods, workers, counts):
                    if n <= count or n == 1:
                        cases.append(Case(name, method, count, rows, cols, workload, dtype, n))
    return list(dict.fromkeys(cases))


def check_cases(cases: Iterable[Case], block_rows: int | None = None, force: bool = False) -> None:
    """Raise ``ValueError`` for the first case that is bad input or cannot fit, before any run starts.

    A cell needs room for itself, for serial's storage beside it (twice for a kernel: its
    reference run) and for the yardstick's array.
    """
    for case in cases:
        plan = Plan(case.rows, case.cols, block_rows=block_rows, dtype=case.dtype)
        instance = create(case.strategy, plan, case.workers, case.workload, case.start_method, case.nodes)
        need = instance.need()
        serial = instance.plan.storage_nbytes * (2 if instance.work.is_kernel else 1)
        preflight.check(preflight.Need(need.ram + serial + yardstick_bytes(plan.nbytes), need.shm), force)
        instance.check_fits(force)  # the strategy's own checks too (a disk's free space)


class Budget:
    """Seconds of extra rounds (after ``repeat``) for a whole comparison, spent where they decide the
    answer: each cell may take an even share of what is left, at least ``floor``; a cell clearly
    behind its group's leader stops as soon as that is certain, leaving its share to the cells
    after it. ``total=None`` gives every cell ``floor`` (``--budget``).

    ``reserve`` seconds more are kept for second sittings (``sits_again``): each group of the
    comparison may take an even share of what is left of them, split among its cells that sit again."""

    def __init__(self, floor: float, total: float | None = None, cells: int = 1, reserve: float = 0.0) -> None:
        self.floor, self.left, self.cells = floor, total, max(1, cells)
        self.reserve = reserve

    def share(self) -> float:
        if self.left is None:
            return self.floor
        return max(self.floor, self.left / self.cells)

    def spend(self, seconds: float) -> None:
        self.cells = max(1, self.cells - 1)
        if self.left is not None:
            self.left = max(0.0, self.left - seconds)

    def sitting(self, cells: int, groups: int) -> float:
        """The seconds of one of ``cells`` second sittings of a group, ``groups`` groups (this one
        included) still to come; 0 when nothing is (or is left) for them."""
        if self.reserve <= 0:
            return 0.0
        return max(self.floor, self.reserve / max(1, groups) / max(1, cells))

    def spend_sitting(self, seconds: float) -> None:
        self.reserve = max(0.0, self.reserve - seconds)


def run_grid(cases: Sequence[Case], seed: int = 0, repeat: int = 8, budget: float | Budget = 10.0,
             block_rows: int | None = None, force: bool = False,
             on_result: Callable[[Case, RunResult], None] | None = None,
             on_round: Callable[[Case, int], None] | None = None, *, skip: Collection[Case] = (),
             fail_fast: bool = False, digest: bool = False, timeout: float | None = None) -> list[RunResult]:
    """Measure every cell but those in ``skip``: at least ``repeat`` paired rounds, more until its
    figures settle or its ``budget`` (seconds a cell, or a ``Budget`` shared by the comparison) has
    gone, or its speed-up lies clearly below the best one of its group so far. Cells of one size and
    workload share serial's live fill. A cell that fails (a worker dies, a runtime does not start,
    a phase passes its time limit: ``timeout`` seconds, or ``phase_limit``) gives a failed result
    and the next cell runs, unless ``fail_fast``; ``on_result`` hears of each result as it lands.

    With a ``Budget`` that keeps a reserve, each group's contenders left unstable then sit again
    (``sits_again``); ``on_result`` hears of such a cell a second time, its record pooling both
    sittings (``pooled``), which also takes the first's place in the list returned."""
    results = []
    budget = budget if isinstance(budget, Budget) else Budget(budget)
    # The lower end of the best speed-up interval measured so far, by group and worker count:
    # serial's 1.00 to begin with, as serial is exactly that.
    leaders: dict[tuple, float] = {}

    def done(case: Case, result: RunResult, replacing: RunResult | None = None) -> None:
        if replacing is None:
            results.append(result)
        else:  # a second sitting's record takes its first's place
            results[next(i for i, r in enumerate(results) if r is replacing)] = result
        if on_result is not None:
            on_result(case, result)

    groups = [(key, list(group)) for key, group in
              itertools.groupby(cases, key=lambda c: (c.rows, c.cols, c.workload, c.dtype))]
    for number, ((rows, cols, workload, dtype), group) in enumerate(groups):
        todo = [case for case in group if case not in skip]
        if not todo:
            continue
        plan = Plan(rows, cols, seed, block_rows, dtype)
        serial_samples: list = []
        with ExitStack() as stack:
            try:
                serial = stack.enter_context(_reference(plan, workload, serial_samples, timeout or FIRST_LIMIT))
                serial_problems = serial.first_pass()
                serial.timeout = timeout or phase_limit(serial.phases)
            except Exception as error:
                if fail_fast:
                    raise
                for case in todo:
                    done(case, failed(case, plan, f"serial's reference fill failed: {one_line(error)}", error))
                continue
            measured: dict[Case, RunResult] = {}

            def sit(case: Case, seconds: float, earlier: RunResult | None = None) -> RunResult:
                tick = (lambda n, case=case: on_round(case, n)) if on_round else None
                where = (rows, cols, workload, dtype, case.workers)
                behind = (lambda rounds, where=where, case=case: clearly_behind(rounds, case.workers, leaders.get(where, 1.0)))
                try:
                    if case.strategy == REFERENCE:  # the reference: every cell carries serial's passes of its own
                        return _measure(serial, None, case, repeat, 0.0, serial_samples, serial_problems, tick, digest)
                    return _run_cell(case, plan, serial, repeat, seconds, tick, digest, behind, serial.timeout,
                                     earlier=earlier)
                except Exception as error:
                    if fail_fast:
                        raise
                    return failed(case, plan, one_line(error), error)

            for case in todo:
                began = time.monotonic()
                result = sit(case, budget.share())
                budget.spend(time.monotonic() - began)
                fast = speedup(result, None) if result.verified and not result.error else None
                if fast is not None and fast.has_interval and result.strategy not in PEER_REGISTRY:
                    where = (rows, cols, workload, dtype, case.workers)
                    leaders[where] = max(leaders.get(where, 1.0), fast.low)
                measured[case] = result
                done(case, result)
            # The contenders whose figures did not settle sit again: a new opening of the cell, its rounds
            # added to the first's, so the figure covers what another opening of it gives too.
            again = sits_again(list(measured.values())) if budget.reserve > 0 else []
            for left, first in zip(range(len(again), 0, -1), again):
                case = case_of(first)
                seconds = budget.sitting(left, len(groups) - number)
                if seconds <= 0:
                    break
                began = time.monotonic()
                second = sit(case, seconds, earlier=first)
                budget.spend_sitting(time.monotonic() - began)
                done(case, pooled(first, second), replacing=first)
    return results


def sits_again(results: Sequence[RunResult]) -> list[RunResult]:
    """The results of one group whose speed-up contends for its worker count's answer (its
    interval reaches the lower end of the best median's, serial's exact 1.00 among them) but is
    not stable (``STABLE_SPREAD``), best first. Peers, failed cells and cells that did not verify
    never sit again; a speed-up more than the cores allow (disturbed) is never the best."""
    cores = usable_cores()
    out = []
    for workers in sorted({r.workers for r in results}):
        pool = [(fast, r) for r in results if r.workers == workers and r.strategy not in (REFERENCE, *PEER_REGISTRY)
                and r.verified and not r.error for fast in [speedup(r, None)] if fast is not None and fast.has_interval]
        plausible = [fast for fast, _ in pool if fast.median <= min(workers, cores) * (1 + PLAUSIBLE_SLACK)]
        best = max(plausible, key=lambda fast: fast.median, default=None)
        floor = best.low if best is not None and best.median > 1.0 else 1.0
        out += [r for fast, r in sorted(pool, key=lambda pair: -pair[0].median)
                if fast.high >= floor and not fast.within(STABLE_SPREAD)]
    return out


def pooled(first: RunResult, second: RunResult) -> RunResult:
    """A cell's record from two sittings: the second's rounds (which hold the first's too), the
    first's cold pass, phases and memory (a second sitting comes after every other cell of the
    group, whose engines leave their modules in this process), and the problems of both. A
    second sitting that failed (a worker died...) fails the cell, which keeps its first's figures."""
    if second.error:
        return replace(first, error=f"its second sitting failed: {second.error}", verified=False,
                       problems=first.problems + second.problems, sittings=first.sittings + 1)
    problems = first.problems + [p for p in second.problems if p not in first.problems]
    if first.digest and second.digest and first.digest != second.digest:
        problems.append(f"its two sittings' outputs differ (sha256 {first.digest[:12]}… and {second.digest[:12]}…)")
    return replace(first, warm_passes=second.warm_passes, reference=second.reference, settled=second.settled,
                   behind=second.behind, verified=not problems, problems=problems, sittings=first.sittings + 1)


def clearly_behind(rounds, workers: int, leader: float) -> bool:
    """Whether a cell's speed-up interval lies clearly below the leader's lower end (by more than
    a stable figure's spread: the test is repeated round after round, and a near tie must get its
    rounds): more rounds cannot bring it into contention, so it has the precision it needs."""
    if not rounds.reference:
        return False
    estimate = capacity.speedup(rounds.reference, rounds.cell, rounds.yardstick, workers)[0]
    return estimate.has_interval and estimate.high < leader * (1 - STABLE_SPREAD)


def _rounds_of(result: RunResult) -> Rounds:
    """The rounds a result's record holds: its passes and its references'."""
    reference = result.reference or {}
    return Rounds(list(result.warm_passes), list(reference.get(REFERENCE) or []), list(reference.get("yardstick") or []))


def _reference(plan: Plan, workload: str, samples: list, timeout: float) -> Driver:
    """Serial's fill of ``plan``, opened: the reference every cell of the group is paired with."""
    reference = create(REFERENCE, plan, 1, workload)
    reference.allocator = unforked_array  # fork-started cells must not inherit it
    driver = Driver(reference, after_phase=lambda _: samples.append(memory.snapshot(processes(reference))),
                    timeout=timeout)
    try:
        driver.open()
    except BaseException:
        driver.close()
        raise
    return driver


def one_line(error: BaseException) -> str:
    """An error as the one line a table shows: its first line, or its type when it has none."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def failed(case: Case, plan: Plan, reason: str, error: BaseException | None = None) -> RunResult:
    """The record of a cell that could not be measured; ``problems`` keeps the whole message."""
    detail = str(error).strip() if error is not None else ""
    if isinstance(error, kernels.KernelError) and error.__cause__ is not None:  # raised here, not in a worker
        detail += "\n" + "".join(traceback.format_exception(error.__cause__)).rstrip()
    return RunResult(strategy=case.strategy, workload=case.workload, rows=case.rows, cols=case.cols,
                     workers=case.workers, start_method=case.start_method, launcher=get(case.strategy).traits.launcher,
                     n_blocks=plan.n_blocks, block_rows=plan.block_rows, seed=plan.seed, dtype=plan.dtype, phases={},
                     total_seconds=0.0, pids=[], verified=False, problems=[detail or reason], error=reason,
                     nodes=case.nodes)


def case_of(result: RunResult) -> Case:
    """The cell a result measured (a journal's records back into cells)."""
    return Case(result.strategy, result.start_method, result.workers, result.rows, result.cols, result.workload,
                result.dtype, result.nodes)


def _run_cell(case: Case, plan: Plan, serial: Driver, repeat: int, budget: float, tick, digest: bool,
              behind=None, timeout: float | None = None, earlier: RunResult | None = None) -> RunResult:
    samples: list = []
    memory.release_freed()
    instance = create(case.strategy, plan, case.workers, case.workload, case.start_method, case.nodes)

    def sample(phase: str) -> None:
        # The parent also holds serial's matrix, kept alive beside the cell: not the cell's memory.
        held = serial.strategy.storage.nbytes
        samples.append([replace(m, rss=m.rss - held, pss=m.pss - held, uss=m.uss - held) if m.role == "parent"
                        else m for m in memory.snapshot(processes(instance))])

    driver = Driver(instance, after_phase=sample, timeout=timeout)
    with driver:
        driver.open()
        problems = driver.first_pass()
        return _measure(driver, serial, case, repeat, budget, samples, problems, tick, digest, behind, earlier)


def _measure(driver: Driver, serial: Driver | None, case: Case, repeat: int, budget: float, samples: list,
             problems: list[str], tick, digest: bool, behind=None, earlier: RunResult | None = None) -> RunResult:
    pids = list(driver.strategy.worker_ids)
    yardstick = Yardstick(driver.strategy.plan.nbytes, case.workers, case.workload)
    try:
        rounds = (interleave(driver, serial, yardstick, repeat, budget, on_round=tick, decided=behind,
                             earlier=_rounds_of(earlier) if earlier else None)
                  if repeat else None)
    finally:
        yardstick.close()
    sha = output_digest(driver.strategy) if digest else None
    if rounds is None:
        return result_of(driver, pids, problems, [], samples, digest=sha)
    reference = {REFERENCE: rounds.reference, "yardstick": rounds.yardstick, "yardstick_threads": case.workers,
                 "yardstick_kind": yardstick.kind,
                 "yardstick_bytes": yardstick_bytes(driver.strategy.plan.nbytes)}
    return result_of(driver, pids, problems or rounds.problems, rounds.cell, samples, reference=reference,
                     settled=rounds.settled, behind=rounds.decided, digest=sha)
