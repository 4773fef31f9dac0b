"""Measuring in pairs: a cell's warm passes interleaved with passes of its references.

On a shared machine a slow spell lasts seconds and a core can go missing for a whole pass, so two
medians taken a minute apart can differ more than the strategies do. Here every round runs one warm
pass of the cell, one of serial's fill of the same plan (kept alive beside it: no workers) and one
of a raw-numpy *yardstick* of the cell's parallelism, back to back, in alternating order; every
ratio is taken within a round, so a slow spell falls on both sides of it. Rounds go on until the
figures settle (their interval within ``target``) or the cell's time budget runs out.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from . import capacity
from ._system.yardstick import Yardstick
from .runner import Driver
from .stats import MIN_SAMPLES, median_ci, paired_ratios

#: Where a figure counts as settled: its 95% interval within ±3% of its median.
TARGET = 0.03
#: A bound on rounds whatever the budget, so a tiny matrix does not run for ever.
MAX_ROUNDS = 400


@dataclass
class Rounds:
    """The passes of a cell and of its references, one of each per round, in round order."""

    cell: list[float] = field(default_factory=list)
    #: The reference's passes (``strategies.REFERENCE``); empty when the cell is the reference itself.
    reference: list[float] = field(default_factory=list)
    yardstick: list[float] = field(default_factory=list)
    settled: bool = False
    #: Stopped before settling because its speed-up lies clearly below its group's leader.
    decided: bool = False
    problems: list[str] = field(default_factory=list)

    def figures_settle(self, target: float, workers: int = 1) -> bool:
        """Whether the figures a record shows are within ``target``: the speed-up over serial (of
        the rounds that had every core, ``capacity``) and the time over the yardstick. The warm
        time itself widens with every slow spell; the record shows its interval beside them."""
        if len(self.cell) < MIN_SAMPLES:
            return False
        figures = [median_ci(paired_ratios(self.cell, self.yardstick))]
        if self.reference:
            figures.append(capacity.speedup(self.reference, self.cell, self.yardstick, workers)[0])
        else:
            figures.append(median_ci(self.cell))
        return all(f.within(target) for f in figures)


def interleave(cell: Driver, reference: Driver | None, yardstick: Yardstick, min_rounds: int, budget: float,
               target: float = TARGET, on_round: Callable[[int], None] | None = None,
               decided: Callable[[Rounds], bool] | None = None, earlier: Rounds | None = None) -> Rounds:
    """Warm passes of ``cell`` paired with the ``reference``'s (serial's) and the yardstick's, at least ``min_rounds``,
    then more until every figure settles within ``target``, ``budget`` seconds have gone, or
    ``decided(rounds)`` says more rounds cannot change the answer (a cell clearly behind).

    ``earlier`` holds the rounds of the cell's first sitting (another opening of it): the new rounds
    are added to them, and the figures that must settle are those of all the rounds together.

    The order alternates (cell, yardstick, reference; then reference, yardstick, cell) so a machine
    that speeds up or slows down during a round favours neither side. The cell's last pass is
    verified (its first was, when the driver ran it).
    """
    rounds = Rounds(list(earlier.cell), list(earlier.reference), list(earlier.yardstick)) if earlier else Rounds()
    before = len(rounds.cell)
    passes: dict[str, Callable[[], float]] = {"cell": lambda: cell.warm_pass(verify=False)[0],
                                              "yardstick": yardstick.run}
    if reference is not None:
        passes["reference"] = lambda: reference.warm_pass(verify=False)[0]
    began = time.monotonic()
    while len(rounds.cell) < MAX_ROUNDS:
        n = len(rounds.cell)
        enough = n - before >= min_rounds
        if enough and rounds.figures_settle(target, yardstick.threads):
            break
        # Before the budget: a cell whose budget ends as it falls clearly behind is said to be behind.
        if enough and decided is not None and decided(rounds):
            rounds.decided = True
            break
        if enough and time.monotonic() - began >= budget:
            break
        order = list(passes) if n % 2 == 0 else list(reversed(passes))
        for name in order:
            getattr(rounds, name).append(passes[name]())
        if on_round is not None:
            on_round(n + 1)
    rounds.settled = bool(rounds.cell) and rounds.figures_settle(target, yardstick.threads)
    if len(rounds.cell) > before:
        rounds.problems = cell.check()
    return rounds
