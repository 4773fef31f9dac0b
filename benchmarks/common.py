"""What every shmbench asv benchmark shares: the grid, and skipping what cannot run here.

Benchmarks only call the installed package: worker code must never live here, because asv
imports this suite through its own importer and spawned workers could not find it.
"""
from __future__ import annotations

import atexit
import os
from collections.abc import Callable

from shmbench import DEFAULT_START_METHOD, START_METHODS, Plan, PreflightError, create
from shmbench._system.deadline import FIRST_LIMIT
from shmbench.sizes import parse_size
from shmbench.strategies import get

try:
    from shmbench.runner import Driver, check
except ImportError:  # a commit older than the phase driver: the same phases, driven here
    from shmbench.runner import check

    class Driver:
        def __init__(self, strategy, prefault=None):
            self.strategy = strategy
            self.prefault = getattr(strategy, "prefault_pays", lambda: False)() if prefault is None else prefault

        def open(self):
            self.strategy.allocate()
            self.strategy.start()

        def first_pass(self, verify=True):
            self.strategy.prepare()
            if self.prefault:
                self.strategy.touch()
            self.fill_and_collect()
            return check(self.strategy) if verify else []

        def fill_and_collect(self):
            self.strategy.fill()
            self.strategy.collect()

        def check(self):
            return check(self.strategy)

        def close(self):
            self.strategy.close()

        def one_shot(self):
            try:
                self.open()
                self.first_pass(verify=False)
            finally:
                self.close()

#: asv's limit on a benchmark (past it asv kills the cell's process), and the one each phase of a
#: driver keeps inside it: under asv's, so that a hung cell fails naming the workers still busy.
TIMEOUT = FIRST_LIMIT
PHASE_TIMEOUT = TIMEOUT / 4

#: Comma-separated sizes (ROWSxCOLS or bytes such as 25GiB) replacing the default grid.
SIZES_ENV = "SHMBENCH_ASV_SIZES"
#: The two ends: 8 MiB, where the fixed costs (dispatch, a runtime's round trip) show, and 1 GiB,
#: the reference case. 128 MiB between them cost a third of the grid's 18.7 minutes (asv starts a
#: process per cell) and told nothing the two ends do not; ask for it with SHMBENCH_ASV_SIZES.
DEFAULT_SIZES = "8MiB,1GiB"


def _listed(name: str, default: str, check) -> list[str]:
    """The comma-separated values of environment variable ``name`` (else ``default``), each passed
    through ``check``, whose ``ValueError`` is reported with the variable's name."""
    values = [v.strip() for v in os.environ.get(name, default).split(",") if v.strip()]
    for value in values:
        try:
            check(value)
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
    return values


def _sizes() -> list[str]:
    sizes = _listed(SIZES_ENV, DEFAULT_SIZES, parse_size)
    if not sizes:
        raise ValueError(f"{SIZES_ENV} is empty; give sizes such as {DEFAULT_SIZES}")
    return sizes


SIZES = _sizes()

#: Comma-separated dtypes for ``bench_fill.Dtypes`` (float64 is ``Fill``'s own).
DTYPES_ENV = "SHMBENCH_ASV_DTYPES"


def _dtypes() -> list[str]:
    from shmbench.plan import check_dtype

    return _listed(DTYPES_ENV, "", check_dtype)


DTYPES = _dtypes()
#: A kernel of the user's (``module:function``, or an absolute ``/path/file.py:function``) for
#: ``bench_fill.Kernel``, in float64 and the dtypes of ``SHMBENCH_ASV_DTYPES``.
WORKLOAD_ENV = "SHMBENCH_ASV_WORKLOAD"
KERNEL = os.environ.get(WORKLOAD_ENV, "").strip()
# Fixed here, not read from the package: asv runs this suite against older commits too, and a
# parameter grid that changed with the installed version would shift every cell's index.
# New strategies go at the end, for the same reason.
STRATEGIES = ["serial", "threads", "mp_array", "shared_memory", "pickled", "book",
              "memmap", "memmap_disk", "joblib", "ray", "mpi", "dask", "mpi_shm"]
#: ``bench_nodes``: the node counts, and the one size its cells fill.
NODES = [1, 2]
NODES_SIZE = os.environ.get("SHMBENCH_ASV_NODES_SIZE", "128MiB")
#: Comma-separated worker counts; by default 1, 2 and the core count, as ``shmbench run`` (workers
#: beyond the cores only oversubscribe: ask for them here).
WORKERS_ENV = "SHMBENCH_ASV_WORKERS"


def _workers() -> list[int]:
    def whole(text: str) -> None:
        if not text.isdigit() or int(text) < 1:
            raise ValueError(f"worker counts are whole numbers from 1, got {text!r}")

    return sorted({int(w) for w in _listed(WORKERS_ENV, "", whole)} or {1, 2, os.cpu_count() or 1})


WORKERS = _workers()
METHODS = [m for m in START_METHODS]
WORKLOADS = ["random", "pid", "rowsum"]
#: The workloads ``Fill`` times (the others are skipped cells, so the grid keeps its shape): by
#: default not ``pid``, which the gate times for the strategies it guards; with it the default
#: grid took 940 s here, over its 15 minutes.
FILL_WORKLOADS_ENV = "SHMBENCH_ASV_WORKLOADS"


