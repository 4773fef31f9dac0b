"""What a record reports: a result's fields and the figures derived from its passes, each with
its 95% interval — the speed-up over serial (in the rounds the machine gave every core), the time
over the yardstick, stable or not, disturbed or not, memory over the matrix, and the engine
contender's time over its peer's."""
from __future__ import annotations

import os
from collections.abc import Sequence

from . import capacity
from .result import RunResult
from .stats import Estimate, median_ci, paired_ratios
from .strategies import REFERENCE, get

#: A figure whose interval is wider than ±5% of its median is not stable.
STABLE_SPREAD = 0.05
#: How far a speed-up may exceed the workers that can run at once before it is called disturbed:
#: serial's private pages and a strategy's shared pages are different memory (huge pages for one,
#: never for /dev/shm), a few per cent either way; more than that is a slow spell on serial's side.
PLAUSIBLE_SLACK = 0.05



def steady_seconds(result: RunResult) -> float | None:
    """The figure to compare: the warm median where there were repeats, else the cold pass; None
    for a cell that failed."""
    if result.error:
        return None
    return result.warm_median if result.warm_passes else result.cold_seconds


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def speedup(result: RunResult, baseline: RunResult | None) -> Estimate | None:
    """Serial's time over this one's: pair by pair where the record carries serial's passes."""
    if result.strategy == REFERENCE:
        n = len(result.warm_passes)
        return Estimate(1.0, 1.0, 1.0, n)
    reference = result.reference or {}
    ref, yard = reference.get(REFERENCE) or [], reference.get("yardstick") or []
    if ref and len(ref) == len(result.warm_passes):
        if len(yard) == len(ref):  # the rounds the machine gave every core (``capacity``)
            return capacity.speedup(ref, result.warm_passes, yard, result.workers)[0]
        return median_ci(paired_ratios(ref, result.warm_passes))
    mine, theirs = steady_seconds(result), baseline and steady_seconds(baseline)
    if mine and theirs:  # two separate runs: no interval
        value = theirs / mine
        return Estimate(value, value, value, 1)
    return None


def record(result: RunResult, baseline: RunResult | None, cores: int | None = None) -> dict:
    """The JSON/CSV record of one result: its fields plus the derived figures, each with its interval."""
    out = result.as_dict()
    seconds = steady_seconds(result)
    warm = median_ci(result.warm_passes) if result.warm_passes else None
    fast = speedup(result, baseline)
    yard = (result.reference or {}).get("yardstick") or []
    over = median_ci(paired_ratios(result.warm_passes, yard)) if yard and len(yard) == len(result.warm_passes) else None
    running = min(result.workers, cores or usable_cores())
    disturbed = None
    if fast is not None and fast.median > running * (1 + PLAUSIBLE_SLACK):
        disturbed = (f"speed-up {fast.median:.2f} is more than the {running} worker(s) that can run at once "
                     f"allow: the machine was slower during serial's passes")
    # A record's figure is its speed-up, paired pass by pass, so a slow spell of the machine cancels
    # in it; the warm time's own interval widens with such a spell and is shown beside it. Serial,
    # and a record without serial's passes, stand on the warm time.
    headline = fast if fast is not None and result.strategy != REFERENCE and fast.has_interval else warm
    stable = bool(headline is not None and headline.within(STABLE_SPREAD) and disturbed is None)
    ref = (result.reference or {}).get(REFERENCE) or []
    full = capacity.full_rounds(ref, yard, result.workers) if ref and len(ref) == len(yard) else None
    out.update(
        short_of_cores=capacity.short_fraction(full) if full is not None else None,
        full_rounds=sum(full) if full is not None else None,
        cold_seconds=None if result.error else result.cold_seconds,
        steady_seconds=seconds,
        warm_seconds=warm.median if warm else None,
        warm_ci=warm.as_list() if warm and warm.has_interval else None,
        warm_min=min(result.warm_passes) if result.warm_passes else None,
        warm_max=max(result.warm_passes) if result.warm_passes else None,
        passes=len(result.warm_passes),
        speedup=fast.median if fast else None,
        speedup_ci=fast.as_list() if fast and fast.has_interval else None,
        over_yardstick=over.median if over else None,
        over_yardstick_ci=over.as_list() if over and over.has_interval else None,
        stable=stable,
        disturbed=disturbed,
        gbps=result.nbytes / seconds / 1e9 if seconds else None,
        pss_multiple=(result.peak_total_pss_bytes / result.nbytes if result.peak_total_pss_bytes else None),
        peer_of=getattr(get(result.strategy), "contender", None),
    )
    return out


def records(results: Sequence[RunResult]) -> list[dict]:
    """Records for every result, with speed-up over serial of the same size and workload."""
    baselines = {(r.rows, r.cols, r.workload, r.dtype): r for r in results if r.strategy == REFERENCE}
    cores = usable_cores()
    out = [record(r, baselines.get((r.rows, r.cols, r.workload, r.dtype)), cores) for r in results]
    _beside_peers(out)
    return out


def _beside_peers(records: list[dict]) -> None:
    """``over_peer`` of each engine contender whose peer ran in the same group: its time over its
    peer's, from the two speed-ups (each paired with serial in its own rounds), above 1 where the
    contender is slower than its engine's own way."""
    def key(r: dict) -> tuple:
        return r["rows"], r["cols"], r["workload"], r.get("dtype"), r["workers"], r["launcher"]

    peers = {key(r): r for r in records if r.get("peer_of") and r.get("speedup")}
    for r in records:
        peer = None if r.get("peer_of") else peers.get(key(r))
        r["over_peer"] = peer["speedup"] / r["speedup"] if peer and r.get("speedup") else None
        r["peer"] = peer["strategy"] if peer else None
