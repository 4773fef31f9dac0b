"""Two runs side by side (two commits, two machines, two days), as ``pyperf compare_to`` shows its
users: each cell's figures in both, their ratio, whether it moved beyond its noise, and the answer
of each run beside the other's."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..kernels import label
from ..sizes import describe
from . import answer


@dataclass
class Row:
    """One cell found in either run."""

    cell: str
    a: dict | None
    b: dict | None

    @property
    def ratio(self) -> float | None:
        """B's warm time over A's (above 1: B is slower)."""
        if self.a and self.b and self.a.get("warm_seconds") and self.b.get("warm_seconds"):
            return self.b["warm_seconds"] / self.a["warm_seconds"]
        return None

    @property
    def verdict(self) -> str:
        """"slower", "faster", "same" (intervals overlap) or "only in A/B"; speed-ups over serial are
        compared where both have them (each paired with its own run's serial, so a slower machine
        on one day cancels), else warm times."""
        if self.a is None or self.b is None:
            return "only in B" if self.a is None else "only in A"
        for key, interval, better in (("speedup", "speedup_ci", 1), ("warm_seconds", "warm_ci", -1)):
            if self.a.get(interval) and self.b.get(interval) and self.a.get(key) and self.b.get(key):
                (alow, ahigh), (blow, bhigh) = self.a[interval], self.b[interval]
                if blow > ahigh:
                    return "faster" if better > 0 else "slower"
                if bhigh < alow:
                    return "slower" if better > 0 else "faster"
                return "same"
        return "no interval"


def _key(r: dict) -> tuple:
    return (r["strategy"], r.get("start_method"), r["workers"], r.get("nodes") or 1, r["rows"], r["cols"],
            r["workload"], r.get("dtype") or "float64")


def _name(r: dict) -> str:
    how = f" {r['start_method']}" if r.get("start_method") else ""
    nodes = f" on {r['nodes']} nodes" if (r.get("nodes") or 1) > 1 else ""
    size = describe(r["rows"], r["cols"], r.get("dtype") or "float64")
    return f"{r['strategy']}{how} ×{r['workers']}{nodes}, {size} {label(r['workload'])}"


def rows(a: Sequence[dict], b: Sequence[dict]) -> list[Row]:
    """Every cell of either run, in A's order then B's new ones."""
    by_a, by_b = {_key(r): r for r in a}, {_key(r): r for r in b}
    keys = list(dict.fromkeys([*by_a, *by_b]))
    return [Row(_name(by_a.get(k) or by_b[k]), by_a.get(k), by_b.get(k)) for k in keys]


def answers(a: Sequence[dict], b: Sequence[dict]) -> list[tuple[str, str, str]]:
    """(group, A's headline, B's headline) for every group of either run."""
    found_a = {x.title: x.headline for x in answer.answers(a)}
    found_b = {x.title: x.headline for x in answer.answers(b)}
    titles = dict.fromkeys([*found_a, *found_b])
    return [(title, found_a.get(title, "—"), found_b.get(title, "—")) for title in titles]
