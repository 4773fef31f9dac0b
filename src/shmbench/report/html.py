"""``shmbench report --html``: one self-contained HTML file, from a run's JSON or asv's results.

No request leaves the file: plots are inline SVG from matplotlib (text drawn as paths), the
style is a few lines of CSS. For asv results the reading and the regression detection are
asv's own (``asv.results``, ``asv.step_detect``).
"""
from __future__ import annotations

import io
import itertools
import json
import math
import re
from datetime import datetime, timezone
from html import escape
from pathlib import Path

from . import answer, plots
from . import output as report
from .._system.outputs import atomic
from ..kernels import label as workload_label

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
.bad { color: #b00020; font-weight: 600; } .good { color: #1b6e20; }
#answer { background: #f6f8fa; border: 1px solid #d0d7de; padding: 0.2em 1.2em 0.6em; border-radius: 6px; }
#answer li { margin: 0.5em 0; } code { font-size: 0.95em; background: #eef; padding: 0 0.2em; }
figure { margin: 1em 0; } figure svg { max-width: 100%; height: auto; }
"""


def _svg(fig) -> str:
    plt = plots.pyplot()
    buffer = io.StringIO()
    with plt.rc_context({"svg.fonttype": "path"}):
        fig.savefig(buffer, format="svg")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _page(title: str, body: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def _table(headers: list[str], rows: list[list[str]], left: int = 1, cls: str = "") -> str:
    head = "".join(f"<th class=\"{'l' if i < left else ''}\">{escape(h)}</th>" for i, h in enumerate(headers))
    lines = [f"<table class=\"{cls}\"><thead><tr>{head}</tr></thead><tbody>"]
    for row in rows:
        cells = "".join(f"<td class=\"{'l' if i < left else ''}\">{cell}</td>" for i, cell in enumerate(row))
        lines.append(f"<tr>{cells}</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _machine(machine: dict) -> str:
    rows = []
    for key, value in machine.items():
        if key.endswith("_bytes") and isinstance(value, (int, float)):
            value = f"{value / 2**30:.2f} GiB"
        elif isinstance(value, (list, dict)):
            value = json.dumps(value)
        rows.append([escape(key.replace("_bytes", "")), escape(str(value))])
    return _table(["machine", ""], rows, left=2, cls="machine")


def _fmt(value, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def from_run(doc: dict) -> str:
    """The page for one ``shmbench run --json`` result."""
    records = doc["results"]
    rows = []
    for r in records:
        ok = f"<span class=\"{'good' if r['verified'] else 'bad'}\">{escape(report.verdict(r))}</span>"
        rows.append([escape(r["strategy"]), escape(report.how(r)), str(r["workers"]),
                     escape(report.size_of(r)), escape(workload_label(r["workload"])), _fmt(r["cold_seconds"], ".3f"),
                     escape(report.pm(r["warm_seconds"], r.get("warm_ci"))), str(r.get("passes", "–")),
                     escape(report.speedup_text(r)), _fmt(r["gbps"], ".2f"), _fmt(r["pss_multiple"], ".2f"), ok])
    body = [f"<h1>shmbench results</h1><p>{escape(str(doc.get('created', '')))}</p>",
            _answer_section(records),
            "<h2>Comparison</h2>",
            _table(["strategy", "start", "workers", "size", "workload", "cold s", "warm s (95% CI)", "passes",
                    "speed-up (95% CI)", "GB/s", "PSS × matrix", "verified"], rows, left=1, cls="comparison"),
            "<h2>Scaling and memory</h2>",
            f"<figure class=\"scaling\">{_svg(plots.scaling_figure(records, doc['machine'].get('usable_cores')))}"
            "<figcaption>Speed-up over serial per strategy (paired, with its 95% interval; hatched: not stable), "
            "one panel per workload, size and worker count, with the ideal (the workers that can run at once); "
            "below, the peak PSS of all processes as a multiple of the matrix.</figcaption></figure>",
            "<h2>Phases</h2>",
            f"<figure class=\"phases\">{_svg(plots.phases_figure(records))}"
            "<figcaption>Where a one-shot run's time goes: the first pass, phase by phase.</figcaption></figure>",
            "<h2>Machine</h2>", _machine(doc["machine"])]
    return _page("shmbench results", body)


def _inline(text: str) -> str:
    """Escaped text with markdown's `code` spans as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(text))


def _answer_section(records: list[dict]) -> str:
    items = [f"<li><strong>{escape(a.title)}: {_inline(a.headline)}</strong> {_inline(' '.join(a.sentences))}</li>"
             for a in answer.answers(records)]
    return ("<section id=\"answer\"><h2>The answer</h2><p>Computed from the figures below: ranked by the "
            "speed-up over serial (paired, with its 95% interval); overlapping intervals tie.</p><ul>"
            + "".join(items) + "</ul></section>")


def _history_figure(name: str, series: dict[str, list[tuple[int, float]]], unit: str, commits: list[str]):
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(10, 3.2))
    ax.set_xticks(range(len(commits)), [c[:8] for c in commits], fontsize="x-small")
    for label, points in series.items():
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", ms=3, lw=1, label=label)
    ax.set_title(name, fontsize="medium")
    ax.set_xlabel("commit (oldest to newest)")
    ax.set_xlim(-0.5, len(commits) - 0.5)
    ax.set_ylabel(unit)
    ax.grid(alpha=0.3)
    if 0 < len(series) <= 8:
        ax.legend(fontsize="x-small")
    fig.tight_layout()
    return fig


