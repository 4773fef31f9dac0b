"""Filling the matrix: warm steady state and what a one-shot script pays, serial beside parallel.

``serial`` is a value of the ``strategy`` parameter, so each graph shows the parallel
strategies next to their serial baseline.
"""
from __future__ import annotations

from shmbench.runner import check

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
        self.strategy = None  # asv calls teardown even after setup skipped the cell
        self.strategy = runnable(strategy, size, workers, workload)
        try:
            s = self.strategy
            s.allocate()
            s.start()
            s.prepare()
            s.fill()
            s.collect()
            s.prepare()
        except BaseException:
            self.strategy.close()
            raise

    def time_fill(self, strategy, size, workers, workload):
        self.strategy.fill()
        self.strategy.collect()

    def teardown(self, strategy, size, workers, workload):
        if self.strategy is None:
            return
        try:
            problems = check(self.strategy)
        finally:
            self.strategy.close()
            self.strategy = None
        if problems:
            raise AssertionError(f"{strategy} did not verify: {'; '.join(problems)}")


class Cold(HeavyBenchmark):
    """``time_cold``: allocate, start workers, (prefault,) fill, collect and close: a one-shot script.

    Not verified inside the timing; the same cells run verified in ``bench_phases.Phases``.
    """

    params = [STRATEGIES, SIZES, WORKERS, METHODS]
    param_names = ["strategy", "size", "workers", "start_method"]

    def setup(self, strategy, size, workers, start_method):
        runnable(strategy, size, workers, "random", start_method)  # skips only; allocates nothing

    def time_cold(self, strategy, size, workers, start_method):
        with runnable(strategy, size, workers, "random", start_method) as s:
            s.allocate()
            s.start()
            s.prepare()
            if getattr(s, "prefault_pays", lambda: False)():  # as shmbench.run does by default
                s.touch()
            s.fill()
            s.collect()
