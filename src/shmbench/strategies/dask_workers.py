"""Dask: ``dask.distributed`` with a local cluster of W worker processes, one thread each.

What most PyData users try first for arrays larger than one machine. Its workers share no memory,
even on one host, so each is a node of its own for data: it fills private blocks of its share,
which travel over Dask's comms to the parent, which copies them into its matrix, all in
``internode`` (``collect`` has nothing left to do). The client talks to the workers directly
(``direct_to_workers=True``, Dask's way for a client outside the cluster), and an input is
scattered once per pass, each worker getting the rows it reads. ``--nodes`` is taken for
uniformity with the other engines: it only labels the workers.
"""
from __future__ import annotations

import numpy as np

from .._system import preflight
from ..runtimes.dask_cluster import DaskWorkers
from .base import Strategy, Traits


class DaskStrategy(Strategy):
    name = "dask"
    summary = ("dask.distributed LocalCluster of W one-thread processes (Dask's threads are the threads case), "
               "direct_to_workers: private blocks sent straight to the parent")
    traits = Traits(launcher="dask", shares_memory=False, needs=("distributed",), extra="dask",
                    nodes="every worker is a node for data (nothing shared, even on one host); --nodes only labels them")
    runtime = DaskWorkers
    private_rows = True

    def need(self) -> preflight.Need:
        # The parent's storage, the workers' private rows (one matrix in all), the answers in flight
        # (one more matrix at the end of a collect) and an input: its rows, or all of it to every
        # worker for a kernel.
        shipped = 0
        if self.plan.with_input or self.work.reads:
            shipped = self.workers if self.work.whole_input else 1
        ram = self.plan.storage_nbytes + 2 * self.plan.nbytes + shipped * self.plan.nbytes
        return preflight.Need(ram + preflight.process_overhead(self.workers + 1, True), 0)

    def collect(self) -> None:
        """Nothing: the rows came to the parent in ``internode``."""

    def allocate(self) -> None:
        self.storage = np.empty(self.plan.storage_shape, self.plan.dtype)
