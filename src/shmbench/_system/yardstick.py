"""The yardstick: raw numpy of a cell's parallelism, timed beside it to read what the machine gave.

None of shmbench's code runs in it, so a change of ours never moves it; a slow spell or a lost
core does. ``paired`` times it in every round, ``noise`` before and after a comparison.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .pages import unforked_array

#: The yardstick's array is the matrix's size up to this, to keep the live memory small.
YARDSTICK_MAX_BYTES = 256 * 2**20


def yardstick_bytes(nbytes: int) -> int:
    """The yardstick's size beside a matrix of ``nbytes``."""
    return min(nbytes, YARDSTICK_MAX_BYTES)


#: What the yardstick does to its array, by the workload it stands beside: the same kind of work.
#: ``check+fill`` is pid's: read a block for a value, then write it. A plain fill beside pid moved
#: by 7% between processes here where the two did the same work moved by 1% (one CPU each).
YARDSTICK_KINDS = {"random": "random", "legacy-random": "random", "pid": "check+fill", "rowsum": "sum"}
#: The yardstick's ``check+fill`` goes block by block, as the worker core does (its temporaries alike).
_CHUNK_ELEMENTS = 2**20


class Yardstick:
    """Raw numpy over one array split among ``threads`` threads — ``Generator.random(out=)``, a
    check then a fill, or a row sum, the kind of work of the workload beside it: the cell's parallelism and
    none of shmbench's code, so a change of ours never moves it."""

    def __init__(self, nbytes: int, threads: int, workload: str = "random") -> None:
        self.threads = threads
        self.kind = YARDSTICK_KINDS.get(workload, "random")
        # Small pages: a huge page or not is luck that differs from process to process, and a
        # memory-bound pass (a fill) moves with it by more than the changes the gate must see.
        self.array = unforked_array((max(threads, yardstick_bytes(nbytes) // 8),), "float64", huge_pages=False)
        self.parts = np.array_split(self.array, threads)
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="shmbench-yardstick") if threads > 1 else None
        self.run()  # fault the pages in: the yardstick measures warm fills only

    @property
    def nbytes(self) -> int:
        return self.array.nbytes

    def _fill(self, index: int) -> None:
        part = self.parts[index]
        if self.kind == "check+fill":
            for start in range(0, part.size, _CHUNK_ELEMENTS):
                chunk = part[start:start + _CHUNK_ELEMENTS]
                (chunk != 42.0).any()  # read all of it, as pid's check does
                chunk.fill(42.0)
        elif self.kind == "sum":
            part.sum()
        else:
            np.random.Generator(np.random.PCG64(index)).random(out=part)

    def run(self) -> float:
        """One pass; its seconds."""
        start = time.perf_counter()
        if self.pool is None:
            self._fill(0)
        else:
            for future in [self.pool.submit(self._fill, i) for i in range(self.threads)]:
                future.result()
        return time.perf_counter() - start

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()
        self.array = self.parts = None
