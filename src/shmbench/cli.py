"""The ``shmbench`` command: run a comparison, the book's demo, memory proof, strategies, machine."""
from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import compare, journal, kernels, report
from ._system import deadline, interrupts, memory, noise, sysinfo
from ._system.outputs import atomic, check_writable
from .gate import FACTOR as GATE_FACTOR
from .journal import Journal
from .result import RunResult
from .plan import DEFAULT_DTYPE, DTYPES, Plan
from .runner import Driver, processes
from ._system.preflight import PreflightError
from .report.answer import answers
from .report.publish import PublishError
from .sizes import describe, parse_size
from .strategies import REGISTRY, create, peer_for
from .verify import pid_counts
from .work import DEFAULT_VALUE, WORKLOADS, check_workload
from .strategies._runtimes.mpi import HOSTS_ENV
from .strategies._runtimes.base import DEFAULT_START_METHOD, START_METHODS, WorkerDiedError, WorkerError

#: 256 MiB: the whole default comparison (25 cells) settles in about two minutes on a 2-core VM,
#: where at 1 GiB (``--size 1GiB``, the reference case of the README's tables) its cells got
#: 8 rounds each in 4½ minutes and most did not settle.
DEFAULT_SIZE = "1024x32768"
#: Ten rounds at least: the first number of rounds whose 95% interval of a median drops the
#: extremes (with 6 to 9 it is their whole range, and one slow pass widens it).
DEFAULT_REPEAT = 10
#: Without --budget, a comparison may spend this long on extra rounds, shared among its cells as
#: they come (at least MIN_BUDGET each): a cell clearly behind its group's leader stops early and
#: leaves its share to the cells after it, so the rounds go where they decide the answer.
TOTAL_BUDGET, MIN_BUDGET = 120.0, 4.0
EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 1, 2, 130, 143


class UsageError(Exception):
    """Bad usage: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        raise UsageError(message)


def _size_spec(spec: str) -> str:
    """A size spec, checked (as float64) but kept as written: bytes hold more float32 than float64."""
    _size(spec)
    return spec


def _size(spec: str) -> tuple[int, int]:
    try:
        return parse_size(spec)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _whole(minimum: int):
    """An argparse type: a whole number of at least ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


_count, _non_negative = _whole(1), _whole(0)


