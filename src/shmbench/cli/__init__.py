"""The ``shmbench`` command: its parser and entry point; each command lives in a module of its own."""
from __future__ import annotations

import argparse
import atexit
import os
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

from rich.markup import escape

from .._system import deadline, interrupts
from ..gate import FACTOR as GATE_FACTOR
from ..plan import DEFAULT_DTYPE, DTYPES
from .._system.preflight import PreflightError
from ..report.publish import PublishError
from ..sizes import parse_size
from ..strategies import REGISTRY
from ..workloads import WORKLOADS
from ..runtimes.base import DEFAULT_START_METHOD, START_METHODS, WorkerDiedError, WorkerError

from .common import DEFAULT_REPEAT, DEFAULT_SIZE, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_USAGE, MIN_BUDGET, SECOND_SITTINGS, TOTAL_BUDGET, UsageError, err_console
from .args import Parser, as_count, as_hostfile, as_hosts, as_limit, as_non_negative, as_seconds, as_size, as_size_spec, as_slowdown, as_workload
from .run import cmd_run
from .demo import cmd_demo, cmd_memory
from .results import cmd_compare, cmd_drill, cmd_gate, cmd_publish, cmd_report, cmd_tables
from .machine import cmd_list, cmd_sysinfo


def parser() -> argparse.ArgumentParser:
    top = Parser(prog="shmbench", description="How should processes share one large numpy matrix, "
                                                "and what does each way cost?")
    sub = top.add_subparsers(dest="command", required=True, parser_class=Parser)
    methods = [m for m in START_METHODS]

    run = sub.add_parser("run", help="compare strategies: table, JSON, CSV, plot")
    run.add_argument("--strategy", action="append", choices=list(REGISTRY), help="repeatable; default: all available")
    run.add_argument("--peers", action="store_true",
                     help="put each engine contender's peer beside it: the same job as its engine's own "
                          "documentation has it written (shmbench.peers; random and rowsum)")
    run.add_argument("--workers", action="append", type=as_count, help="repeatable; default: 1, 2 and the core count")
    run.add_argument("--nodes", action="append", type=as_count,
                     help="repeatable; split each cell's workers across this many nodes (mpi, ray, dask; "
                          "pretend nodes on this machine); default 1")
    on_hosts = run.add_mutually_exclusive_group()
    on_hosts.add_argument("--hosts", type=as_hosts, metavar="A,B,...",
                          help="mpi's nodes are these hosts (mpiexec -hosts), not pretend ones; run from the first")
    on_hosts.add_argument("--hostfile", dest="hosts", type=as_hostfile, metavar="FILE",
                          help="the same from a hydra host file: a host a line (host or host:count; the counts "
                               "are not used, each node gets its block of ranks)")
    run.add_argument("--ray-address", metavar="ADDRESS",
                     help="join the Ray cluster whose head is here (host:port, or auto; default: $RAY_ADDRESS) "
                          "instead of starting one, from a node of that cluster; shmbench never starts or stops it")
    run.add_argument("--dask-address", metavar="ADDRESS",
                     help="join the Dask cluster whose scheduler is here (tcp://host:port or a scheduler file) "
                          "instead of starting one; shmbench never starts or stops it")
    run.add_argument("--size", action="append", type=as_size_spec,
                     help=f"ROWSxCOLS or bytes (256MiB, 1GiB: as many elements of the dtype as fit); repeatable; "
                          f"default {DEFAULT_SIZE}")
    run.add_argument("--dtype", action="append", choices=list(DTYPES),
                     help=f"the matrix's element type; repeatable; default {DEFAULT_DTYPE}")
    run.add_argument("--workload", action="append", type=as_workload, metavar="WORKLOAD",
                     help=f"{', '.join(WORKLOADS)}, or a kernel of yours as module:function or path/file.py:function "
                          f"(see shmbench.kernels); repeatable; default random")
    run.add_argument("--start-method", action="append", choices=methods,
                     help=f"repeatable; default {DEFAULT_START_METHOD}")
    run.add_argument("--seed", type=as_non_negative, default=0)
    run.add_argument("--repeat", type=as_non_negative, default=DEFAULT_REPEAT,
                     help=f"at least this many warm passes per cell, each paired with serial's and the "
                          f"yardstick's (default {DEFAULT_REPEAT}; 0: the cold pass alone)")
    run.add_argument("--budget", type=as_seconds, metavar="SECONDS",
                     help=f"after --repeat, more rounds until every figure is within ±3%%, for at most "
                          f"this long per cell (default: {TOTAL_BUDGET:g} s for the whole comparison, shared "
                          f"among the cells as they come, at least {MIN_BUDGET:g} s each; a cell clearly "
                          f"behind its group's leader stops early; and up to {SECOND_SITTINGS:g} s for second "
                          f"sittings of contenders that did not settle)")
    run.add_argument("--timeout", type=as_limit, metavar="SECONDS",
                     help=f"the limit on each phase of each pass (serial's included): a cell past it fails, "
                          f"naming the workers still busy, and the comparison goes on (default: "
                          f"{deadline.LIMIT_FACTOR:g}x serial's slowest phase, at least {deadline.LIMIT_FLOOR:g} s; "
                          f"{deadline.FIRST_LIMIT:g} s for serial's first pass)")
    run.add_argument("--block-rows", type=as_count, help="rows per block (default: about 8 MiB blocks)")
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
    demo.add_argument("--workers", type=as_count, default=os.cpu_count() or 1)
    demo.add_argument("--size", type=as_size, default=parse_size("1000x1000"))
    demo.add_argument("--block-rows", type=as_count, default=1, help="1 is the book's one task per row")
    demo.add_argument("--start-method", choices=methods, default=DEFAULT_START_METHOD)
    demo.add_argument("--pause", action="store_true", help="wait for Enter at the book's two points")
    demo.add_argument("--force", action="store_true")
    demo.set_defaults(handler=cmd_demo)

    mem = sub.add_parser("memory", help="per-process RSS/PSS/USS and the shared mapping, like pmap -x")
    mem.add_argument("--strategy", action="append", choices=list(REGISTRY))
    mem.add_argument("--workers", type=as_count, default=2)
    mem.add_argument("--nodes", type=as_count, default=1, help="split the workers across this many nodes (mpi, ray, dask)")
    mem.add_argument("--size", type=as_size, default=parse_size("256MiB"))
    mem.add_argument("--workload", type=as_workload, default="random", metavar="WORKLOAD",
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

    gate = sub.add_parser("gate", help="the asv regression gate between two commits: exit 1 on a confirmed slowdown")
    gate.add_argument("base", help="the commit to compare against (e.g. HEAD~1, main)")
    gate.add_argument("head", help="the commit under test (e.g. HEAD)")
    gate.add_argument("--factor", type=as_slowdown, default=GATE_FACTOR, help=f"the gate's factor (default {GATE_FACTOR})")
    gate.add_argument("--machine", default=None, help="asv's machine name (default: asv's own, from asv machine)")
    gate.add_argument("--repo", default=".", help="the shmbench checkout with asv.conf.json (default .)")
    gate.set_defaults(handler=cmd_gate)

    drill = sub.add_parser("drill", help="prove the asv regression gate on this machine with a known slowdown")
    drill.add_argument("--slowdown", type=as_slowdown, default=1.10,
                       help="the extra work the slowed commit's worker core does (default 1.10)")
    drill.add_argument("--factor", type=as_slowdown, default=GATE_FACTOR, help=f"the gate's factor (default {GATE_FACTOR})")
    drill.add_argument("--repo", default=".", help="the shmbench checkout to clone (default .)")
    drill.add_argument("--keep", action="store_true", help="keep the throw-away clone and its asv results")
    drill.add_argument("--gates", type=as_count, default=1,
                       help="gate each commit this many times, to count false alarms (default 1; ten take about an hour)")
    drill.set_defaults(handler=cmd_drill)

    tables = sub.add_parser("tables", help="render the README's and docs' tables of results from their JSON again")
    tables.add_argument("--check", action="store_true", help="render nothing; exit 5 if a table is stale")
    tables.add_argument("--root", default=".", help="the project's root (default .)")
    tables.set_defaults(handler=cmd_tables)

    sub.add_parser("list", help="every strategy, available or not and why").set_defaults(handler=cmd_list)
    sub.add_parser("sysinfo", help="the machine block recorded with every result").set_defaults(handler=cmd_sysinfo)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    err = err_console()
    try:
        args = parser().parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)
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


def command() -> NoReturn:
    """The ``shmbench`` command (and ``python -m shmbench``): ``main``, then the process's end.

    After an interrupt the records are written, the workers stopped and the memory released by
    the time ``main`` returns; the exit functions run, and then the process ends at once, as one
    ended by the signal would, without the interpreter's finalization: there Ray's core worker,
    its shutdown interrupted, died of SIGSEGV (2 of 10 tries here, 0 of 8 ending so)."""
    code = main()
    if code in (EXIT_INTERRUPTED, EXIT_TERMINATED):
        sys.stdout.flush()
        sys.stderr.flush()
        atexit._run_exitfuncs()  # what sys.exit would run before finalizing, and nothing more
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    command()
