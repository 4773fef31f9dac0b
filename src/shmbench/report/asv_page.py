"""The page for an asv results directory: the gate's view of the last two commits, then each
benchmark's history, latest value, change and regressions. The reading and the regression
detection are asv's own (``asv.results``, ``asv.step_detect``)."""
from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from datetime import datetime, timezone
from html import escape
from pathlib import Path

from . import plots
from .page import fmt, machine, page, svg, table


def _cells(run, name: str, meta: dict) -> Iterator[tuple[str, float | None, dict | None, list | None]]:
    """Each parameter combination of benchmark ``name`` in an asv ``run``: (its label, value, stats,
    samples); a value None or NaN where the cell was skipped or failed."""
    params = meta.get("params") or []
    combos = list(itertools.product(*params)) if params else [()]
    values = run.get_result_value(name, params)
    values = values if isinstance(values, list) else [values]
    stats = run.get_result_stats(name, params) or [None] * len(combos)
    samples = run.get_result_samples(name, params) or [None] * len(combos)
    for combo, value, stat, sample in zip(combos, values, stats, samples):
        label = ", ".join(f"{n}={v}" for n, v in zip(meta.get("param_names", []), combo)) or "–"
        measured = value is not None and not (isinstance(value, float) and math.isnan(value))
        yield label, float(value) if measured else None, stat, sample


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
            "<h2>Machine</h2>", *(machine(json.loads(m)) for m in machines)]
    for name in sorted(benchmarks):
        meta = benchmarks[name]
        history: dict[str, list[tuple[int, float]]] = {}
        for run in runs:
            if name not in run.get_all_result_keys():
                continue
            for label, value, _, _ in _cells(run, name, meta):
                history.setdefault(label, [])
                if value is not None:
                    history[label].append((commits.index(run.commit_hash), value))
        rows, series = [], {}
        for label, points in history.items():
            if not points:
                continue
            series[label] = points
            latest = points[-1][1]
            previous = points[-2][1] if len(points) > 1 else None
            change = (latest / previous - 1) if previous else None
            flagged = False
            if len(points) > 1:
                _, _, regressions = detect_regressions(detect_steps([p[1] for p in points]), threshold=threshold)
                flagged = bool(regressions)
            rows.append([escape(label), str(len(points)), f"{latest:.4g}", fmt(previous, ".4g"),
                         "–" if change is None else f"{change:+.1%}",
                         "<span class=\"bad\">regression</span>" if flagged else ""])
        unit = meta.get("unit", "")
        body.append(f"<h2 class=\"benchmark\">{escape(name)} ({escape(unit)})</h2>")
        if rows:
            body.append(f"<figure class=\"history\">{svg(_history_figure(name, series, unit, commits))}</figure>")
        body.append(table(["parameters", "commits", "latest", "previous", "change", ""], rows, left=1,
                           cls="history-table") if rows else "<p>No results (every cell skipped).</p>")
    return page("shmbench asv results", body)


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
        for (label, a, a_stats, a_samples), (_, b, b_stats, b_samples) in zip(_cells(old, name, meta),
                                                                              _cells(new, name, meta)):
            if a is None or b is None or not a:
                continue
            verdict = _moved(a, b, (a_stats, a_samples), (b_stats, b_samples), factor)
            if verdict:
                rows.append([escape(name), escape(label), escape(_with_interval(a, a_stats)),
                             escape(_with_interval(b, b_stats)), f"{b / a:.3f}×",
                             f"<span class=\"{'bad' if verdict == 'slower' else 'good'}\">{verdict}</span>"])
    head = (f"<section id=\"gate\"><h2>Between the last two commits</h2><p>{escape(old_hash[:8])} → "
            f"{escape(new_hash[:8])}: the cells the gate (factor {factor}, asv's statistics) calls changed, "
            "with their 99% intervals.</p>")
    if not rows:
        return head + f"<p class=\"good\">No cell moved beyond the factor {factor}.</p></section>"
    return head + table(["benchmark", "parameters", "previous", "latest", "ratio", ""], rows, left=2,
                         cls="gate-table") + "</section>"


