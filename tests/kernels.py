"""Kernels the tests hand to shmbench by path (``tests/kernels.py:name``): good ones and bad ones.

Not a test module: workers import it by its path, as they would a user's file.
"""
import os
import time

import numpy as np


def draw(out, rows, rng, input):
    """Uses all it is given: the block's generator, its plan rows and the input."""
    if out.dtype.kind == "f":
        np.multiply(rng.random(out.shape, dtype=out.dtype), 0.5, out=out)
        out += input[rows.start:rows.stop] * out.dtype.type(0.5)
    else:
        np.bitwise_xor(rng.integers(0, 100, out.shape, dtype=out.dtype), input[rows.start:rows.stop], out=out)


def sums(block, rows, rng, input):
    """Read-only: one value per row, from its block and the input around it."""
    return block.sum(axis=1) + input[max(rows.start - 1, 0)].max()


sums.read_only = True


def short(block, rows, rng, input):
    """Read-only, but one value short."""
    return block.sum(axis=1)[:-1]


short.read_only = True


def raises(out, rows, rng, input):
    if rows.start > 0:
        raise ValueError("no such luck")
    out.fill(0)


def two_arguments(out, rows):
    out.fill(0)


def spills(out, rows, rng, input):
    """Writes its block, then the row after it: the next block's, another worker's at a share's end.
    Serial wrote that row before its own block overwrote it; a worker running beside this one
    wrote it long before (each block takes a few milliseconds), and the stray value stays."""
    out.fill(rows.start)
    time.sleep(0.005)
    out.base[rows.stop % input.shape[0]] = -5


def writes_input(out, rows, rng, input):
    out[...] = input[rows.start:rows.stop]
    input.base[-1 - rows.start] = 0.5  # the view's base is the shared storage, the input its lower half


def restless(out, rows, rng, input):
    """Never the same twice: judged by ``check`` alone."""
    out.fill((os.getpid() + time.perf_counter_ns()) % 1000 / 1000)


def negative(out, rows, rng, input):
    """Deterministic, but ``check`` refuses it."""
    out.fill(-1)


def check(matrix):
    return not (np.asarray(matrix) == -1).any()


def raises_in_workers(out, rows, rng, input):
    """Fine in the parent (serial's reference), refused in a worker process: a worker's failure."""
    import multiprocessing

    if multiprocessing.parent_process() is not None and rows.start > 0:
        raise ValueError("not in a worker")
    out.fill(0)


def hangs_in_workers(out, rows, rng, input):
    """Fine in the parent (serial's reference), never returns in a worker process."""
    import multiprocessing

    if multiprocessing.parent_process() is not None and rows.start > 0:
        while True:
            time.sleep(1)
    out.fill(0)


def hangs(out, rows, rng, input):
    """Never returns, wherever it runs: serial's reference hangs first."""
    while True:
        time.sleep(1)


def hogs_in_workers(out, rows, rng, input):
    """Fine in the parent (serial's reference, in the process ``$SHMBENCH_TEST_PARENT`` names); a
    worker process (ours, a pool's, a rank, an actor, a Dask worker) takes and touches 1 GiB."""
    if os.getpid() != int(os.environ["SHMBENCH_TEST_PARENT"]):
        np.ones(2**27)
    out.fill(0)


def collects(out, rows, rng, input):
    """Collects the garbage of its process first: in a forked worker, what it inherited as well."""
    import gc

    gc.collect()
    out.fill(rows.start)
