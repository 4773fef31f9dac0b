"""The copy baseline: each worker fills private blocks, which travel back pickled through a pipe."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import preflight
from ..plan import ITEMSIZE, Plan
from ..work import READ_ONLY
from ..workers import share_rows
from .base import ProcessStrategy


@dataclass
class _PrivateAttachment:
    def open(self, plan: Plan, share: range):
        rows = share_rows(plan, share)
        return np.empty((rows.stop - rows.start, plan.cols)), rows.start, lambda: None


class Pickled(ProcessStrategy):
    name = "pickled"
    summary = "workers fill private copies and return them pickled (rowsum: the input goes out pickled)"
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

    def fill(self) -> None:
        inputs = None
        if self.workload in READ_ONLY:  # no sharing: each worker gets its own copy of its input rows
            inputs = [self.matrix[share_rows(self.plan, share)] for share in self.plan.shares(self.workers)]
        self._note(self.group.fill(self.workload, self.check_default, on_sums=self.take_sums, inputs=inputs))

    def collect(self) -> None:
        if self.workload in READ_ONLY:
            return  # the input never changed; the sums came back with the fill
        def place(index: int, block: np.ndarray) -> None:
            self.matrix[self.plan.block(index)] = block

        self._note(self.group.collect(place))

    def is_shared_view(self) -> bool:
        return False
