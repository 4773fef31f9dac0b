"""The phase driver, and ``run``: one strategy through all its phases, timed, measured and verified.

``Driver`` is the one place the order of the phases is written down; ``shmbench.run``, the CLI and
the asv benchmarks all go through it, so they time the same things the same way.
"""
from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from contextlib import contextmanager

from ._system import deadline, memory, shortage
from ._system.pages import minor_faults
from .plan import Plan
from .phases import PHASES, WARM, total
from .result import RunResult
from .strategies import Strategy, create
from .runtimes.base import WORKER_BLAS_THREADS, WorkerDiedError
from .verify import reference, verify


def check(strategy: Strategy) -> list[str]:
    """Every problem with the strategy's finished matrix; empty when it verifies."""
    strategy.reveal()
    problems = verify(strategy.matrix, strategy.plan, strategy.workload, strategy.worker_ids,
                      every_worker=strategy.traits.every_worker_gets_work, row_sums=strategy.row_sums,
                      source=strategy.input)
    if strategy.traits.shares_memory and not strategy.is_shared_view():
        problems.append("the matrix the parent reads is a copy, not the shared buffer")
    return problems


def processes(strategy: Strategy) -> list[tuple[int, str]]:
    """(pid, role) of the parent, of every worker process and, for strategies with processes, of
    every other process the run started or depends on (``runtime: raylet``, ``runtime: mpiexec``...)."""
    # joblib with one worker runs in the parent, which is already counted.
    me = os.getpid()
    # A worker of a cluster elsewhere has a pid of another process table: not counted here.
    slots = [(i, pid) for i, pid in enumerate(strategy.worker_ids) if pid != me and strategy.on_this_host(i)] \
        if strategy.traits.processes else []
    workers = [pid for _, pid in slots]
    on = (lambda slot: f" (node {strategy.node_of(slot)})") if strategy.nodes > 1 else (lambda slot: "")
    out = [(me, "parent")] + [(pid, f"worker {i}{on(i)}") for i, pid in slots]
    if strategy.traits.processes:
        out += memory.runtime_processes(me, workers)
    return out


