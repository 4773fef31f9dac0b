"""How many cores the machine gave each round, read from the round's own references.

On a shared VM a vCPU goes missing for a whole pass now and then (a third of the rounds, in some
hours here), and a 2-worker pass then runs at 1.3-1.7x serial whatever the strategy: that is the
machine's capacity, not the strategy's cost. Each round times serial (one thread) and the
yardstick (raw numpy over the cell's parallelism) back to back, so ``serial / yardstick`` reads the
parallelism the round had: a slow spell of the whole machine slows both and leaves it where it
was, a core lost halves it. Rounds whose reading falls well below the level of the best rounds
lacked a core; the speed-up a person reads is the one of the rounds that had them all, and the
record says how often the machine fell short.
"""
from __future__ import annotations

from collections.abc import Sequence

from .stats import MIN_SAMPLES, Estimate, median_ci, paired_ratios

#: A round reading below this fraction of the full level lacked a core (one lost of two halves it).
SHORT = 0.8
#: The full level: this quantile of the readings, so up to three rounds in four may fall short.
LEVEL_QUANTILE = 0.75


def readings(serial: Sequence[float], yardstick: Sequence[float]) -> list[float]:
    """Each round's parallelism, up to a constant: serial's pass over the yardstick's."""
    return [s / y for s, y in zip(serial, yardstick)]


def full_rounds(serial: Sequence[float], yardstick: Sequence[float], workers: int) -> list[bool]:
    """For each round, whether the machine gave it every core the cell could use. One worker
    needs one core, which every round had; without serial's passes nothing can be read."""
    n = min(len(serial), len(yardstick))
    if workers < 2 or n < 2:
        return [True] * len(yardstick)
    values = readings(serial[:n], yardstick[:n])
    level = sorted(values)[round(LEVEL_QUANTILE * (n - 1))]
    return [v >= SHORT * level for v in values]


def short_fraction(full: Sequence[bool]) -> float:
    """The share of rounds that lacked a core."""
    return 1.0 - sum(full) / len(full) if full else 0.0


def kept(values: Sequence[float], full: Sequence[bool]) -> list[float]:
    """The values of the rounds that had every core."""
    return [v for v, ok in zip(values, full) if ok]


def speedup(serial: Sequence[float], cell: Sequence[float], yardstick: Sequence[float],
            workers: int) -> tuple[Estimate, float]:
    """Serial's time over the cell's, pair by pair, in the rounds that had every core; and the
    share of rounds that did not."""
    full = full_rounds(serial, yardstick, workers)
    ratios = paired_ratios(serial, cell)
    if sum(full) < MIN_SAMPLES <= len(ratios):
        # Too few rounds read as whole to give an interval (a runtime's own work after its pass,
        # Ray's freeing, can slow the yardstick beside it too): every round, and a wider interval.
        return median_ci(ratios), short_fraction(full)
    return median_ci(kept(ratios, full)), short_fraction(full)
