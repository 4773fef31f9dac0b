"""The copy baseline: each worker fills private rows, which travel back pickled through a pipe."""
from __future__ import annotations

import numpy as np

from .._system import preflight
from ..runtimes.base import START_METHODS
from ..runtimes.group import ProcessGroup
from .base import Strategy, Traits


class Pickled(Strategy):
    name = "pickled"
    summary = "workers fill private copies and return them pickled (rowsum: the input goes out pickled)"
    traits = Traits(launcher="multiprocessing", start_methods=START_METHODS, shares_memory=False, role="baseline",
                    label="the pickled copy")
    runtime = ProcessGroup
    private_rows = True

    def need(self) -> preflight.Need:
        # The parent's matrix, the workers' private rows (one matrix in all) and, per worker, a
        # block in flight three times: pickled by the worker, received, unpickled.
        block = self.plan.block_rows * self.plan.cols * self.plan.itemsize
        ram = self.plan.storage_nbytes + self.plan.nbytes + 3 * block * self.workers
        return preflight.Need(ram + preflight.process_overhead(self.workers, True), 0)

    def allocate(self) -> None:
        self.storage = np.empty(self.plan.storage_shape, self.plan.dtype)