class Driver:
    """Drives one strategy through its phases: ``open`` (allocate, start), a cold ``first_pass``
    (prepare, touch, fill, collect, verify), any number of ``warm_pass``, and ``close``.

    ``phases`` holds the seconds of each phase of the first pass; ``faults`` the minor page faults
    of the parent and each worker in touch, fill, and the last warm fill. ``after_phase(name)`` is
    called after the first pass's fill, collect and verify, outside the timing (memory samples).
    """

    def __init__(self, strategy: Strategy, prefault: bool | None = None,
                 after_phase: Callable[[str], None] | None = None, timeout: float | None = None) -> None:
        self.strategy = strategy
        #: Seconds each phase may take (``deadline.TimeLimit`` past them); None: no limit.
        self.timeout = timeout
        self.prefault = strategy.prefault_pays() if prefault is None else bool(prefault)
        self.phases = dict.fromkeys(PHASES, 0.0)
        self.faults: dict[str, dict[str, int]] = {}
        self._after = after_phase or (lambda name: None)
        self._witness = shortage.Witness(strategy.storage_directory())  # memory before any worker

    @contextmanager
    def _phase(self, timings: dict[str, float], name: str, faults: str | None = None):
        self.strategy.last_faults = {}
        before = minor_faults()
        start = time.perf_counter()
        try:
            with deadline.limit(self.timeout, f"{self.strategy.name}'s {name}"):
                yield
        except deadline.TimeLimit as error:
            busy = self.strategy.busy()
            raise deadline.TimeLimit(f"{error}" + (f"; still busy: {', '.join(busy)}" if busy else "")) from None
        except WorkerDiedError as error:  # named the same way whatever runtime saw the death
            error.because(self._witness.cause(error.code))
            raise
        finally:
            timings[name] += time.perf_counter() - start
        if faults is not None:
            self.faults[faults] = {"parent": minor_faults() - before, **self.strategy.last_faults}

    def phase(self, name: str) -> None:
        """Run one phase of the first pass by its name (a step-by-step demonstration), timed."""
        with self._phase(self.phases, name):
            getattr(self.strategy, name)()

    def open(self) -> None:
        self.phase("allocate")
        self.phase("start")

    def first_pass(self, verify: bool = True) -> list[str]:
        """The cold pass of freshly started workers; returns the problems found (if verified)."""
        return self._pass(self.phases, first=True, verify=verify)

    def warm_pass(self, verify: bool = True) -> tuple[float, list[str]]:
        """One more pass with the same workers: (seconds of the warm phases, problems found)."""
        timings = dict.fromkeys(PHASES, 0.0)
        problems = self._pass(timings, first=False, verify=verify)
        return total(timings, WARM), problems

    def check(self) -> list[str]:
        """Verify what the last pass left (untimed)."""
        return check(self.strategy)

    def fill_and_collect(self) -> None:
        """The steady-state work alone, for timers that time it themselves (asv)."""
        self.strategy.fill()
        self.strategy.internode()
        self.strategy.collect()

    def _pass(self, timings: dict[str, float], first: bool, verify: bool) -> list[str]:
        s = self.strategy
        with self._phase(timings, "prepare"):
            s.prepare()
        if first and self.prefault:
            with self._phase(timings, "touch", "touch"):
                s.touch()
        with self._phase(timings, "fill", "fill" if first else "warm_fill"):
            s.fill()
        if first:
            self._after("fill")
        with self._phase(timings, "internode"):
            s.internode()
        with self._phase(timings, "collect"):
            s.collect()
        if first:
            self._after("collect")
        if not verify:
            return []
        with self._phase(timings, "verify"):
            problems = check(s)
        if first:  # the parent has read every page now: a file no worker keeps mapped (joblib) shows too
            self._after("verify")
        return problems

    def close(self) -> None:
        with self._phase(self.phases, "close"):
            self.strategy.close()

    def one_shot(self) -> None:
        """What a one-shot script pays: open, one unverified pass, close."""
        try:
            self.open()
            self.first_pass(verify=False)
        finally:
            self.close()

    def __enter__(self) -> Driver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run(strategy: str, rows: int, cols: int, workers: int = 1, workload: str | Callable = "random", seed: int = 0,
        start_method: str | None = None, block_rows: int | None = None, digest: bool = False,
        repeat: int = 0, memory_usage: bool = True, force: bool = False,
        prefault: bool | None = None, dtype: str = "float64", nodes: int = 1,
        timeout: float | None = deadline.FIRST_LIMIT) -> RunResult:
    """Fill a ``rows`` x ``cols`` matrix of ``dtype`` (float64, float32, int64, int32, uint8,
    complex128) with ``strategy`` and verify it.

    ``workload`` is a built-in name (``WORKLOADS``), or a kernel of yours: a module-level function,
    or its name as ``module:function`` or ``path/file.py:function`` (``shmbench.kernels``).

    ``nodes`` splits the workers across that many nodes, for the strategies that cross nodes
    (``Traits.nodes``).

    ``repeat`` more passes follow the first with the same workers (warm timings). With
    ``memory_usage`` the PSS of the parent and every worker is read after the fill and the
    collect, outside the timed phases. ``prefault`` maps the pages before the first fill (the
    ``touch`` phase); ``None`` does it where it pays (``Strategy.prefault_pays``). Each phase may
    take ``timeout`` seconds (None: no limit), past which ``deadline.TimeLimit`` is raised, naming
    the workers still busy, and the workers are stopped; it is kept from the main thread only.
    Raises ``ValueError`` on bad input, and ``PreflightError`` (a ``ValueError``) when the run
    cannot fit in memory unless ``force``, both before allocating anything.
    """
    plan = Plan(rows, cols, seed, block_rows, dtype)
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 0:
        raise ValueError(f"repeat must be a non-negative integer, got {repeat!r}")
    if timeout is not None and not (isinstance(timeout, (int, float)) and 0 < timeout < float("inf")):
        raise ValueError(f"timeout must be a finite number of seconds above 0, or None, got {timeout!r}")
    instance = create(strategy, plan, workers, workload, start_method, nodes)
    instance.check_fits(force)
    samples: list[list[memory.ProcessMemory]] = []
    warm: list[float] = []
    failed_again = 0
    pids: list[int] = []
    sha = None

    def sample(phase: str) -> None:
        if memory_usage:
            samples.append(memory.snapshot(processes(instance)))

    driver = Driver(instance, prefault, sample, timeout)
    with driver:
        driver.open()
        pids = list(instance.worker_ids)
        problems = driver.first_pass()
        for _ in range(repeat):
            seconds, found = driver.warm_pass()
            warm.append(seconds)
            if found and not problems:
                problems = found
            elif found:
                failed_again += 1
        if failed_again:
            problems.append(f"{failed_again} later pass(es) failed verification too")
        if digest:
            sha = output_digest(instance)
    return result_of(driver, pids, problems, warm, samples, digest=sha)


def output_digest(strategy: Strategy) -> str:
    """sha256 of what the last pass produced: the matrix, or the row sums of a read-only workload."""
    return hashlib.sha256(memoryview(strategy.output).cast("B")).hexdigest()


def result_of(driver: Driver, pids: list[int], problems: list[str], warm: list[float],
              samples: list[list[memory.ProcessMemory]], **extra) -> RunResult:
    """The ``RunResult`` of a driven strategy, with its memory peak among ``samples``."""
    instance, plan = driver.strategy, driver.strategy.plan
    peak = max(samples, key=memory.total_pss) if samples else []
    return RunResult(
        strategy=instance.name, workload=instance.workload, rows=plan.rows, cols=plan.cols,
        workers=instance.workers, start_method=instance.start_method, launcher=instance.traits.launcher,
        n_blocks=plan.n_blocks, block_rows=plan.block_rows, seed=plan.seed, dtype=plan.dtype, phases=driver.phases,
        total_seconds=sum(driver.phases.values()), pids=pids, verified=not problems, problems=problems,
        warm_passes=warm, peak_total_pss_bytes=memory.total_pss(peak) if samples else None,
        memory=[m.as_dict() for m in peak], prefault=driver.prefault, minor_faults=driver.faults,
        nodes=instance.nodes, internode_bytes=instance.internode_bytes, internode_bytes_how=instance.internode_bytes_how,
        internode_wire_bytes=instance.internode_wire_bytes,
        settings=instance.settings,
        blas_threads_per_worker=WORKER_BLAS_THREADS if instance.traits.processes else None,
        verified_by=reference(plan, instance.workload).judged_by if instance.work.is_kernel else None, **extra)