def from_asv(results_dir: str | Path, threshold: float = 0.05) -> str:
    """The page for an asv results directory: history, latest value, change and regressions."""
    from asv.results import iter_results
    from asv.step_detect import detect_regressions, detect_steps

    results_dir = Path(results_dir)
    meta_path = results_dir / "benchmarks.json"
    if not meta_path.is_file():
        raise ValueError(f"{results_dir} holds no asv results (no benchmarks.json)")
    benchmarks = {k: v for k, v in json.loads(meta_path.read_text()).items() if isinstance(v, dict)}
    runs = sorted(iter_results(str(results_dir)), key=lambda r: (r.date or 0, r.commit_hash))
    if not runs:
        raise ValueError(f"{results_dir} holds no recorded asv run")
    machines = sorted({json.dumps(json.loads((p / 'machine.json').read_text()), sort_keys=True)
                       for p in results_dir.iterdir() if (p / "machine.json").is_file()})
    commits = list(dict.fromkeys(r.commit_hash for r in runs))
    body = ["<h1>shmbench: asv results</h1>",
            f"<p>{len(commits)} commit(s), {len(benchmarks)} benchmarks; regressions are upward steps "
            f"of more than {threshold:.0%} found by asv's step detection. Written "
            f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}.</p>",
            _gate_section(runs, benchmarks),
            "<h2>Machine</h2>", *(_machine(json.loads(m)) for m in machines)]
    for name in sorted(benchmarks):
        meta = benchmarks[name]
        params = meta.get("params") or []
        combos = list(itertools.product(*params)) if params else [()]
        history: dict[tuple, list[tuple[int, float]]] = {combo: [] for combo in combos}
        for run in runs:
            if name not in run.get_all_result_keys():
                continue
            values = run.get_result_value(name, params)
            values = values if isinstance(values, list) else [values]
            for combo, value in zip(combos, values):
                if value is not None and not (isinstance(value, float) and math.isnan(value)):
                    history[combo].append((commits.index(run.commit_hash), float(value)))
        rows, series = [], {}
        for combo, points in history.items():
            if not points:
                continue
            label = ", ".join(f"{n}={v}" for n, v in zip(meta.get("param_names", []), combo)) or "–"
            series[label] = points
            latest = points[-1][1]
            previous = points[-2][1] if len(points) > 1 else None
            change = (latest / previous - 1) if previous else None
            flagged = False
            if len(points) > 1:
                _, _, regressions = detect_regressions(detect_steps([p[1] for p in points]), threshold=threshold)
                flagged = bool(regressions)
            rows.append([escape(label), str(len(points)), f"{latest:.4g}", _fmt(previous, ".4g"),
                         "–" if change is None else f"{change:+.1%}",
                         "<span class=\"bad\">regression</span>" if flagged else ""])
        unit = meta.get("unit", "")
        body.append(f"<h2 class=\"benchmark\">{escape(name)} ({escape(unit)})</h2>")
        if rows:
            body.append(f"<figure class=\"history\">{_svg(_history_figure(name, series, unit, commits))}</figure>")
        body.append(_table(["parameters", "commits", "latest", "previous", "change", ""], rows, left=1,
                           cls="history-table") if rows else "<p>No results (every cell skipped).</p>")
    return _page("shmbench asv results", body)


