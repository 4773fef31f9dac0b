"""The statistics behind every figure: intervals that hold their confidence, pairs measured in
alternating order, and speed-ups the cores cannot give marked as disturbed. No timing here."""
from __future__ import annotations

import numpy as np
import pytest

from shmbench.records import record
from shmbench.paired import interleave
from shmbench.report.output import speedup_text
from shmbench.result import PHASES, RunResult
from shmbench.stats import MIN_SAMPLES, median_ci, paired_ratios, rank_bounds


@pytest.mark.parametrize("n, bounds", [(6, (0, 5)), (8, (0, 7)), (10, (1, 8)), (20, (5, 14)), (30, (9, 20))])
def test_rank_bounds_are_the_binomial_order_statistics(n, bounds):
    assert rank_bounds(n) == bounds


def test_the_interval_holds_the_true_median_at_least_as_often_as_it_claims():
    # Skewed, heavy-tailed noise, like timings on a shared machine: lognormal, true median 1.0.
    rng = np.random.default_rng(7)
    for n in (6, 12, 30):
        hits = 0
        trials = 2000
        for _ in range(trials):
            estimate = median_ci(rng.lognormal(0.0, 0.5, n))
            hits += estimate.low <= 1.0 <= estimate.high
        assert hits / trials >= 0.94, (n, hits / trials)


def test_too_few_samples_have_no_interval_to_claim():
    few = median_ci([1.0, 1.1, 0.9, 1.2, 1.0])
    assert not few.has_interval and not few.within(0.5)
    enough = median_ci([1.0] * MIN_SAMPLES)
    assert enough.has_interval and enough.within(0.0) and enough.median == 1.0


def test_pairs_cancel_what_both_sides_share():
    # A slow spell that slows both passes of a pair by the same factor leaves their ratio alone.
    spell = [1.0, 1.0, 1.35, 1.35, 1.0, 1.3, 1.0, 1.0]
    serial = [0.30 * s for s in spell]
    cell = [0.15 * s for s in spell]
    assert median_ci(paired_ratios(serial, cell)).within(1e-9)
    assert median_ci(paired_ratios(serial, cell)).median == pytest.approx(2.0)
    with pytest.raises(ValueError):
        paired_ratios([1.0], [1.0, 2.0])


def _result(strategy: str, workers: int, warm: list[float], serial: list[float],
            yardstick: list[float] | None = None) -> RunResult:
    return RunResult(strategy=strategy, workload="random", rows=4, cols=4, workers=workers, start_method="fork",
                     launcher="multiprocessing", n_blocks=1, block_rows=4, seed=0, phases=dict.fromkeys(PHASES, 0.0),
                     total_seconds=0.0, pids=[], verified=True, warm_passes=warm,
                     reference={"serial": serial, "yardstick": yardstick or [w * 1.0 for w in warm]})


def test_a_speedup_the_cores_cannot_give_is_marked_disturbed_never_stable():
    warm = [0.100] * 10
    impossible = record(_result("threads", 2, warm, [0.247] * 10), None, cores=2)
    assert impossible["speedup"] == pytest.approx(2.47)
    assert impossible["disturbed"] and "2 worker(s) that can run at once" in impossible["disturbed"]
    assert impossible["stable"] is False
    assert "disturbed" in speedup_text(impossible)
    # One core for two workers: even 1.3 is more than the machine can give.
    assert record(_result("threads", 2, warm, [0.130] * 10), None, cores=1)["disturbed"]
    fine = record(_result("threads", 2, warm, [0.195] * 10), None, cores=2)
    assert fine["disturbed"] is None and fine["stable"] is True
    assert fine["speedup_ci"] == [pytest.approx(1.95), pytest.approx(1.95)] and fine["passes"] == 10


def test_a_wide_interval_is_not_stable():
    rng = np.random.default_rng(3)
    warm = list(0.1 * rng.lognormal(0.0, 0.4, 10))
    # The noise is the cell's own: the yardstick beside it held still, so every round had its cores.
    loose = record(_result("mp_array", 2, warm, [0.15] * 10, [0.05] * 10), None, cores=2)
    assert loose["stable"] is False and loose["disturbed"] is None
    assert "unstable" in speedup_text(loose)


def test_a_slow_spell_on_both_sides_widens_the_warm_time_but_not_the_record():
    spell = [1.0, 1.3, 1.3, 1.0, 1.0, 1.35, 1.0, 1.3, 1.0, 1.0]
    paired = record(_result("mp_array", 2, [0.15 * s for s in spell], [0.29 * s for s in spell]), None, cores=2)
    assert paired["warm_ci"][1] / paired["warm_seconds"] > 1.2  # the absolute time says it was disturbed
    assert paired["stable"] is True and paired["speedup"] == pytest.approx(0.29 / 0.15)
    alone = record(_result("serial", 1, [0.29 * s for s in spell], []), None, cores=2)
    assert alone["stable"] is False  # serial stands on its warm time


class _Fake:
    """A driver or yardstick that notes the order of its passes and returns fixed times."""

    threads = 1  # as a yardstick of one worker
    def __init__(self, name: str, log: list[str], seconds: float) -> None:
        self.name, self.log, self.seconds = name, log, seconds

    def warm_pass(self, verify: bool = True):
        self.log.append(self.name)
        return self.seconds, []

    def run(self) -> float:
        self.log.append(self.name)
        return self.seconds

    def check(self) -> list[str]:
        return []


def test_rounds_alternate_their_order_and_stop_when_the_figures_settle():
    log: list[str] = []
    rounds = interleave(_Fake("cell", log, 0.1), _Fake("serial", log, 0.2), _Fake("yardstick", log, 0.1),
                        min_rounds=2, budget=60.0)
    # Constant times settle as soon as an interval exists: MIN_SAMPLES rounds, not the budget.
    assert len(rounds.cell) == len(rounds.reference) == len(rounds.yardstick) == MIN_SAMPLES
    assert rounds.settled
    forward, backward = ["cell", "yardstick", "serial"], ["serial", "yardstick", "cell"]
    assert log[:3] == forward and log[3:6] == backward and log[6:9] == forward


class _Noisy(_Fake):
    """A cell whose passes alternate 0.10 and 0.13 s: they never settle within ±3%."""

    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__(name, log, 0.0)
        self._times = iter([0.1, 0.13] * 100)

    def warm_pass(self, verify: bool = True):
        self.log.append(self.name)
        return next(self._times), []


def test_a_spent_budget_stops_after_the_minimum_and_says_the_figures_did_not_settle():
    log: list[str] = []
    rounds = interleave(_Noisy("cell", log), None, _Fake("yardstick", log, 0.1), min_rounds=3, budget=0.0)
    assert len(rounds.cell) == 3 and rounds.reference == [] and not rounds.settled
    assert "serial" not in log


def test_a_cell_clearly_behind_when_its_budget_ends_is_said_to_be_behind():
    log: list[str] = []
    rounds = interleave(_Noisy("cell", log), _Fake("serial", log, 0.04), _Fake("yardstick", log, 0.1),
                        min_rounds=3, budget=0.0, decided=lambda rounds: True)
    assert len(rounds.cell) == 3 and rounds.decided and not rounds.settled
