"""The drill's slowed worker core does more work for the same output, and says so when it cannot."""
from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest

import shmbench.work
from shmbench import gate
from shmbench.plan import Plan


def slowed_core(slowdown: float, refill: float) -> types.ModuleType:
    source = Path(shmbench.work.__file__).read_text()
    module = types.ModuleType("shmbench.slowed_work")
    module.__package__ = "shmbench"
    exec(compile(gate.slow_down(source, slowdown, refill), "slowed_work.py", "exec"), module.__dict__)
    return module


@pytest.mark.parametrize("refill", [0.3, 0.04])  # a part of one write again, or several writes
@pytest.mark.parametrize("workload", ["random", "pid"])
def test_the_slowed_core_writes_the_same_matrix(workload, refill):
    plan = Plan(50, 33, block_rows=7)
    slowed = slowed_core(1.10, refill)
    matrices = []
    for core in (shmbench.work, slowed):
        matrix = np.empty(plan.shape)
        core.prepare(matrix, workload, plan)
        core.fill_rows(matrix, plan, range(plan.rows), workload, 7)
        matrices.append(matrix)
    assert np.array_equal(*matrices)
    assert gate.slow_down(Path(shmbench.work.__file__).read_text(), 1.10, refill).count("fill(worker_id)") == 3


def test_a_core_it_does_not_know_is_refused():
    with pytest.raises(gate.DrillError, match="knows how to slow down"):
        gate.slow_down("def fill_block(): pass\n", 1.10)


def test_several_gates_are_counted_as_gates_that_failed():
    calm = [gate.Verdict(0, 16, 1.0, 0), gate.Verdict(1, 16, 1.01, 1), gate.Verdict(0, 16, 0.99, 0)]
    slow = [gate.Verdict(14, 16, 1.10, 1), gate.Verdict(16, 16, 1.12, 1), gate.Verdict(0, 16, 1.02, 0)]
    line = gate.verdict(1.10, calm, slow)
    assert "caught by 2 of 3 gates (30 of 48 cells flagged)" in line
    assert "false alarms in 1 of 3 gates (1 cells flagged; a first run flagged cells in 0)" in line
    assert "measured 1.10x" in line
    assert "flagged in 14 of 16 cells" in gate.verdict(1.10, calm[:1], slow[:1])


def test_the_gate_reads_the_cells_asv_marked_slower():
    table = """
| Change   | Before [abc]   | After [def]   |   Ratio | Benchmark (Parameter)                                             |
|----------|----------------|---------------|---------|-------------------------------------------------------------------|
| +        | 1.00s          | 1.11s         |    1.11 | bench_gate.Gate.time_fill_over_yardstick('mp_array', '256MiB', 2, 'pid') |
| -        | 1.10s          | 1.00s         |    0.91 | bench_gate.Gate.time_fill_over_yardstick('threads', '256MiB', 1, 'random') |
|          | 1.00s          | 1.01s         |    1.01 | bench_gate.Gate.time_fill_over_yardstick('serial', '256MiB', 1, 'pid') |
"""
    assert gate.flagged(table) == {"bench_gate.Gate.time_fill_over_yardstick('mp_array', '256MiB', 2, 'pid')"}
    # A gate fails on the cells flagged by both of its runs.
    assert gate.flagged(table) & gate.flagged(table.replace("| +  ", "|    ")) == set()
