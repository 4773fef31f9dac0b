"""A kernel worth copying: a 2-D smoothing stencil over a shared input.

Each output element is the mean of its input element and its four neighbours (edges clamped).
A block reads one input row above and one below its own, which other workers' blocks hold: the
case where sharing the input matters most. Strategies that share memory read those rows in place;
a copying strategy (pickled, ray) ships the whole input to every worker.

Compare it across every strategy (float32 or float64):

    shmbench run --workload docs/examples/smooth.py:smooth --dtype float32 --workers 2 --size 256MiB --digest

shmbench calls ``smooth`` once per block, in whichever worker owns the block, and checks every
strategy's output against serial's bit for bit, then runs ``check`` below on it.
"""
import numpy as np


def smooth(out, rows, rng, input):
    """Write the smoothed ``rows`` of ``input`` into ``out`` (``rng`` is not needed here).

    In place, with no temporaries: a kernel's temporaries are allocated and freed for every block,
    and large ones can cost more page faults than the arithmetic (this one's first version, with
    two block-sized copies, ran 3x slower in one process than in another).
    """
    if out.dtype.kind != "f":
        raise TypeError(f"smooth averages floats; this matrix is {out.dtype}")
    start, stop, last = rows.start, rows.stop, input.shape[0] - 1
    centre = input[start:stop]
    # The rows above and below, from the input (a neighbour's rows at the block's edges).
    out[0] = input[max(start - 1, 0)]
    out[1:] = input[start:stop - 1]
    out[:-1] += input[start + 1:stop]
    out[-1] += input[min(stop, last)]
    out += centre
    out[:, 1:] += centre[:, :-1]
    out[:, 0] += centre[:, 0]
    out[:, :-1] += centre[:, 1:]
    out[:, -1] += centre[:, -1]
    out /= 5


def check(matrix):
    """The mean of values in [0, 1) stays in [0, 1]."""
    return bool(matrix.min() >= 0.0 and matrix.max() <= 1.0)
