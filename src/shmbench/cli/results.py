"""The commands that read results (report, compare, publish, tables) and the drill of the gate."""
from __future__ import annotations

import argparse
import os
import sys

from rich.markup import escape
from rich.table import Table

from .. import report
from .._system.outputs import atomic

from .common import EXIT_FAILED, EXIT_USAGE, check_outputs, console, err_console


def cmd_report(args: argparse.Namespace) -> int:
    check_outputs((args.html, "--html"), (args.output, "--output"))
    if args.html:
        from ..report.html import write

        write(args.results, args.html)
        err_console().print(f"report written to {args.html}")
        return 0
    if os.path.isdir(args.results):
        raise ValueError("a directory of asv results makes an HTML report: add --html PATH")
    text = report.markdown(report.read_json(args.results))
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        with atomic(args.output) as stream:
            stream.write(text)
        err_console().print(f"report written to {args.output}")
    return 0


def _figure(r: dict | None) -> str:
    if r is None:
        return "—"
    if r.get("speedup") is not None and r.get("speedup_ci"):
        low, high = r["speedup_ci"]
        return f"{r['speedup']:.2f}× [{low:.2f}–{high:.2f}]"
    if r.get("warm_seconds") is not None:
        return f"{r['warm_seconds']:.3f} s"
    return r.get("error") or "—"


def cmd_compare(args: argparse.Namespace) -> int:
    from ..report.side_by_side import answers as both_answers, rows

    a, b = (report.read_json(path)["results"] for path in (args.a, args.b))
    out = console()
    table = Table(title=f"A = {args.a}   B = {args.b}   (speed-up over each run's own serial, 95% interval)")
    for column, justify in (("cell", "left"), ("A", "right"), ("B", "right"), ("B warm ÷ A warm", "right"),
                            ("changed?", "left")):
        table.add_column(column, justify=justify)
    changed = 0
    for row in rows(a, b):
        verdict = row.verdict
        changed += verdict in ("slower", "faster")
        style = {"slower": "red", "faster": "green"}.get(verdict, "")
        table.add_row(row.cell, _figure(row.a), _figure(row.b), f"{row.ratio:.2f}" if row.ratio else "—",
                      f"[{style}]{verdict}[/{style}]" if style else verdict)
    out.print(table)
    out.print(f"{changed} cell(s) moved beyond their noise (intervals apart); the others did not.")
    for title, first, second in both_answers(a, b):
        out.print(escape(f"{title}:\n  A: {first}\n  B: {second}"), soft_wrap=not out.is_terminal)
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..report.publish import asv_publish, vendor

    config = Path(args.config).resolve()
    if not config.is_file():
        raise ValueError(f"no asv configuration at {args.config}")
    html_dir = asv_publish(config)
    done = vendor(html_dir)
    err = err_console()
    if done.reason:
        err.print(escape(f"shmbench: the pages still load {len(done.remote)} scripts and styles from public CDNs: "
                         f"{done.reason}"), soft_wrap=True)
    else:
        err.print(f"{len(done.local)} scripts and styles now served from {html_dir / 'vendor'}")
    console().print(f"published {html_dir / 'index.html'}; browse it with: asv preview "
                     f"(or python -m http.server -d {html_dir})", soft_wrap=True)
    return 0


def cmd_gate(args: argparse.Namespace) -> int:
    """The regression gate between two commits: exit 1 on cells slower beyond the factor in both
    of its runs (``gate.run_gate``)."""
    import subprocess
    from pathlib import Path

    from .. import gate

    if not (Path(args.repo) / "asv.conf.json").is_file():
        err_console().print(escape(f"shmbench: error: {args.repo} has no asv.conf.json: run the gate in a checkout "
                                   "of shmbench"), soft_wrap=True)
        return EXIT_USAGE
    for rev in (args.base, args.head):  # before asv builds anything
        known = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd=args.repo,
                               capture_output=True)
        if known.returncode != 0:
            err_console().print(escape(f"shmbench: error: {rev} is no commit of {os.path.abspath(args.repo)}"),
                                soft_wrap=True)
            return EXIT_USAGE
    out = console()
    try:
        found = gate.run_gate(Path(args.repo), args.base, args.head, args.machine, dict(os.environ), args.factor,
                              show=lambda text: out.print(escape(text.rstrip()), soft_wrap=True, highlight=False))
    except gate.DrillError as error:
        err_console().print(escape(f"shmbench: gate failed to run: {error}"), soft_wrap=True)
        return EXIT_FAILED
    out.print(f"gate: {found.flagged} of {found.cells} cells slower beyond {args.factor} in both runs (the first run "
              f"flagged {found.first}); median ratio {found.ratio:.3f}", soft_wrap=True)
    return 1 if found.exit_code else 0


def cmd_drill(args: argparse.Namespace) -> int:
    from .. import gate

    err_console().print(f"drill: two commits in a throw-away clone of {os.path.abspath(args.repo)}, the gate "
                         f"on each {args.gates} time(s) (factor {args.factor}); this takes minutes", soft_wrap=True)
    try:
        line = gate.drill(args.repo, args.slowdown, args.factor, args.keep, args.gates,
                          progress=lambda said: err_console().print(escape(said), soft_wrap=True))
    except gate.DrillError as error:
        err_console().print(escape(f"shmbench: drill failed: {error}"), soft_wrap=True)
        return EXIT_FAILED
    console().print(escape(line), soft_wrap=True)
    return 0


def cmd_tables(args: argparse.Namespace) -> int:
    from cogapp import Cog

    from ..report import tables

    pages = tables.pages(args.root)
    if not pages:
        raise ValueError(f"{args.root} has no page with generated tables (README.md, docs/*.md)")
    # Paths in the pages' markers are relative to the project's root.
    here = os.getcwd()
    os.chdir(args.root)
    try:
        return Cog().main(["cog", "--check" if args.check else "-r", *(["--diff"] if args.check else []),
                           "--check-fail-msg=run `shmbench tables` to render them again", "--verbosity=1",
                           "-p", "import cog\nfrom shmbench.report.tables import *",
                           *(os.path.relpath(page, args.root) for page in pages)])
    finally:
        os.chdir(here)
