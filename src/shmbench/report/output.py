"""Turning records into what a person reads: a table, CSV, JSON and a plot."""
from __future__ import annotations

import csv
import json
import sys
from datetime import datetime, timezone
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import IO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .._system.outputs import atomic
from . import answer, plots
from ..phases import ONE_SHOT
from ..kernels import label
from ..plan import DEFAULT_DTYPE
from ..sizes import describe
from ..strategies import RECIPE, REFERENCE

#: Bumped whenever a field changes meaning or goes away; new fields may appear at any time.
#: 2: every figure with its interval (``warm_ci``, ``speedup_ci``, ``passes``, ``stable``), ratios
#: from paired passes, and ``launcher`` apart from ``start_method``.
SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)
CSV_FIELDS = ("strategy", "start_method", "launcher", "workers", "workload", "dtype", "rows", "cols", "nbytes", "cold_seconds",
              "warm_seconds", "warm_low", "warm_high", "passes", "speedup", "speedup_low", "speedup_high",
              "over_yardstick", "stable", "disturbed", "gbps", "peak_total_pss_bytes", "pss_multiple", "verified", "nodes",
              "internode_bytes")
_LAUNCHERS_OF_SCHEMA_1 = {"loky", "ray", "mpiexec"}  # schema 1 kept these in start_method


