"""The phases of a run, defined once: their names, their order, and which make up each figure.

The driver runs them, records carry them, and the reports, plots and asv read which belong to the
cold figure (the first pass of fresh workers), to each warm pass, and to a one-shot script; no
module keeps a list of its own.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Phase:
    name: str
    #: In the cold figure: the first pass of freshly started workers, verification aside.
    cold: bool = False
    #: In each warm pass's figure: the steady-state work.
    warm: bool = False
    #: In what a one-shot script pays: open, one unverified pass, close.
    one_shot: bool = False


#: In the order they happen.
ALL = (
    Phase("allocate", one_shot=True),
    Phase("start", one_shot=True),
    Phase("prepare", one_shot=True),
    Phase("touch", cold=True, one_shot=True),
    Phase("fill", cold=True, warm=True, one_shot=True),
    Phase("internode", cold=True, warm=True, one_shot=True),
    Phase("collect", cold=True, warm=True, one_shot=True),
    Phase("verify"),
    Phase("close", one_shot=True),
)
#: Every phase's name, in order: the keys of ``RunResult.phases`` and of JSON, tables and asv.
PHASES = tuple(p.name for p in ALL)
COLD = tuple(p.name for p in ALL if p.cold)
WARM = tuple(p.name for p in ALL if p.warm)
ONE_SHOT = tuple(p.name for p in ALL if p.one_shot)


def total(phases: dict[str, float], which: tuple[str, ...]) -> float:
    """The seconds of ``which`` phases among ``phases`` (a phase a record lacks counts 0)."""
    return sum(phases.get(name, 0.0) for name in which)
