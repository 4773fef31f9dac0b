"""The answer first: what a comparison's figures mean for a choice, in plain sentences.

Computed from the records alone, never written by hand, for each workload, size and worker count:
one short line first (the winner or the tie, the one-shot winner, the least memory), then the
details: the fastest verified strategy in steady state, ranked on the estimates with their
intervals, serial included (a strategy is fastest only where no other interval reaches its own;
figures whose intervals overlap tie, unstable ones keeping their place with their interval), the
fastest for a one-shot script, the parallel strategy holding the least memory, how far the book's
recipe and the pickled copy are behind, each engine beside its peer, and which strategies cannot
be ranked (disturbed, failed, not verified) and why.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..kernels import label
from ..phases import ONE_SHOT, total
from ..sizes import describe
from ..strategies import BASELINES, REFERENCE



@dataclass
class Answer:
    """The answer for one workload, size and worker count."""

    title: str
    sentences: list[str] = field(default_factory=list)
    #: The strategies named fastest in steady state (several when they tie); empty when none ranks.
    fastest: list[str] = field(default_factory=list)
    #: One short line: the winner or the tie, the one-shot winner, the least memory.
    headline: str = ""


def _interval(r: dict) -> tuple[float, float]:
    ci = r.get("speedup_ci") or [r["speedup"], r["speedup"]]
    return ci[0], ci[1]


def _pm(r: dict) -> str:
    low, high = _interval(r)
    spread = max(r["speedup"] - low, high - r["speedup"]) / r["speedup"] if r["speedup"] else 0.0
    return f"{r['speedup']:.2f}× serial, ±{spread:.0%}" if r.get("speedup_ci") else f"{r['speedup']:.2f}× serial"


def one_shot_seconds(r: dict) -> float | None:
    phases = r.get("phases") or {}
    if r.get("error") or not phases:
        return None
    return total(phases, ONE_SHOT)


def _excluded(r: dict) -> str | None:
    """Why a record has no place in the ranking at all (an unstable figure keeps its place)."""
    if r.get("error"):
        return f"failed ({r['error']})"
    if not r["verified"]:
        return "did not verify"
    if r.get("disturbed"):
        return "disturbed (a speed-up the cores cannot give)"
    if r.get("speedup") is None:
        return "no warm passes"
    return None


def _unstable(r: dict) -> bool:
    return r.get("stable") is False and r["strategy"] != REFERENCE  # schema 1 records have no interval: as they are


def _names(records: Sequence[dict]) -> dict[int, str]:
    """A label per record: the strategy, with its start method where one strategy ran under several,
    and its nodes where it ran on several."""
    seen: dict[str, set] = {}
    for r in records:
        seen.setdefault(r["strategy"], set()).add(r.get("start_method"))
    return {id(r): f"`{r['strategy']}`" + (f" ({r['start_method']})" if len(seen[r["strategy"]]) > 1 else "")
            + (f" on {r['nodes']} nodes" if (r.get("nodes") or 1) > 1 else "") for r in records}


def _list(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def answer(group: Sequence[dict], serial: dict | None = None) -> Answer:
    """The answer for the records of one workload, size and worker count; ``serial`` (of the same
    workload and size) is the one-shot reference where the group does not hold it."""
    first = group[0]
    workers = first["workers"]
    title = (f"{describe(first['rows'], first['cols'], first.get('dtype') or 'float64')} {label(first['workload'])} fill, "
             f"{workers} worker{'s' if workers != 1 else ''}")
    out = Answer(title)
    name = _names(group)
    if serial is not None and serial not in group:
        name[id(serial)] = "`serial`"
    # A peer (an engine's own way, beside its contender) is a yardstick for that contender, not a choice.
    contenders = [r for r in group if r["strategy"] != REFERENCE and not r.get("peer_of")]
    reference = serial if serial is not None else next((r for r in group if r["strategy"] == REFERENCE), None)
    # Ranked on the estimates with their intervals, serial included (exactly 1.00): the fastest is
    # the best median, and every figure whose interval reaches the best one's lower end ties with it.
    pool = [r for r in contenders if _excluded(r) is None]
    if reference is not None and _excluded(reference) is None:
        pool.append(reference)
    if any(r is not reference for r in pool):  # serial alone is no ranking (every other cell failed)
        best = max(pool, key=lambda r: r["speedup"])
        low = _interval(best)[0]
        tied = sorted((r for r in pool if _interval(r)[1] >= low), key=lambda r: -r["speedup"])
        out.fastest = [r["strategy"] for r in tied]
        shown = "; ".join(f"{name[id(r)]} {_pm(r)}" + (" (unstable)" if _unstable(r) else "") for r in tied)
        rivals = [r for r in tied if r is not reference]
        if not rivals:
            out.headline = "Nothing beat serial."
            out.sentences.append("Nothing beat serial: every figure's interval lies below serial's.")
        elif reference in tied:
            out.headline = (f"Nothing measured apart from serial: {_list([name[id(r)] for r in rivals])} "
                            f"{'ties' if len(rivals) == 1 else 'tie'} with it.")
            out.sentences.append(f"Nothing measured apart from serial ({shown}): their intervals reach it.")
        elif len(tied) == 1:
            out.headline = f"Fastest: {name[id(best)]}, {_pm(best)}" + (" (unstable)." if _unstable(best) else ".")
            out.sentences.append(f"Fastest in steady state: {name[id(best)]} ({_pm(best)}"
                                 + ("; unstable, yet no other interval reaches it)." if _unstable(best) else ")."))
        else:
            out.headline = f"A tie: {_list([name[id(r)] for r in tied])}."
            out.sentences.append(f"Fastest in steady state: {_list([name[id(r)] for r in tied])} tie "
                                 f"({shown}): their intervals overlap.")
        # The behind-figures are measured from the best settled member of the tie.
        winner = next((r for r in tied if not _unstable(r)), best)
        winner = None if winner is reference else winner
        for strategy, what in BASELINES.items():
            for r in (r for r in group if r["strategy"] == strategy and r["verified"] and r.get("speedup")):
                if winner is None or r["strategy"] in out.fastest:
                    continue
                out.sentences.append(f"{what.capitalize()} ({name[id(r)]}, {_pm(r)}) takes "
                                     f"{winner['speedup'] / r['speedup']:.2f}× as long as {name[id(winner)]}.")
    elif contenders:
        out.headline = "No strategy has a verified speed-up here."
        out.sentences.append("No strategy has a verified speed-up here: none is ranked.")
    beside = [r for r in contenders if r.get("over_peer")]
    if beside:
        out.sentences.append("Against each engine's own documented way (its peer, `shmbench run --peers`): " + _list([
            f"{name[id(r)]} takes {r['over_peer']:.2f}× the time of `{r['peer']}`" for r in beside]) + ".")
    mine = [r for r in group if not r.get("peer_of")]
    shots = [*mine, serial] if serial is not None and serial not in group else mine
    timed = [(one_shot_seconds(r), r) for r in shots if r["verified"] and one_shot_seconds(r) is not None]
    if timed:
        timed.sort(key=lambda pair: pair[0])
        seconds, quickest = timed[0]
        rest = ", ".join(f"{name[id(r)]} {s:.2f} s" for s, r in timed[1:3])
        out.sentences.append(f"Fastest for a one-shot script (allocate, start, one pass, close; measured once): "
                             f"{name[id(quickest)]} in {seconds:.2f} s" + (f", then {rest}." if rest else "."))
    holding = [r for r in contenders if r["verified"] and r.get("pss_multiple")]
    if holding:
        least = min(holding, key=lambda r: r["pss_multiple"])
        most = max(holding, key=lambda r: r["pss_multiple"])
        sentence = f"Least memory among the parallel strategies: {name[id(least)]} ({least['pss_multiple']:.2f}× the matrix"
        sentence += (f"; {name[id(most)]} holds {most['pss_multiple']:.2f}×)." if most is not least else ").")
        out.sentences.append(sentence)
    crossing = [r for r in contenders if r.get("internode_bytes") is not None
                and ((r.get("nodes") or 1) > 1 or r.get("internode_wire_bytes") is not None)]
    if crossing:
        out.sentences.append("Between nodes, on the first pass: " + _list([
            f"{name[id(r)]} moved {r['internode_bytes'] / 2**20:.0f} MiB in {r['phases'].get('internode', 0.0):.2f} s"
            + (f" ({r['internode_wire_bytes'] / 2**20:.1f} MiB arrived over this host's links)"
               if r.get("internode_wire_bytes") is not None else "")
            for r in crossing]) + ".")
    unranked = [(r, _excluded(r)) for r in contenders if _excluded(r)]
    if unranked:
        out.sentences.append("Not ranked: " + "; ".join(f"{name[id(r)]} {why}" for r, why in unranked) + ".")
    unsettled = [r for r in pool if _unstable(r)] if pool else []
    if unsettled:
        out.sentences.append("Unstable, ranked with their intervals: " + "; ".join(
            f"{name[id(r)]} ({r['speedup']:.2f}× serial, interval {_interval(r)[0]:.2f}–{_interval(r)[1]:.2f})"
            for r in unsettled) + ".")
    if timed:
        out.headline += f" One-shot: {name[id(quickest)]}."
    if holding:
        out.headline += f" Least memory: {name[id(least)]}."
    out.headline = out.headline.strip()
    return out


def answers(records: Sequence[dict]) -> list[Answer]:
    """One answer per workload, size and worker count, in the order the records came."""
    def key(r: dict) -> tuple:
        return r["workload"], r["rows"], r["cols"], r.get("dtype") or "float64", r["workers"]

    keys = list(dict.fromkeys(key(r) for r in records))
    serials = {key(r)[:4]: r for r in records if r["strategy"] == REFERENCE}
    return [answer([r for r in records if key(r) == k], serials.get(k[:4])) for k in keys]


def markdown(records: Sequence[dict], heading: str = "##") -> list[str]:
    """The answer section as markdown lines."""
    lines = [f"{heading} The answer", ""]
    for a in answers(records):
        lines += [f"**{a.title}: {a.headline}** " + " ".join(a.sentences), ""]
    return lines