def _num(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def how(r: dict) -> str:
    """How a record's workers started: its start method, else its launcher."""
    launcher = r.get("launcher")
    return r["start_method"] or (launcher if launcher not in (None, "none") else "–")


def pm(value: float | None, interval: Sequence[float] | None, fmt: str = ".3f") -> str:
    """``0.153 ±2%``: a median and the wider side of its interval; the median alone without one."""
    if value is None:
        return "–"
    if not interval or not value or interval[0] == interval[1]:
        return format(value, fmt)
    return f"{value:{fmt}} ±{max(value - interval[0], interval[1] - value) / abs(value):.0%}"


def speedup_text(r: dict, fmt: str = ".2f") -> str:
    """The speed-up with its interval; never a plain number when the figure is physically implausible."""
    text = pm(r.get("speedup"), r.get("speedup_ci"), fmt)
    if r.get("disturbed"):
        return f"{text} (disturbed)"
    if r.get("stable") is False and r.get("speedup") is not None and r.get("strategy") != REFERENCE:
        return f"{text} (unstable)"
    return text


def size_of(r: dict) -> str:
    """``4096x32768 (1 GiB)``, with the dtype when it is not float64."""
    return describe(r["rows"], r["cols"], r.get("dtype") or DEFAULT_DTYPE)


def group_key(r: dict) -> tuple:
    """What records of one comparison share with serial: size, dtype and workload."""
    return r["rows"], r["cols"], r.get("dtype") or DEFAULT_DTYPE, r["workload"]


def verdict(r: dict) -> str:
    """The verified column: yes, NO with the problems found, or FAILED with why the cell did not run."""
    if r.get("error"):
        return f"FAILED: {r['error']}"
    return "yes" if r["verified"] else "NO: " + "; ".join(r["problems"])


def measured(records: Sequence[dict]) -> list[dict]:
    """The records that have figures (a failed cell has none)."""
    return [r for r in records if r.get("steady_seconds") is not None]


def workers_text(r: dict) -> str:
    """The workers, and the nodes they were split across where there were several."""
    nodes = r.get("nodes") or 1
    return f"{r['workers']} on {nodes} nodes" if nodes > 1 else str(r["workers"])


def table(records: Sequence[dict], title: str | None = None) -> Table:
    out = Table(title=title, title_justify="left")
    for header, justify in (("strategy", "left"), ("start", "left"), ("workers", "right"),
                            ("size", "left"), ("workload", "left"), ("cold s", "right"),
                            ("warm s (95% CI)", "right"), ("passes", "right"), ("speed-up (95% CI)", "right"),
                            ("GB/s", "right"), ("PSS × matrix", "right"), ("verified", "left")):
        out.add_column(header, justify=justify, overflow="fold")
    for r in records:
        out.add_row(r["strategy"], how(r), workers_text(r), size_of(r),
                    label(r["workload"]), _num(r["cold_seconds"], ".3f"), pm(r["warm_seconds"], r.get("warm_ci")),
                    str(r.get("passes", len(r.get("warm_passes", [])))), speedup_text(r),
                    _num(r["gbps"], ".2f"), _num(r["pss_multiple"], ".2f"), escape(verdict(r)))
    notes = [f"{r['strategy']} ×{r['workers']}: {r['disturbed']}" for r in records if r.get("disturbed")]
    if notes:
        out.caption = escape("disturbed: " + "; ".join(notes))
    return out


def print_table(records: Sequence[dict], console: Console | None = None, title: str | None = None) -> None:
    (console or Console()).print(table(records, title))


def document(machine: dict, records: Sequence[dict], run: dict | None = None) -> dict:
    """The JSON document: ``{"schema", "created", "machine", "results"}``, and ``run`` (the command
    and its seconds) when a comparison wrote it (docs/results-schema.md)."""
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    doc = {"schema": SCHEMA_VERSION, "created": created, "machine": machine, "results": list(records)}
    if run is not None:
        doc["run"] = run
    return doc


def read_json(path: str) -> dict:
    """A document written by ``shmbench run --json``; ``ValueError`` if it is not one."""
    try:
        with open(path) as stream:
            doc = json.load(stream)
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read {path}: {error}") from None
    if not isinstance(doc, dict) or doc.get("schema") not in READABLE_SCHEMAS or "results" not in doc:
        raise ValueError(f"{path} is not a shmbench run result (schema {', '.join(map(str, READABLE_SCHEMAS))})")
    if doc["schema"] == 1:
        for r in doc["results"]:
            launcher = r["start_method"] if r["start_method"] in _LAUNCHERS_OF_SCHEMA_1 else None
            r.setdefault("launcher", launcher)
            if launcher:
                r["start_method"] = None
            r.setdefault("passes", len(r.get("warm_passes") or []))
    return doc


def _efficiency(r: dict, cores: int) -> float | None:
    if r["speedup"] is None:
        return None
    return r["speedup"] / min(r["workers"], cores)


def markdown(doc: dict) -> str:
    """A summary of one run: per strategy the phases, speed-up, efficiency, bandwidth and memory."""
    machine, records = doc["machine"], doc["results"]
    cores = machine.get("usable_cores") or machine.get("logical_cores") or 1
    yardstick = machine.get("single_core_fill_gbps")
    lines = [f"# shmbench results ({doc.get('created', 'undated')})", "",
             *answer.markdown(records), "## The evidence", "",
             f"{machine.get('cpu_model')}, {cores} usable cores, "
             f"{(machine.get('ram_total_bytes') or 0) / 2**30:.1f} GiB RAM; Python {machine.get('python')}, "
             f"numpy {machine.get('numpy')}; single-core `ndarray.fill` "
             + (f"{yardstick:.1f} GB/s." if yardstick else "not measured."), "",
             "Phases in seconds (first pass: workers started, pages not yet touched by them); *warm* is the "
             "median fill+collect of the warm passes, ± the wider side of its 95% interval; the speed-up is the "
             "median of serial's time over this one's, pass by pass (measured back to back), with its interval; "
             "a speed-up above what the cores allow is marked *disturbed*, one whose interval is wider than ±5% "
             "*unstable*; efficiency is against serial's warm time; "
             "efficiency = speed-up ÷ min(workers, cores); GB/s is also shown as a fraction of the single-core "
             "fill bandwidth; memory is the peak PSS of all processes ÷ the matrix.", ""]
    for key in dict.fromkeys(group_key(r) for r in records):
        group = [r for r in records if group_key(r) == key]
        lines += [f"### {key[3]}, {size_of(group[0])}", "",
                  "| strategy | start | workers | " + " | ".join(ONE_SHOT) + " | "
                  "warm (95% CI) | speed-up (95% CI) | efficiency | GB/s | ÷ 1-core fill | memory × | verified |",
                  "|---|---|--:|" + "--:|" * len(ONE_SHOT) + "--:|--:|--:|--:|--:|--:|---|"]
        for r in group:
            p = r["phases"]
            gbps = r["gbps"]
            lines.append(" | ".join([
                f"| {r['strategy']}", how(r), workers_text(r),
                *(f"{p.get(name, 0.0):.3f}" for name in ONE_SHOT),
                pm(r["warm_seconds"], r.get("warm_ci")), speedup_text(r), _num(_efficiency(r, cores), ".0%"),
                _num(gbps, ".2f"), _num(gbps / yardstick if gbps and yardstick else None, ".0%"),
                _num(r["pss_multiple"], ".2f"),
                verdict(r).replace("|", "/") + " |"]))
        lines += ["", *_reference_line(group), ""]
    return "\n".join(lines)


def _reference_line(group: Sequence[dict]) -> list[str]:
    """How far the best verified strategy is from the book's recipe, where both ran."""
    group = measured(group)
    book = [r for r in group if r["strategy"] == RECIPE]
    best = [r for r in group if r["strategy"] not in (RECIPE, REFERENCE) and r["verified"]]
    if not book or not best:
        return []
    fastest = min(best, key=lambda r: r["steady_seconds"])
    reference = min(book, key=lambda r: r["steady_seconds"])
    return [f"The book's recipe ({_workers(reference)}) takes {reference['steady_seconds']:.3f} s; "
            f"the fastest verified strategy, {fastest['strategy']} with {_workers(fastest)}, "
            f"{fastest['steady_seconds']:.3f} s: {reference['steady_seconds'] / fastest['steady_seconds']:.2f}× "
            f"faster."]


@contextmanager
def _output(path: str) -> Iterator[IO[str]]:
    """Standard output for ``-``; otherwise a file that appears whole or not at all."""
    if path == "-":
        yield sys.stdout
    else:
        with atomic(path) as stream:
            yield stream


def write_json(path: str, doc: dict) -> None:
    with _output(path) as stream:
        json.dump(doc, stream, indent=2)
        stream.write("\n")


def write_csv(path: str, records: Sequence[dict]) -> None:
    with _output(path) as stream:
        writer = csv.DictWriter(stream, CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for r in records:
            warm, fast = r.get("warm_ci") or [None, None], r.get("speedup_ci") or [None, None]
            writer.writerow(r | {"warm_low": warm[0], "warm_high": warm[1], "speedup_low": fast[0],
                                 "speedup_high": fast[1]})


def plot(path: str, records: Sequence[dict], cores: int | None = None) -> None:
    """Write the speed-up and memory figure as a PNG."""
    plt = plots.pyplot()
    fig = plots.scaling_figure(records, cores)
    try:
        with atomic(path, "wb") as stream:
            fig.savefig(stream, dpi=110, format="png")
    finally:
        plt.close(fig)


def _workers(r: dict) -> str:
    return f"{r['workers']} worker{'s' if r['workers'] != 1 else ''}"
