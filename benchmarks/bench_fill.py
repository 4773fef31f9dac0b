"""Filling the matrix: warm steady state and what a one-shot script pays, serial beside parallel.

``serial`` is a value of the ``strategy`` parameter, so each graph shows the parallel
strategies next to their serial baseline. The phases are driven by ``shmbench.Driver``, as in
``shmbench run``; the timed bodies hold the phases and nothing else.
"""
from __future__ import annotations

from .common import (DTYPES, DTYPES_ENV, FILL_WORKLOADS, FILL_WORKLOADS_ENV, KERNEL, METHODS, PHASE_TIMEOUT, SIZES,
                     STRATEGIES, WORKERS, WORKLOAD_ENV, WORKLOADS, Driver, HeavyBenchmark, first_sample_done, live,
                     runnable, verify_first_sample)

READ_ONLY = {"rowsum"}  # fixed here: older commits define no such set


class Fill(HeavyBenchmark):
    """``time_fill``: one fill (and collect) with workers started and every page already touched.

    The workers live for the whole cell (``live``): each sample resets the matrix for the workload
    in ``setup``, times one fill, and ``teardown`` verifies what it wrote.
    """

    params = [STRATEGIES, SIZES, WORKERS, WORKLOADS]
    param_names = ["strategy", "size", "workers", "workload"]

    def setup(self, strategy, size, workers, workload):
        self.driver = None  # asv calls teardown even after setup skipped the cell
        if workload not in FILL_WORKLOADS:
            raise NotImplementedError(f"{workload} is not in {FILL_WORKLOADS_ENV} ({','.join(FILL_WORKLOADS)})")
        runnable(strategy, size, workers, workload)  # skips only; allocates nothing
        self.key = ("fill", strategy, size, workers, workload)
        self.driver = live(self.key, lambda: Driver(runnable(strategy, size, workers, workload), timeout=PHASE_TIMEOUT))
        if workload not in READ_ONLY or not first_sample_done(self.key):  # an input only read stays as it is
            self.driver.strategy.prepare()

    def time_fill(self, strategy, size, workers, workload):
        self.driver.fill_and_collect()

    def teardown(self, strategy, size, workers, workload):
        verify_first_sample(self.driver, getattr(self, "key", None))


class Cold(HeavyBenchmark):
    """``time_cold``: allocate, start workers, (prefault,) fill, collect and close: a one-shot script.

    Not verified inside the timing; the same cells run verified in ``bench_phases.Phases``. The
    strategy object (registry lookup, memory preflight) is made in ``setup``, outside the timing.
    """

    params = [STRATEGIES, SIZES, WORKERS, METHODS]
    param_names = ["strategy", "size", "workers", "start_method"]
    # One sample a cell: each is a whole start of a runtime (seconds for Ray at 1 GiB), and the
    # default grid must stay within its 15 minutes; a one-shot script is one sample by nature.
    repeat = (1, 1, 20.0)

    def setup(self, strategy, size, workers, start_method):
        self.driver = Driver(runnable(strategy, size, workers, "random", start_method), timeout=PHASE_TIMEOUT)

    def time_cold(self, strategy, size, workers, start_method):
        self.driver.one_shot()


class Dtypes(HeavyBenchmark):
    """``time_fill`` of other element types: the ``random`` fill (each dtype's own distribution) of
    the dtypes in ``SHMBENCH_ASV_DTYPES`` (e.g. ``float32,uint8``), warm, as in ``Fill``. Without
    it every cell is skipped: float64 is ``Fill``'s, and the default grid stays as it is."""

    # Without dtypes asked for, one cell that says how to ask (every cell costs a process).
    params = [STRATEGIES, SIZES, WORKERS, DTYPES] if DTYPES else [["serial"], SIZES[:1], [1], ["float64"]]
    param_names = ["strategy", "size", "workers", "dtype"]

    def setup(self, strategy, size, workers, dtype):
        self.driver = None
        if dtype == "float64":
            raise NotImplementedError(f"float64 is Fill's; set {DTYPES_ENV} to time other dtypes")
        runnable(strategy, size, workers, "random", dtype=dtype)
        self.key = ("dtype", strategy, size, workers, dtype)
        self.driver = live(self.key, lambda: Driver(runnable(strategy, size, workers, "random", dtype=dtype),
                                                    timeout=PHASE_TIMEOUT))
        self.driver.strategy.prepare()

    def time_fill(self, strategy, size, workers, dtype):
        self.driver.fill_and_collect()

    def teardown(self, strategy, size, workers, dtype):
        verify_first_sample(self.driver, getattr(self, "key", None))


class Kernel(HeavyBenchmark):
    """``time_fill`` of a kernel of yours (``SHMBENCH_ASV_WORKLOAD=module:function``, or an absolute
    ``/path/file.py:function``) in float64 and the dtypes of ``SHMBENCH_ASV_DTYPES``, warm, as in
    ``Fill``: a team tracks what sharing costs its own kernel over its history. Without it, one
    skipped cell that says how to ask."""

    params = ([STRATEGIES, SIZES, WORKERS, ["float64"] + [d for d in DTYPES if d != "float64"]] if KERNEL else
              [["serial"], SIZES[:1], [1], ["float64"]])
    param_names = ["strategy", "size", "workers", "dtype"]

    def setup(self, strategy, size, workers, dtype):
        self.driver = None
        if not KERNEL:
            raise NotImplementedError(f"set {WORKLOAD_ENV}=module:function to time a kernel of yours")
        runnable(strategy, size, workers, KERNEL, dtype=dtype)
        self.key = ("kernel", strategy, size, workers, dtype)
        self.driver = live(self.key, lambda: Driver(runnable(strategy, size, workers, KERNEL, dtype=dtype),
                                                    timeout=PHASE_TIMEOUT))
        self.driver.strategy.prepare()

    def time_fill(self, strategy, size, workers, dtype):
        self.driver.fill_and_collect()

    def teardown(self, strategy, size, workers, dtype):
        verify_first_sample(self.driver, getattr(self, "key", None))