def _fill_workloads() -> list[str]:
    def known(text: str) -> None:
        if text not in WORKLOADS:
            raise ValueError(f"workloads are among {', '.join(WORKLOADS)}, got {text!r}")

    return _listed(FILL_WORKLOADS_ENV, "random,rowsum", known)


FILL_WORKLOADS = _fill_workloads()


def traits(cls) -> tuple[bool, tuple[str, ...]]:
    """(has workers, the start methods it accepts) of a strategy class: read from its ``traits``,
    or, for commits older than traits, from the flags they had. The one place that knows both."""
    if hasattr(cls, "traits"):
        return cls.traits.parallel, tuple(cls.traits.start_methods)
    fixed = getattr(cls, "fixed_start_method", None)
    methods = () if not getattr(cls, "uses_processes", True) else (fixed,) if fixed else tuple(START_METHODS)
    return getattr(cls, "parallel", cls.name != "serial"), tuple(m for m in methods if m in START_METHODS)


def runnable(strategy: str, size: str, workers: int, workload: str = "random",
             start_method: str | None = None, dtype: str = "float64", nodes: int = 1):
    """A strategy object for this cell, or ``NotImplementedError`` (asv's skip) saying why not."""
    try:
        cls = get(strategy)
    except ValueError:
        raise NotImplementedError(f"{strategy} is not in this version of shmbench") from None
    reason = cls.unavailable_reason()
    if reason:
        raise NotImplementedError(f"{strategy} is unavailable: {reason}")
    parallel, methods = traits(cls)
    if not parallel and (workers != 1 or start_method not in (None, DEFAULT_START_METHOD)):
        raise NotImplementedError(f"{strategy} has no workers to count or start: it runs once per size")
    if start_method is not None and methods and start_method not in methods:
        raise NotImplementedError(f"{strategy} runs under {', '.join(methods)} only")
    if start_method is not None and not methods:
        # Threads, and pools that start workers their own way (loky, Ray, mpiexec), sit in the default cell.
        if start_method != DEFAULT_START_METHOD:
            raise NotImplementedError(f"{strategy} has no start method: it runs in the "
                                      f"start_method={DEFAULT_START_METHOD} cells")
        start_method = None
    if dtype == "float64":
        plan = Plan(*parse_size(size))
    else:
        try:
            plan = Plan(*parse_size(size, dtype), dtype=dtype)
        except TypeError:  # a commit from before dtypes
            raise NotImplementedError("this version of shmbench has float64 matrices only") from None
    if nodes > 1 and not getattr(getattr(cls, "traits", None), "nodes", ""):
        raise NotImplementedError(f"{strategy} runs on one node" if hasattr(cls.traits, "nodes") else
                                  "this version of shmbench runs on one node")
    try:
        instance = create(strategy, plan, workers, workload, start_method, *([nodes] if nodes > 1 else []))
    except ValueError as error:  # e.g. a pid workload in a dtype that cannot hold one
        raise NotImplementedError(str(error)) from None
    try:
        instance.check_fits()
    except PreflightError as error:
        raise NotImplementedError(f"does not fit this machine: {error}") from None
    return instance


_LIVE: dict[tuple, Driver] = {}


def live(key: tuple, make: Callable[[], Driver]) -> Driver:
    """The driver of cell ``key``, opened once (with its first pass) and kept for every sample.

    asv re-runs ``setup`` before each sample; restarting the workers each time (Ray takes
    seconds) was most of the default grid's 45 minutes. asv runs each cell in a process of its
    own, so one live driver per process is one cell's workers at a time; the process closes it
    at exit, and its workers watch the parent in any case.
    """
    if key not in _LIVE:
        for old in list(_LIVE):
            _LIVE.pop(old).close()
        driver = make()
        try:
            driver.open()
            problems = driver.first_pass()
        except BaseException:
            driver.close()
            raise
        if problems:
            driver.close()
            raise AssertionError(f"{key} did not verify: {'; '.join(problems)}")
        _LIVE[key] = driver
        # Registered after the runtime started, so it runs before the runtime's own exit handlers
        # (Ray shuts itself down at exit): the driver closes its workers while the runtime is whole.
        atexit.unregister(_close_live)
        atexit.register(_close_live)
    return _LIVE[key]


_VERIFIED: set[tuple] = set()


def first_sample_done(key: tuple) -> bool:
    return key in _VERIFIED


def verify_first_sample(driver: Driver | None, key: tuple | None) -> None:
    """Verify what the cell's first timed sample wrote (its first pass was verified when it opened);
    later samples run the same code on the same workers, and a 1 GiB check each time was minutes of
    the grid."""
    if driver is None or key in _VERIFIED:
        return
    problems = driver.check()
    if problems:
        raise AssertionError(f"{key} did not verify: {'; '.join(problems)}")
    _VERIFIED.add(key)


def _close_live() -> None:
    for key in list(_LIVE):
        _LIVE.pop(key).close()


class HeavyBenchmark:
    """Timing settings for benchmarks whose one call fills a whole matrix: one call a sample,
    a few samples, no warm-up (setup already ran a full pass), one round of processes."""

    number = 1
    repeat = (2, 2, 20.0)  # two samples a cell: the full grid is for studies; the gate has its own
    rounds = 1
    warmup_time = 0.0
    timeout = TIMEOUT
