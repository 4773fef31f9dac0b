"""A user's kernel module with no ``check``: nothing but serial's output can judge its kernels."""
import os
import time


def restless(out, rows, rng, input):
    """Never the same twice, and nothing to check it by."""
    out.fill((os.getpid() + time.perf_counter_ns()) % 1000 / 1000)
