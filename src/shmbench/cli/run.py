"""``shmbench run``: a comparison, its journal, its outputs and its answer."""
from __future__ import annotations

import argparse
import os
import shlex
import time

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .. import compare, journal, kernels, report
from ..workloads import resolve
from .. import records as derived
from .._system import interrupts, noise, sysinfo
from ..journal import Journal
from ..result import RunResult
from ..plan import DEFAULT_DTYPE
from ..report.answer import answers
from ..sizes import describe
from ..strategies import REGISTRY, get, peer_for
from ..runtimes import dask_cluster
from ..runtimes import ray as ray_runtime
from ..runtimes import mpi as mpi_runtime
from ..runtimes.mpi import HOSTS_ENV
from ..runtimes.base import DEFAULT_START_METHOD

from .common import (DEFAULT_SIZE, EXIT_FAILED, MIN_BUDGET, SECOND_SITTINGS, TOTAL_BUDGET, check_outputs, console,
                     err_console)


def open_journal(args: argparse.Namespace, cases: list[compare.Case], machine: dict) -> tuple[Journal, dict]:
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


def _join(cases: list[compare.Case], address: str | None, flag: str, launcher: str, engine,
          asked: bool = True) -> None:
    """Hand the cells of ``launcher`` the running cluster at ``address`` to join (``engine``'s
    runtime reads it from ``engine.ADDRESS_ENV``); refused before anything runs where no cell
    would join it (unless it came from the engine's own variable), or it is unreachable or small."""
    if not address:
        return
    joining = [case for case in cases if get(case.strategy).traits.launcher == launcher]
    if not joining:
        if asked:
            raise ValueError(f"{flag} is for --strategy {launcher}: none of the cells would join it")
        return
    reason = engine.probe(address, max(case.workers for case in joining))
    if reason:
        raise ValueError(reason)
    os.environ[engine.ADDRESS_ENV] = address


def cmd_run(args: argparse.Namespace) -> int:
    began = time.monotonic()
    if args.hosts:
        mpi = [name for name, cls in REGISTRY.items() if cls.traits.launcher == "mpiexec"]
        if not args.nodes or max(args.nodes) != len(args.hosts.split(",")) or not args.strategy or \
                not set(args.strategy) <= set(mpi):
            raise ValueError(f"--hosts is for --strategy {' or '.join(mpi)} alone, with --nodes as many as the hosts")
        reason = mpi_runtime.probe_hosts(args.hosts.split(","))
        if reason:
            raise ValueError(reason)
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
    check_outputs((args.json, "--json"), (args.csv, "--csv"), (args.plot, "--plot"))
    _join(cases, args.dask_address, "--dask-address", "dask", dask_cluster)
    _join(cases, args.ray_address or os.environ.get("RAY_ADDRESS", "").strip(), "--ray-address", "ray", ray_runtime,
          asked=bool(args.ray_address))
    machine = sysinfo.machine()
    opened, results = open_journal(args, cases, machine)
    err = err_console()
    quiet_stdout = args.json == "-" or args.csv == "-"
    # Without --budget the comparison's extra rounds share one total, spent where they decide.
    budget = (compare.Budget(MIN_BUDGET, TOTAL_BUDGET, len(cases) - len(results), SECOND_SITTINGS)
              if args.budget is None else compare.Budget(args.budget))
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
            # whenever an interrupt lands. A second sitting's record replaces its first (and so
            # does its journal line, the later one counting on --resume).
            again = case in results
            results[case] = result
            opened.add(result)
            if not again:
                progress.advance(task)
            if result.error:
                # One line; a kernel's own frames after it (the record keeps the whole traceback).
                err.print(escape(f"shmbench: cell failed, the comparison goes on: {case.strategy} ×{case.workers}: "
                                 + result.error), soft_wrap=True)
                if resolve(case.workload).is_kernel:
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
    records = derived.records(finished)
    if records and not quiet_stdout:
        out = console()
        report.print_table(records, out)
        for found in answers(records):
            out.print(escape(f"{found.title}: {found.headline}"), style="bold", soft_wrap=not out.is_terminal)
            out.print(escape("  " + " ".join(found.sentences)), soft_wrap=not out.is_terminal)
    if args.json:
        report.write_json(args.json, report.document(
            machine | {"single_core_fill_gbps": sysinfo.fill_bandwidth(), "noise_before": before,
                       "noise_after": after, "journal": opened.path}, records,
            run={"command": shlex.join(["shmbench", *getattr(args, "argv", [])]),
                 "seconds": round(time.monotonic() - began, 1)}))
    if args.csv:
        report.write_csv(args.csv, records)
    if args.plot and records:
        report.plot(args.plot, records, derived.usable_cores())
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