def _slowdown(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 1.0 < value <= 2.0:
        raise argparse.ArgumentTypeError(f"must be above 1 and at most 2, got {text}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {text}")
    return value


def _limit(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be above 0 and finite, got {text}")
    return value


def _workload(text: str) -> str:
    try:
        return check_workload(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _console() -> Console:
    # Piped output gets a width a table fits in, not the 80 columns rich assumes.
    console = Console(highlight=False)
    return console if console.is_terminal else Console(highlight=False, width=200)


def _err_console() -> Console:
    return Console(stderr=True, highlight=False)


# ---- run -----------------------------------------------------------------------------------------

def _check_outputs(*outputs: tuple[str | None, str]) -> None:
    for path, option in outputs:
        if path:
            check_writable(path, option)


def _open_journal(args: argparse.Namespace, cases: list[compare.Case], machine: dict) -> tuple[Journal, dict]:
    """The journal this run appends to, and the results it already holds by cell (``--resume``)."""
    settings = {"seed": args.seed, "block_rows": args.block_rows, "repeat": args.repeat, "budget": args.budget,
                "digest": args.digest}
    if not args.resume:
        path = journal.default_path([args.json, args.csv, args.plot])
        try:
            return Journal.create(path, machine, settings), {}
        except OSError as error:
            raise ValueError(f"cannot write the journal {path}: {error.strerror}") from None
    opened, earlier = Journal.resume(args.resume, machine, settings)
    wanted = set(cases)
    for result in earlier:
        if compare.case_of(result) not in wanted:
            opened.close()
            raise ValueError(f"cannot resume {args.resume}: it holds {result.strategy} ×{result.workers} "
                             f"{describe(result.rows, result.cols, result.dtype)} {result.workload}, which this command does "
                             f"not ask for; give the options of the run it continues")
    # A cell that failed to run (not one that ran and did not verify) is tried again.
    return opened, {compare.case_of(r): r for r in earlier if not r.error}


def _hosts(text: str) -> str:
    hosts = [h.strip() for h in text.split(",")]
    if not all(hosts):
        raise argparse.ArgumentTypeError(f"hosts are comma-separated names, got {text!r}")
    return ",".join(hosts)


def cmd_run(args: argparse.Namespace) -> int:
    if args.hosts:
        mpi = [name for name, cls in REGISTRY.items() if cls.traits.launcher == "mpiexec"]
        if not args.nodes or max(args.nodes) != len(args.hosts.split(",")) or not args.strategy or \
                not set(args.strategy) <= set(mpi):
            raise ValueError(f"--hosts is for --strategy {' or '.join(mpi)} alone, with --nodes as many as the hosts")
        os.environ[HOSTS_ENV] = args.hosts
    names = args.strategy or compare.available_strategies()
    if args.peers:
        names = [each for name in names for each in (name, *[peer for peer in [peer_for(name)] if peer])]
        names = list(dict.fromkeys(names))
    workers = args.workers or sorted({1, 2, os.cpu_count() or 1})
    cases = compare.grid(names, workers, args.size or [DEFAULT_SIZE], args.workload or ["random"],
                         args.start_method or [DEFAULT_START_METHOD], args.dtype or [DEFAULT_DTYPE], args.nodes or [1])
    # Everything that can be refused is refused here, before a byte is allocated or a worker started.
    if not cases:  # only --nodes can leave none: each node needs a worker of its own
        raise ValueError(f"no cell to run: --nodes {min(args.nodes)} needs at least as many workers, and --workers "
                         f"gives at most {max(workers)}")
    compare.check_cases(cases, args.block_rows, args.force)
    _check_outputs((args.json, "--json"), (args.csv, "--csv"), (args.plot, "--plot"))
    machine = sysinfo.machine()
    opened, results = _open_journal(args, cases, machine)
    err = _err_console()
    quiet_stdout = args.json == "-" or args.csv == "-"
    # Without --budget the comparison's extra rounds share one total, spent where they decide.
    budget = (compare.Budget(MIN_BUDGET, TOTAL_BUDGET, len(cases) - len(results)) if args.budget is None
              else compare.Budget(args.budget))
    err.print(f"each finished cell is saved as it lands in {opened.path}"
              + (f" ({len(results)} of {len(cases)} cells already there)" if args.resume else ""), soft_wrap=True)
    before = noise.check()
    stop: BaseException | None = None
    with opened, Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=err, transient=True, disable=not err.is_terminal) as progress:
        task = progress.add_task("starting", total=len(cases) - len(results))

        def on_round(case: compare.Case, n: int) -> None:
            interrupts.check()
            where = f" {case.start_method}" if case.start_method else ""
            progress.update(task, description=f"{case.strategy}{where} ×{case.workers} "
                                              f"{describe(case.rows, case.cols, case.dtype)} {case.workload}: round {n}")

        shown: set[str] = set()

        def on_result(case: compare.Case, result: RunResult) -> None:
            # In the results before the journal: a record in the journal is in the outputs too,
            # whenever an interrupt lands.
            results[case] = result
            opened.add(result)
            progress.advance(task)
            if result.error:
                # One line; a kernel's own frames after it (the record keeps the whole traceback).
                err.print(escape(f"shmbench: cell failed, the comparison goes on: {case.strategy} ×{case.workers}: "
                                 + result.error), soft_wrap=True)
                if kernels.is_kernel(case.workload):
                    for frame in kernels.own_frames("\n".join(result.problems), case.workload):
                        if frame not in shown:  # once for the run: every cell of a group may fail alike
                            shown.add(frame)
                            err.print(escape(f"  {frame}"), soft_wrap=True, highlight=False)

        try:
            compare.run_grid(cases, args.seed, args.repeat, budget, args.block_rows, args.force,
                             on_result=on_result, on_round=on_round, skip=set(results), fail_fast=args.fail_fast,
                             digest=args.digest, timeout=args.timeout)
            interrupts.check()  # one dropped on its way (raised in a __del__) stops the run all the same
        except (KeyboardInterrupt, Exception) as error:  # what was measured is written all the same
            stop = error
    after = None if stop else noise.check()
    for when, reading in (("before", before), ("after", after)):
        line = noise.warning(reading, when) if reading else None
        if line:
            err.print(f"shmbench: warning: {line}")

    finished = [results[case] for case in cases if case in results]
    records = compare.records(finished)
    if records and not quiet_stdout:
        out = _console()
        report.print_table(records, out)
        for found in answers(records):
            out.print(escape(f"{found.title}: {found.headline}"), style="bold", soft_wrap=not out.is_terminal)
            out.print(escape("  " + " ".join(found.sentences)), soft_wrap=not out.is_terminal)
    if args.json:
        report.write_json(args.json, report.document(
            machine | {"single_core_fill_gbps": sysinfo.fill_bandwidth(), "noise_before": before,
                       "noise_after": after, "journal": opened.path}, records))
    if args.csv:
        report.write_csv(args.csv, records)
    if args.plot and records:
        report.plot(args.plot, records, compare.usable_cores())
        err.print(f"plot written to {args.plot}")
    for r in finished:
        if not r.verified and not r.error:
            err.print(escape(f"shmbench: {r.strategy} ({r.start_method}, {r.workers} workers) did not verify: "
                             + "; ".join(r.problems)), soft_wrap=True)
    if stop is not None:
        missing = len(cases) - len(finished)
        err.print(escape(f"shmbench: {missing} of {len(cases)} cells not measured; the rest are in {opened.path}; "
                         f"finish with the same command and --resume {opened.path}"), soft_wrap=True)
        raise stop
    return EXIT_FAILED if any(not r.verified for r in finished) else 0


# ---- demo ----------------------------------------------------------------------------------------

def _pause(args: argparse.Namespace, prompt: str) -> None:
    if args.pause:
        input(prompt)


def cmd_demo(args: argparse.Namespace) -> int:
    """The book's demonstration: 42 everywhere, workers write their PIDs, then the three checks."""
    out = _console()
    rows, cols = args.size
    plan = Plan(rows, cols, block_rows=args.block_rows)
    demo = create("mp_array", plan, args.workers, "pid", args.start_method)
    demo.check_fits(args.force)
    with Driver(demo) as driver:
        driver.phase("allocate")
        out.print(f"Created a shared multiprocessing.Array of {rows * cols:,} doubles ({describe(rows, cols)}), "
                  f"seen through np.frombuffer().reshape({rows}, {cols}); "
                  f"the view shares the array's memory: {demo.is_shared_view()}")
        driver.phase("prepare")
        out.print(f"Filled with {DEFAULT_VALUE}: {demo.matrix}")
        _pause(args, "Press Enter to start the workers...")
        driver.phase("start")
        driver.phase("fill")
        out.print(f"{len(demo.worker_ids)} workers ({demo.start_method}) wrote their PIDs into "
                  f"{plan.n_blocks} blocks of {plan.block_rows} row(s): {demo.matrix}")
        _pause(args, "Workers are alive (watch them in htop). Press Enter to check the matrix...")
        counts, problems = pid_counts(demo.matrix, plan)
        out.print("Elements written by each worker:")
        pids_table = Table("PID", "elements written")
        for pid, count in sorted(counts.items()):
            pids_table.add_row(str(pid), f"{count:,}")
        out.print(pids_table)
        checks = [
            (f"no {DEFAULT_VALUE} is left", not problems and DEFAULT_VALUE not in counts),
            (f"per-PID counts sum to {rows * cols:,}", sum(counts.values()) == rows * cols),
            (f"every one of the {args.workers} workers did some work",
             set(counts) == set(demo.worker_ids) or (plan.n_blocks < args.workers and len(counts) == plan.n_blocks)),
            ("the parent's matrix is the shared array, not a copy", demo.is_shared_view()),
        ]
        for text, ok in checks:
            out.print(f"[{'green' if ok else 'red'}]{'✔' if ok else '✘'}[/] {text}")
        _memory_table(out, demo, plan)
    return 0 if all(ok for _, ok in checks) else EXIT_FAILED


# ---- memory --------------------------------------------------------------------------------------

def _mib(value: int) -> str:
    return f"{value / 2**20:,.1f}"


def _memory_table(out: Console, instance, plan: Plan) -> None:
    rows = memory.snapshot(processes(instance))
    title = (f"{instance.name}: memory per process, MiB (matrix {_mib(plan.nbytes)} MiB)")
    table = Table("process", "PID", "RSS", "PSS", "USS", "shared", "matrix mapping (pmap -x)", title=title)
    for m in rows:
        maps = memory.segment_maps(m.pid, instance.mapping_name) if instance.mapping_name else []
        where = "\n".join(f"{x['path']}  size {_mib(x['size'])}  rss {_mib(x['rss'])}  pss {_mib(x['pss'])}"
                          for x in maps) or ("private memory (no shared mapping)" if not instance.traits.shares_memory
                                             else "–")
        table.add_row(m.role, str(m.pid), _mib(m.rss), _mib(m.pss), _mib(m.uss), _mib(m.shared), where)
    total = memory.total_pss(rows)
    table.caption = f"total PSS {_mib(total)} MiB = {total / plan.nbytes:.2f} × the matrix"
    out.print(table)


def cmd_memory(args: argparse.Namespace) -> int:
    out = _console()
    rows, cols = args.size
    plan = Plan(rows, cols)
    names = args.strategy or [n for n in compare.available_strategies() if REGISTRY[n].traits.processes
                              and (args.nodes == 1 or REGISTRY[n].traits.nodes)]
    # As in ``run``: a strategy keeps its own way of starting workers (book, joblib, ...).
    instances = [create(n, plan, args.workers, args.workload,
                        args.start_method if args.start_method in REGISTRY[n].traits.start_methods else None,
                        args.nodes)
                 for n in names]
    for instance in instances:
        instance.check_fits(args.force)
    for instance in instances:
        with Driver(instance, prefault=False) as driver:
            driver.open()
            driver.first_pass(verify=False)
            _memory_table(out, instance, plan)
    return 0


# ---- report --------------------------------------------------------------------------------------

def cmd_report(args: argparse.Namespace) -> int:
    _check_outputs((args.html, "--html"), (args.output, "--output"))
    if args.html:
        from .report.html import write

        write(args.results, args.html)
        _err_console().print(f"report written to {args.html}")
        return 0
    if os.path.isdir(args.results):
        raise ValueError("a directory of asv results makes an HTML report: add --html PATH")
    text = report.markdown(report.read_json(args.results))
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        with atomic(args.output) as stream:
            stream.write(text)
        _err_console().print(f"report written to {args.output}")
    return 0


# ---- compare -------------------------------------------------------------------------------------

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
    from .report.side_by_side import answers as both_answers, rows

    a, b = (report.read_json(path)["results"] for path in (args.a, args.b))
    out = _console()
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


# ---- publish -------------------------------------------------------------------------------------

def cmd_publish(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .report.publish import asv_publish, vendor

    config = Path(args.config).resolve()
    if not config.is_file():
        raise ValueError(f"no asv configuration at {args.config}")
    html_dir = asv_publish(config)
    done = vendor(html_dir)
    err = _err_console()
    if done.reason:
        err.print(escape(f"shmbench: the pages still load {len(done.remote)} scripts and styles from public CDNs: "
                         f"{done.reason}"), soft_wrap=True)
    else:
        err.print(f"{len(done.local)} scripts and styles now served from {html_dir / 'vendor'}")
    _console().print(f"published {html_dir / 'index.html'}; browse it with: asv preview "
                     f"(or python -m http.server -d {html_dir})", soft_wrap=True)
    return 0


# ---- drill ---------------------------------------------------------------------------------------

def cmd_drill(args: argparse.Namespace) -> int:
    from . import gate

    _err_console().print(f"drill: two commits in a throw-away clone of {os.path.abspath(args.repo)}, the gate "
                         f"on each {args.gates} time(s) (factor {args.factor}); this takes minutes", soft_wrap=True)
    try:
        line = gate.drill(args.repo, args.slowdown, args.factor, args.keep, args.gates,
                          progress=lambda said: _err_console().print(escape(said), soft_wrap=True))
    except gate.DrillError as error:
        _err_console().print(escape(f"shmbench: drill failed: {error}"), soft_wrap=True)
        return EXIT_FAILED
    _console().print(escape(line), soft_wrap=True)
    return 0


# ---- list, sysinfo -------------------------------------------------------------------------------

def cmd_list(args: argparse.Namespace) -> int:
    table = Table("strategy", "available", "workers", "shares memory", "across nodes (--nodes)", "what it is")
    for name, cls in REGISTRY.items():
        reason, traits = cls.unavailable_reason(), cls.traits
        if not traits.processes:
            workers = "none" if not traits.parallel else traits.launcher
        else:
            workers = f"processes ({traits.launcher}: {', '.join(traits.start_methods)})" if traits.start_methods \
                else f"processes ({traits.launcher})"
        table.add_row(name, "yes" if reason is None else f"no: {reason}", workers,
                      "yes" if traits.shares_memory else "no", traits.nodes or "one node only", cls.summary)
    _console().print(table)
    return 0


def cmd_sysinfo(args: argparse.Namespace) -> int:
    table = Table("fact", "value", show_header=False)
    for key, value in sysinfo.machine().items():
        if key.endswith("_bytes") and value is not None:
            value = f"{value / 2**30:.2f} GiB"
        table.add_row(key.replace("_bytes", ""), escape(str(value)))
    _console().print(table)
    return 0


# ---- parser --------------------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    top = _Parser(prog="shmbench", description="How should processes share one large numpy matrix, "
                                                "and what does each way cost?")
    sub = top.add_subparsers(dest="command", required=True, parser_class=_Parser)
    methods = [m for m in START_METHODS]

    run = sub.add_parser("run", help="compare strategies: table, JSON, CSV, plot")
    run.add_argument("--strategy", action="append", choices=list(REGISTRY), help="repeatable; default: all available")
    run.add_argument("--peers", action="store_true",
                     help="put each engine contender's peer beside it: the same job as its engine's own "
                          "documentation has it written (shmbench.peers; random and rowsum)")
    run.add_argument("--workers", action="append", type=_count, help="repeatable; default: 1, 2 and the core count")
    run.add_argument("--nodes", action="append", type=_count,
                     help="repeatable; split each cell's workers across this many nodes (mpi, ray, dask; "
                          "pretend nodes on this machine); default 1")
    run.add_argument("--hosts", type=_hosts, metavar="A,B,...",
                     help="mpi's nodes are these hosts (mpiexec -hosts), not pretend ones; run from the first")
    run.add_argument("--size", action="append", type=_size_spec,
                     help=f"ROWSxCOLS or bytes (256MiB, 1GiB: as many elements of the dtype as fit); repeatable; "
                          f"default {DEFAULT_SIZE}")
    run.add_argument("--dtype", action="append", choices=list(DTYPES),
                     help=f"the matrix's element type; repeatable; default {DEFAULT_DTYPE}")
    run.add_argument("--workload", action="append", type=_workload, metavar="WORKLOAD",
                     help=f"{', '.join(WORKLOADS)}, or a kernel of yours as module:function or path/file.py:function "
                          f"(see shmbench.kernels); repeatable; default random")
    run.add_argument("--start-method", action="append", choices=methods,
                     help=f"repeatable; default {DEFAULT_START_METHOD}")
    run.add_argument("--seed", type=_non_negative, default=0)
    run.add_argument("--repeat", type=_non_negative, default=DEFAULT_REPEAT,
                     help=f"at least this many warm passes per cell, each paired with serial's and the "
                          f"yardstick's (default {DEFAULT_REPEAT}; 0: the cold pass alone)")
    run.add_argument("--budget", type=_seconds, metavar="SECONDS",
                     help=f"after --repeat, more rounds until every figure is within ±3%%, for at most "
                          f"this long per cell (default: {TOTAL_BUDGET:g} s for the whole comparison, shared "
                          f"among the cells as they come, at least {MIN_BUDGET:g} s each; a cell clearly "
                          f"behind its group's leader stops early)")
    run.add_argument("--timeout", type=_limit, metavar="SECONDS",
                     help=f"the limit on each phase of each pass (serial's included): a cell past it fails, "
                          f"naming the workers still busy, and the comparison goes on (default: "
                          f"{deadline.LIMIT_FACTOR:g}x serial's slowest phase, at least {deadline.LIMIT_FLOOR:g} s; "
                          f"{deadline.FIRST_LIMIT:g} s for serial's first pass)")
    run.add_argument("--block-rows", type=_count, help="rows per block (default: about 8 MiB blocks)")
    run.add_argument("--json", metavar="PATH", help="write results as JSON ('-' for stdout)")
    run.add_argument("--csv", metavar="PATH", help="write results as CSV ('-' for stdout)")
    run.add_argument("--plot", metavar="PATH.png", help="write a PNG plot of time and memory")
    run.add_argument("--digest", action="store_true", help="put the sha256 of each cell's output in its record")
    run.add_argument("--resume", metavar="JOURNAL",
                     help="finish an interrupted comparison: run only the cells its journal does not hold")
    run.add_argument("--fail-fast", action="store_true",
                     help="stop at the first cell that fails (default: record it and go on)")
    run.add_argument("--force", action="store_true", help="run even where the memory preflight refuses")
    run.set_defaults(handler=cmd_run)

    demo = sub.add_parser("demo", help="the book's demonstration: PIDs written into a shared matrix")
    demo.add_argument("--workers", type=_count, default=os.cpu_count() or 1)
    demo.add_argument("--size", type=_size, default=parse_size("1000x1000"))
    demo.add_argument("--block-rows", type=_count, default=1, help="1 is the book's one task per row")
    demo.add_argument("--start-method", choices=methods, default=DEFAULT_START_METHOD)
    demo.add_argument("--pause", action="store_true", help="wait for Enter at the book's two points")
    demo.add_argument("--force", action="store_true")
    demo.set_defaults(handler=cmd_demo)

    mem = sub.add_parser("memory", help="per-process RSS/PSS/USS and the shared mapping, like pmap -x")
    mem.add_argument("--strategy", action="append", choices=list(REGISTRY))
    mem.add_argument("--workers", type=_count, default=2)
    mem.add_argument("--nodes", type=_count, default=1, help="split the workers across this many nodes (mpi, ray, dask)")
    mem.add_argument("--size", type=_size, default=parse_size("256MiB"))
    mem.add_argument("--workload", type=_workload, default="random", metavar="WORKLOAD",
                     help=f"{', '.join(WORKLOADS)}, or module:function / path/file.py:function (default random)")
    mem.add_argument("--start-method", choices=methods, default=DEFAULT_START_METHOD)
    mem.add_argument("--force", action="store_true")
    mem.set_defaults(handler=cmd_memory)

    rep = sub.add_parser("report", help="a summary of a run (markdown, or one HTML file), or of asv's results")
    rep.add_argument("results", help="a JSON file written by shmbench run --json, or an asv results directory")
    rep.add_argument("-o", "--output", help="write the markdown here instead of stdout")
    rep.add_argument("--html", metavar="PATH", help="write one self-contained HTML page instead")
    rep.set_defaults(handler=cmd_report)

    cmp = sub.add_parser("compare", help="two runs side by side: each cell's figures, what moved beyond its noise")
    cmp.add_argument("a", help="a JSON file written by shmbench run --json (A)")
    cmp.add_argument("b", help="another one (B), compared with A")
    cmp.set_defaults(handler=cmd_compare)

    pub = sub.add_parser("publish", help="asv publish, with every script and style served from the tree")
    pub.add_argument("--config", default="asv.conf.json", help="the asv configuration (default asv.conf.json)")
    pub.set_defaults(handler=cmd_publish)

    drill = sub.add_parser("drill", help="prove the asv regression gate on this machine with a known slowdown")
    drill.add_argument("--slowdown", type=_slowdown, default=1.10,
                       help="the extra work the slowed commit's worker core does (default 1.10)")
    drill.add_argument("--factor", type=_slowdown, default=GATE_FACTOR, help=f"the gate's factor (default {GATE_FACTOR})")
    drill.add_argument("--repo", default=".", help="the shmbench checkout to clone (default .)")
    drill.add_argument("--keep", action="store_true", help="keep the throw-away clone and its asv results")
    drill.add_argument("--gates", type=_count, default=1,
                       help="gate each commit this many times, to count false alarms (default 1; ten take about an hour)")
    drill.set_defaults(handler=cmd_drill)

    sub.add_parser("list", help="every strategy, available or not and why").set_defaults(handler=cmd_list)
    sub.add_parser("sysinfo", help="the machine block recorded with every result").set_defaults(handler=cmd_sysinfo)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    err = _err_console()
    try:
        args = parser().parse_args(argv)
    except UsageError as error:
        err.print(escape(f"shmbench: error: {error}"), soft_wrap=True)
        return EXIT_USAGE
    try:
        with interrupts.handled():
            return args.handler(args)
    except (PreflightError, ValueError) as error:
        err.print(escape(f"shmbench: error: {error}"), soft_wrap=True)
        return EXIT_USAGE
    except (WorkerError, WorkerDiedError, PublishError, deadline.TimeLimit) as error:
        err.print(escape(f"shmbench: run failed: {error}"), soft_wrap=True)
        return EXIT_FAILED
    except BrokenPipeError:
        # The reader of our output went away (e.g. `| head`); say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except KeyboardInterrupt as stop:
        # A library may raise an interrupt of its own for our SIGTERM.
        terminated = isinstance(stop, interrupts.Terminated) or interrupts.received() == signal.SIGTERM
        err.print(f"shmbench: interrupted by {'SIGTERM' if terminated else 'SIGINT'}; workers stopped and shared "
                  "memory released")
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
