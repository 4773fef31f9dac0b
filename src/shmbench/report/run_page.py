"""The page for one ``shmbench run --json`` result: the answer, the comparison, plots, the machine."""
from __future__ import annotations

from html import escape

from . import answer, plots
from . import output as report
from ..kernels import label as workload_label
from .page import fmt, inline, machine, page, svg, table


def from_run(doc: dict) -> str:
    """The page for one ``shmbench run --json`` result."""
    records = doc["results"]
    rows = []
    for r in records:
        ok = f"<span class=\"{'good' if r['verified'] else 'bad'}\">{escape(report.verdict(r))}</span>"
        rows.append([escape(r["strategy"]), escape(report.how(r)), str(r["workers"]),
                     escape(report.size_of(r)), escape(workload_label(r["workload"])), fmt(r["cold_seconds"], ".3f"),
                     escape(report.pm(r["warm_seconds"], r.get("warm_ci"))), str(r.get("passes", "–")),
                     escape(report.speedup_text(r)), fmt(r["gbps"], ".2f"), fmt(r["pss_multiple"], ".2f"), ok])
    body = [f"<h1>shmbench results</h1><p>{escape(str(doc.get('created', '')))}</p>",
            _answer_section(records),
            "<h2>Comparison</h2>",
            table(["strategy", "start", "workers", "size", "workload", "cold s", "warm s (95% CI)", "passes",
                    "speed-up (95% CI)", "GB/s", "PSS × matrix", "verified"], rows, left=1, cls="comparison"),
            "<h2>Scaling and memory</h2>",
            f"<figure class=\"scaling\">{svg(plots.scaling_figure(records, doc['machine'].get('usable_cores')))}"
            "<figcaption>Speed-up over serial per strategy (paired, with its 95% interval; hatched: not stable), "
            "one panel per workload, size and worker count, with the ideal (the workers that can run at once); "
            "below, the peak PSS of all processes as a multiple of the matrix.</figcaption></figure>",
            "<h2>Phases</h2>",
            f"<figure class=\"phases\">{svg(plots.phases_figure(records))}"
            "<figcaption>Where a one-shot run's time goes: the first pass, phase by phase.</figcaption></figure>",
            "<h2>Machine</h2>", machine(doc["machine"])]
    return page("shmbench results", body)


def _answer_section(records: list[dict]) -> str:
    items = [f"<li><strong>{escape(a.title)}: {inline(a.headline)}</strong> {inline(' '.join(a.sentences))}</li>"
             for a in answer.answers(records)]
    return ("<section id=\"answer\"><h2>The answer</h2><p>Computed from the figures below: ranked by the "
            "speed-up over serial (paired, with its 95% interval); overlapping intervals tie.</p><ul>"
            + "".join(items) + "</ul></section>")
