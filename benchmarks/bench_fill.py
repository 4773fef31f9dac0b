"""Filling the matrix: warm steady state and what a one-shot script pays, serial beside parallel.

``serial`` is a value of the ``strategy`` parameter, so each graph shows the parallel
strategies next to their serial baseline. The phases are driven by ``shmbench.Driver``, as in
``shmbench run``; the timed bodies hold the phases and nothing else.
"""
from __future__ import annotations

from .common import (DTYPES, DTYPES_ENV, METHODS, SIZES, STRATEGIES, WORKERS, WORKLOADS, Driver, HeavyBenchmark,
                     live, runnable)


class Fill(HeavyBenchmark):
    """``time_fill``: one fill (and collect) with workers started and every page already touched.

    The workers live for the whole cell (``live``): each sample resets the matrix for the workload
    in ``setup``, times one fill, and ``teardown`` verifies what it wrote.
    """

    params = [STRATEGIES, SIZES, WORKERS, WORKLOADS]
    param_names = ["strategy", "size", "workers", "workload"]

    def setup(self, strategy, size, workers, workload):
        self.driver = None  # asv calls teardown even after setup skipped the cell
        runnable(strategy, size, workers, workload)  # skips only; allocates nothing
        self.driver = live(("fill", strategy, size, workers, workload),
                           lambda: Driver(runnable(strategy, size, workers, workload)))
        self.driver.strategy.prepare()

    def time_fill(self, strategy, size, workers, workload):
        self.driver.fill_and_collect()

    def teardown(self, strategy, size, workers, workload):
        if self.driver is None:
            return
        problems = self.driver.check()
        if problems:
            raise AssertionError(f"{strategy} did not verify: {'; '.join(problems)}")


class Cold(HeavyBenchmark):
    """``time_cold``: allocate, start workers, (prefault,) fill, collect and close: a one-shot script.

    Not verified inside the timing; the same cells run verified in ``bench_phases.Phases``. The
    strategy object (registry lookup, memory preflight) is made in ``setup``, outside the timing.
    """

    params = [STRATEGIES, SIZES, WORKERS, METHODS]
    param_names = ["strategy", "size", "workers", "start_method"]

    def setup(self, strategy, size, workers, start_method):
        self.driver = Driver(runnable(strategy, size, workers, "random", start_method))

    def time_cold(self, strategy, size, workers, start_method):
        self.driver.one_shot()


class Dtypes(HeavyBenchmark):
    """``time_fill`` of other element types: the ``random`` fill (each dtype's own distribution) of
    the dtypes in ``SHMBENCH_ASV_DTYPES`` (e.g. ``float32,uint8``), warm, as in ``Fill``. Without
    it every cell is skipped: float64 is ``Fill``'s, and the default grid stays as it is."""

    params = [STRATEGIES, SIZES, WORKERS, DTYPES]
    param_names = ["strategy", "size", "workers", "dtype"]

    def setup(self, strategy, size, workers, dtype):
        self.driver = None
        if dtype == "float64":
            raise NotImplementedError(f"float64 is Fill's; set {DTYPES_ENV} to time other dtypes")
        runnable(strategy, size, workers, "random", dtype=dtype)
        self.driver = live(("dtype", strategy, size, workers, dtype),
                           lambda: Driver(runnable(strategy, size, workers, "random", dtype=dtype)))
        self.driver.strategy.prepare()

    def time_fill(self, strategy, size, workers, dtype):
        self.driver.fill_and_collect()

    def teardown(self, strategy, size, workers, dtype):
        if self.driver is not None and (problems := self.driver.check()):
            raise AssertionError(f"{strategy} ({dtype}) did not verify: {'; '.join(problems)}")