def _moved(previous: float, latest: float, previous_stats, latest_stats, factor: float) -> str | None:
    """"slower"/"faster" when the gate (``asv continuous -f factor``) would call the change so."""
    try:  # asv's own decision, statistics included, so the page agrees with the gate
        from asv.commands.compare import _is_result_better as better
    except ImportError:  # another asv: the factor alone
        def better(a, b, a_ss, b_ss, factor):
            return a < b / factor
    if better(previous, latest, previous_stats, latest_stats, factor):
        return "slower"
    if better(latest, previous, latest_stats, previous_stats, factor):
        return "faster"
    return None


def _with_interval(value: float, stats: dict | None) -> str:
    if stats and stats.get("ci_99_a") is not None and stats.get("ci_99_b") is not None:
        return f"{value:.4g} [{stats['ci_99_a']:.4g}–{stats['ci_99_b']:.4g}]"
    return f"{value:.4g}"


def _gate_section(runs: list, benchmarks: dict, factor: float | None = None) -> str:
    """The gate's view first: the cells that moved beyond its factor between the last two commits
    measured on the same machine and environment, with their 99% intervals."""
    from ..gate import FACTOR

    factor = factor or FACTOR
    latest_run = runs[-1]
    same = [r for r in runs if r.env_name == latest_run.env_name
            and r.params.get("machine") == latest_run.params.get("machine")]
    by_commit = {r.commit_hash: r for r in same}  # the newest run of each commit
    if len(by_commit) < 2:
        return ("<section id=\"gate\"><h2>Between the last two commits</h2><p>Only one commit is recorded on this "
                "machine: nothing to compare yet.</p></section>")
    (old_hash, old), (new_hash, new) = list(by_commit.items())[-2:]
    rows = []
    for name in sorted(benchmarks):
        if name not in old.get_all_result_keys() or name not in new.get_all_result_keys():
            continue
        meta = benchmarks[name]
        params = meta.get("params") or []
        combos = list(itertools.product(*params)) if params else [()]
        columns = []
        for run in (old, new):
            values = run.get_result_value(name, params)
            columns.append((values if isinstance(values, list) else [values],
                            run.get_result_stats(name, params) or [None] * len(combos),
                            run.get_result_samples(name, params) or [None] * len(combos)))
        for index, combo in enumerate(combos):
            (a, a_stats, a_samples), (b, b_stats, b_samples) = ((c[0][index], c[1][index], c[2][index]) for c in columns)
            if a is None or b is None or any(isinstance(x, float) and math.isnan(x) for x in (a, b)) or not a:
                continue
            verdict = _moved(a, b, (a_stats, a_samples), (b_stats, b_samples), factor)
            if verdict:
                label = ", ".join(f"{n}={v}" for n, v in zip(meta.get("param_names", []), combo)) or "–"
                rows.append([escape(name), escape(label), escape(_with_interval(a, a_stats)),
                             escape(_with_interval(b, b_stats)), f"{b / a:.3f}×",
                             f"<span class=\"{'bad' if verdict == 'slower' else 'good'}\">{verdict}</span>"])
    head = (f"<section id=\"gate\"><h2>Between the last two commits</h2><p>{escape(old_hash[:8])} → "
            f"{escape(new_hash[:8])}: the cells the gate (factor {factor}, asv's statistics) calls changed, "
            "with their 99% intervals.</p>")
    if not rows:
        return head + f"<p class=\"good\">No cell moved beyond the factor {factor}.</p></section>"
    return head + _table(["benchmark", "parameters", "previous", "latest", "ratio", ""], rows, left=2,
                         cls="gate-table") + "</section>"


def write(source: str, output: str) -> None:
    """Write the page for ``source``: a run's JSON file or an asv results directory."""
    page = from_asv(source) if Path(source).is_dir() else from_run(report.read_json(source))
    with atomic(output) as stream:
        stream.write(page)
