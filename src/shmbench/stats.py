"""Figures measured on a noisy machine: medians with distribution-free confidence intervals.

The interval of a median comes from order statistics: with n samples, the k-th smallest and the
k-th largest bracket the true median with probability 1 - 2 P(Binomial(n, 1/2) < k), whatever the
shape of the noise. A slow spell of the machine or a core lost for a pass makes timing noise
skewed and bimodal, so an interval that assumes a normal shape (or a bootstrap with few samples)
would claim more than it knows. Ratios are taken pair by pair (two passes measured back to back),
then summarised the same way.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

CONFIDENCE = 0.95
#: The fewest samples for which a 95% interval of the median exists (the extremes cover 96.9%).
MIN_SAMPLES = 6


@dataclass(frozen=True)
class Estimate:
    """A median, its confidence interval and the number of samples behind it."""

    median: float
    low: float
    high: float
    n: int

    @property
    def has_interval(self) -> bool:
        """Whether there were enough samples for the interval to mean its confidence."""
        return self.n >= MIN_SAMPLES

    @property
    def spread(self) -> float:
        """The interval's wider side as a fraction of the median (0.03 is ±3%); inf without one."""
        if not self.has_interval or self.median == 0:
            return math.inf
        return max(self.median - self.low, self.high - self.median) / abs(self.median)

    def within(self, fraction: float) -> bool:
        return self.spread <= fraction

    def as_list(self) -> list[float]:
        return [self.low, self.high]


def rank_bounds(n: int, confidence: float = CONFIDENCE) -> tuple[int, int]:
    """0-based indices (low, high) into n sorted samples that bracket the median with at least
    ``confidence``; the extremes (0, n - 1) when n is too small for it."""
    alpha = 1.0 - confidence
    k, below = 0, 0.0
    # The largest k with P(B <= k - 1) <= alpha / 2, B ~ Binomial(n, 1/2).
    while True:
        below += math.comb(n, k) / 2**n
        if below > alpha / 2:
            break
        k += 1
    return (k - 1, n - k) if k >= 1 else (0, n - 1)


def median_ci(samples: Sequence[float], confidence: float = CONFIDENCE) -> Estimate:
    """The median of ``samples`` and its distribution-free confidence interval."""
    if len(samples) == 0:
        raise ValueError("no samples")
    ordered = sorted(float(x) for x in samples)
    low, high = rank_bounds(len(ordered), confidence)
    return Estimate(statistics.median(ordered), ordered[low], ordered[high], len(ordered))


def paired_ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """``a / b`` for each pair measured back to back."""
    if len(numerators) != len(denominators):
        raise ValueError("ratios need pairs")
    return [a / b for a, b in zip(numerators, denominators)]
