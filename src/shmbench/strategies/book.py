"""The book's recipe, kept as the reference every report measures against.

High Performance Python (ch. 9) forks a process pool over a ``multiprocessing.Array`` and maps
one task per row, chunked as ``Pool.map`` chunks them: ``mp_array`` storage with the pool runtime.
Each row's values come from the shared plan, so the matrix is serial's, bit for bit; with the
``legacy-random`` workload it is the book's code, repeated random streams included.
"""
from __future__ import annotations

from ..runtimes.pool import RowPool
from .base import Traits
from .mp_array import MpArray


class Book(MpArray):
    name = "book"
    summary = "the book's recipe as a reference: mp_array, fork, a pool mapping one task per row"
    # Workers take chunks from one queue: on a small matrix a quick worker may take them all,
    # and the book's "every worker did some work" check would fail by chance.
    traits = Traits(launcher="process pool", start_methods=("fork",), every_worker_gets_work=False, role="recipe",
                    label="the book's recipe")
    runtime = RowPool

    def prefault_pays(self) -> bool:
        return False  # the book does not prefault: the reference pays its first touch in the fill
