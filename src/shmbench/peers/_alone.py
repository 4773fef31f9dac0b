"""A peer run alone, as its script: a cold pass, warm passes, their times and a check of the result
against the plan's (the same worker core filling the whole matrix in this process)."""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np

from ..plan import Plan
from ..sizes import parse_size
from ..work import fill_rows, prepare


def options(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="one engine's own way of sharing the matrix, run alone")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", default="256MiB", help="ROWSxCOLS or bytes (default 256MiB)")
    parser.add_argument("--workload", choices=["random", "rowsum"], default="random")
    parser.add_argument("--repeat", type=int, default=6, help="warm passes after the first (default 6)")
    return parser.parse_args(argv)


def expected(plan: Plan, workload: str, matrix: np.ndarray) -> np.ndarray:
    """What the pass must produce: the plan's matrix, or the sums of the input's rows."""
    if workload == "rowsum":
        return fill_rows(matrix, plan, range(plan.rows), "rowsum", 0)
    want = np.empty_like(matrix)
    fill_rows(want, plan, range(plan.rows), workload, 0)
    return want


def main(peer_class, argv: list[str] | None = None) -> int:
    args = options(argv)
    plan = Plan(*parse_size(args.size))
    times = []
    with tempfile.TemporaryDirectory(prefix="shmbench-peer-") as scratch:
        peer = peer_class(plan, args.workers, scratch)
        began = time.perf_counter()
        peer.start()
        print(f"start: {time.perf_counter() - began:.3f} s")
        # A peer whose engine has the parent's matrix made its own way (joblib's memmap) says so.
        matrix = getattr(peer, "matrix", None)
        matrix = np.empty(plan.storage_shape, plan.dtype) if matrix is None else matrix
        try:
            for _ in range(1 + args.repeat):
                prepare(matrix, args.workload, plan)
                began = time.perf_counter()
                out = peer.run(args.workload, matrix)
                times.append(time.perf_counter() - began)
            out = matrix if out is None else out
            ok = np.array_equal(out, expected(plan, args.workload, matrix))
        finally:
            peer.close()
    print(f"cold pass: {times[0]:.4f} s; warm median of {args.repeat}: {statistics.median(times[1:]):.4f} s")
    print("verified: the plan's result bit for bit" if ok else "NOT VERIFIED")
    return 0 if ok else 1
