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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from . import capacity
from ._system.pages import unforked_array
from .runner import Driver
from .stats import MIN_SAMPLES, median_ci, paired_ratios

#: The yardstick's array is the matrix's size up to this, to keep the live memory small.
YARDSTICK_MAX_BYTES = 256 * 2**20
#: Where a figure counts as settled: its 95% interval within ±3% of its median.
TARGET = 0.03
#: A bound on rounds whatever the budget, so a tiny matrix does not run for ever.
MAX_ROUNDS = 400


def yardstick_bytes(nbytes: int) -> int:
    """The yardstick's size beside a matrix of ``nbytes``."""
    return min(nbytes, YARDSTICK_MAX_BYTES)


#: What the yardstick does to its array, by the workload it stands beside: the same kind of work.
#: ``check+fill`` is pid's: read a block for a value, then write it. A plain fill beside pid moved
#: by 7% between processes here where the two did the same work moved by 1% (one CPU each).
YARDSTICK_KINDS = {"random": "random", "legacy-random": "random", "pid": "check+fill", "rowsum": "sum"}
#: The yardstick's ``check+fill`` goes block by block, as the worker core does (its temporaries alike).
_CHUNK_ELEMENTS = 2**20


class Yardstick:
    """Raw numpy over one array split among ``threads`` threads — ``Generator.random(out=)``, a
    check then a fill, or a row sum, the kind of work of the workload beside it: the cell's parallelism and
    none of shmbench's code, so a change of ours never moves it."""

    def __init__(self, nbytes: int, threads: int, workload: str = "random") -> None:
        self.threads = threads
        self.kind = YARDSTICK_KINDS.get(workload, "random")
        # Small pages: a huge page or not is luck that differs from process to process, and a
        # memory-bound pass (a fill) moves with it by more than the changes the gate must see.
        self.array = unforked_array((max(threads, yardstick_bytes(nbytes) // 8),), "float64", huge_pages=False)
        self.parts = np.array_split(self.array, threads)
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="shmbench-yardstick") if threads > 1 else None
        self.run()  # fault the pages in: the yardstick measures warm fills only

    @property
    def nbytes(self) -> int:
        return self.array.nbytes

    def _fill(self, index: int) -> None:
        part = self.parts[index]
        if self.kind == "check+fill":
            for start in range(0, part.size, _CHUNK_ELEMENTS):
                chunk = part[start:start + _CHUNK_ELEMENTS]
                (chunk != 42.0).any()  # read all of it, as pid's check does
                chunk.fill(42.0)
        elif self.kind == "sum":
            part.sum()
        else:
            np.random.Generator(np.random.PCG64(index)).random(out=part)

    def run(self) -> float:
        """One pass; its seconds."""
        start = time.perf_counter()
        if self.pool is None:
            self._fill(0)
        else:
            for future in [self.pool.submit(self._fill, i) for i in range(self.threads)]:
                future.result()
        return time.perf_counter() - start

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()
        self.array = self.parts = None


@dataclass
class Rounds:
    """The passes of a cell and of its references, one of each per round, in round order."""

    cell: list[float] = field(default_factory=list)
    serial: list[float] = field(default_factory=list)  # empty when the cell is serial itself
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
        if self.serial:
            figures.append(capacity.speedup(self.serial, self.cell, self.yardstick, workers)[0])
        else:
            figures.append(median_ci(self.cell))
        return all(f.within(target) for f in figures)


def interleave(cell: Driver, serial: Driver | None, yardstick: Yardstick, min_rounds: int, budget: float,
               target: float = TARGET, on_round: Callable[[int], None] | None = None,
               decided: Callable[[Rounds], bool] | None = None) -> Rounds:
    """Warm passes of ``cell`` paired with ``serial``'s and the yardstick's, at least ``min_rounds``,
    then more until every figure settles within ``target``, ``budget`` seconds have gone, or
    ``decided(rounds)`` says more rounds cannot change the answer (a cell clearly behind).

    The order alternates (cell, serial, yardstick; then yardstick, serial, cell) so a machine
    that speeds up or slows down during a round favours neither side. The cell's last pass is
    verified (its first was, when the driver ran it).
    """
    rounds = Rounds()
    passes: dict[str, Callable[[], float]] = {"cell": lambda: cell.warm_pass(verify=False)[0],
                                              "yardstick": yardstick.run}
    if serial is not None:
        passes["serial"] = lambda: serial.warm_pass(verify=False)[0]
    began = time.monotonic()
    while len(rounds.cell) < MAX_ROUNDS:
        n = len(rounds.cell)
        if n >= min_rounds and (rounds.figures_settle(target, yardstick.threads)
                                or time.monotonic() - began >= budget):
            break
        if n >= min_rounds and decided is not None and decided(rounds):
            rounds.decided = True
            break
        order = list(passes) if n % 2 == 0 else list(reversed(passes))
        for name in order:
            getattr(rounds, name).append(passes[name]())
        if on_round is not None:
            on_round(n + 1)
    rounds.settled = bool(rounds.cell) and rounds.figures_settle(target, yardstick.threads)
    if rounds.cell:
        rounds.problems = cell.check()
    return rounds
