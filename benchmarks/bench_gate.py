"""The regression gate: a cell's warm fill as a ratio to a raw-numpy yardstick timed beside it.

A slow spell of the machine slows the cell and the yardstick alike and cancels in their ratio,
while a change to shmbench's own code moves only the cell (the yardstick is plain numpy). asv keeps
samples, and runs its statistical test, only for ``time_`` benchmarks; so the ratio is reported as
a time, by a ``timer`` that is a clock advancing by each sample's ratio: a value of 1.02 "seconds"
here is a cell 2% slower than its yardstick. The cells are the ones that matter for tracking:
serial, threads, mp_array and shared_memory, one and two workers, random and pid, at one mid size.
"""
from __future__ import annotations

import os
import time

from .common import PHASE_TIMEOUT, TIMEOUT, Driver, live, runnable

#: The gate's one size (``SHMBENCH_GATE_SIZE`` changes it): large enough that a pass is tens of
#: milliseconds, small enough that two commits' cells run in a few minutes.
GATE_SIZE = os.environ.get("SHMBENCH_GATE_SIZE", "256MiB")


class _RatioClock:
    """A clock that moves only when a sample tells it how long the cell took per yardstick."""

    def __init__(self) -> None:
        self.now = 0.0
        self.samples = 0

    def __call__(self) -> float:
        return self.now

    def advance(self, ratio: float) -> None:
        self.now += ratio
        self.samples += 1


def pin_to_one_cpu() -> None:
    """Keep a one-worker cell, its worker and its yardstick on one CPU (workers inherit it): a
    memory-bound pass moved by 10% with the CPU it ran on here, so a pair split across two CPUs
    compared the CPUs as much as the code (pinned, pid's ratio moved by 1% between processes)."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


_CLOCK = _RatioClock()
_YARDSTICKS: dict[tuple, object] = {}  # one per process (asv runs each cell in its own)


class Gate:
    params = [["serial", "threads", "mp_array", "shared_memory"], [GATE_SIZE], [1, 2], ["random", "pid"]]
    param_names = ["strategy", "size", "workers", "workload"]
    number = 1
    repeat = (10, 20, 8.0)  # per round; the gate runs two rounds of processes per commit
    rounds = 1
    warmup_time = 0.0
    timeout = TIMEOUT
    timer = _CLOCK

    def setup(self, strategy, size, workers, workload):
        self.driver = None  # asv calls teardown even after setup skipped the cell
        try:
            from shmbench.paired import Yardstick
        except ImportError:
            raise NotImplementedError("this commit has no yardstick to gate against") from None
        runnable(strategy, size, workers, workload)  # skips only
        if workers == 1:
            pin_to_one_cpu()
        self.driver = live(("gate", strategy, size, workers, workload),
                           lambda: Driver(runnable(strategy, size, workers, workload), timeout=PHASE_TIMEOUT))
        key = (workers, workload)
        if key not in _YARDSTICKS:
            _YARDSTICKS[key] = Yardstick(self.driver.strategy.plan.nbytes, workers, workload)
        self.yardstick = _YARDSTICKS[key]
        self.driver.strategy.prepare()

    def time_fill_over_yardstick(self, strategy, size, workers, workload):
        """Warm fill+collect over the yardstick's pass, back to back, in alternating order (a ratio)."""
        cell_first = _CLOCK.samples % 2 == 0  # a machine speeding up or slowing down favours neither
        if not cell_first:
            yard = self.yardstick.run()
        start = time.perf_counter()
        self.driver.fill_and_collect()
        seconds = time.perf_counter() - start
        if cell_first:
            yard = self.yardstick.run()
        _CLOCK.advance(seconds / yard)

    def teardown(self, strategy, size, workers, workload):
        problems = self.driver.check() if self.driver is not None else []
        if problems:
            raise AssertionError(f"{strategy} did not verify: {'; '.join(problems)}")
