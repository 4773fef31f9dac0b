"""Filling the matrix: warm steady state and what a one-shot script pays, serial beside parallel.

``serial`` is a value of the ``strategy`` parameter, so each graph shows the parallel
strategies next to their serial baseline. The phases are driven by ``shmbench.Driver``, as in
``shmbench run``; the timed bodies hold the phases and nothing else.
"""
from __future__ import annotations

from shmbench.runner import Driver, check

from .common import METHODS, SIZES, STRATEGIES, WORKERS, WORKLOADS, HeavyBenchmark, runnable


class Fill(HeavyBenchmark):
    """``time_fill``: one fill (and collect) with workers started and every page already touched.

    asv re-runs ``setup`` before each sample, so each sample gets fresh workers that have done
    one full pass (first-touch faults paid) and a matrix reset for the workload; ``teardown``
    verifies the matrix and stops the workers.
    """

    params = [STRATEGIES, SIZES, WORKERS, WORKLOADS]
    param_names = ["strategy", "size", "workers", "workload"]

    def setup(self, strategy, size, workers, workload):
        self.driver = None  # asv calls teardown even after setup skipped the cell
        driver = Driver(runnable(strategy, size, workers, workload))
        try:
            driver.open()
            driver.first_pass(verify=False)
            driver.strategy.prepare()
        except BaseException:
            driver.close()
            raise
        self.driver = driver

    def time_fill(self, strategy, size, workers, workload):
        self.driver.fill_and_collect()

    def teardown(self, strategy, size, workers, workload):
        if self.driver is None:
            return
        try:
            problems = check(self.driver.strategy)
        finally:
            self.driver.close()
            self.driver = None
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
