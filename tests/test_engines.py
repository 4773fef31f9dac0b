"""Each engine contender as its users would run it: idle MPI ranks that do not spin, and every
record saying how its engine was configured."""
from __future__ import annotations

import time

import psutil
import pytest

import shmbench
from shmbench import Plan, create
from shmbench.runner import Driver


@pytest.mark.parametrize("strategy", ["mpi", "mpi_shm"])
def test_idle_mpi_ranks_sleep_instead_of_spinning(strategy):
    # MPICH's blocking collectives poll: before, each rank waiting for the next command used a
    # whole core (1.0 s of CPU per second idle), taking it from whatever was timed beside it.
    with Driver(create(strategy, Plan(512, 4096), workers=3)) as driver:
        driver.open()
        assert driver.first_pass() == []
        ranks = [psutil.Process(pid) for pid in driver.strategy.worker_ids]
        before = [sum(rank.cpu_times()[:2]) for rank in ranks]
        start = time.monotonic()
        time.sleep(1.0)
        idle = time.monotonic() - start
        used = [sum(rank.cpu_times()[:2]) - b for rank, b in zip(ranks, before)]
        # A few per cent of a core at most, each: the sleeps between tests of the barrier.
        assert max(used) < 0.05 * idle, used
        seconds, problems = driver.warm_pass()  # and they still answer the next command
        assert problems == []
