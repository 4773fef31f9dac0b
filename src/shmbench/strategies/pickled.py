"""The copy baseline: each worker fills private blocks, which travel back pickled through a pipe."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import preflight
from ..plan import ITEMSIZE, Plan
from .base import ProcessStrategy


@dataclass
class _PrivateAttachment:
    def open(self, plan: Plan, share: range):
        first = plan.block(share.start).start if share else 0
        last = plan.block(share.stop - 1).stop if share else 0
        return np.empty((last - first, plan.cols)), first, lambda: None


class Pickled(ProcessStrategy):
    name = "pickled"
    summary = "workers fill private copies and return them pickled; the parent copies them in"
    shares_memory = False
    check_default = False  # a worker's rows are its own: no other worker can touch them

    def need(self) -> preflight.Need:
        # The parent's matrix, the workers' private blocks (one matrix in all) and, per worker,
        # a block in flight three times: pickled by the worker, received, unpickled.
        block = self.plan.block_rows * self.plan.cols * ITEMSIZE
        ram = 2 * self.plan.nbytes + 3 * block * self.workers
        return preflight.Need(ram + preflight.process_overhead(self.workers, True), 0)

    def allocate(self) -> None:
        self.matrix = np.empty(self.plan.shape)

    def attachment(self, slot: int) -> _PrivateAttachment:
        return _PrivateAttachment()

    def collect(self) -> None:
        def place(index: int, block: np.ndarray) -> None:
            self.matrix[self.plan.block(index)] = block

        self._note(self.group.collect(place))

    def is_shared_view(self) -> bool:
        return False
