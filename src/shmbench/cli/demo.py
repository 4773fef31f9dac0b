"""``shmbench demo`` (the book's demonstration and its checks) and ``shmbench memory`` (memory per process)."""
from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from .. import compare
from .._system import memory
from ..plan import Plan
from ..runner import Driver, processes
from ..sizes import describe
from ..strategies import REGISTRY, create
from ..verify import pid_counts
from ..work import DEFAULT_VALUE

from .common import EXIT_FAILED, console


def _pause(args: argparse.Namespace, prompt: str) -> None:
    if args.pause:
        input(prompt)


#: The demonstration is the book's storage (``multiprocessing.Array`` seen through numpy) on workers
#: that each own a share, so that its third check (every worker did some work) holds by design.
DEMO = "mp_array"


def cmd_demo(args: argparse.Namespace) -> int:
    """The book's demonstration: 42 everywhere, workers write their PIDs, then the three checks."""
    out = console()
    rows, cols = args.size
    plan = Plan(rows, cols, block_rows=args.block_rows)
    demo = create(DEMO, plan, args.workers, "pid", args.start_method)
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
    out = console()
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
