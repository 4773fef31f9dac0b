"""The baseline: the parent fills its own matrix, no other process involved."""
from __future__ import annotations

import os

import numpy as np

from ..work import fill_blocks
from .base import Strategy


class Serial(Strategy):
    name = "serial"
    summary = "the parent fills the matrix itself; no processes, no sharing"
    parallel = False
    uses_processes = False

    def __init__(self, plan, workers=1, workload="random", start_method=None) -> None:
        super().__init__(plan, workers, workload, start_method)
        self.workers = 1  # whatever was asked: the parent is the only worker

    def allocate(self) -> None:
        self.matrix = np.empty(self.plan.shape)

    def fill(self) -> None:
        self.take_sums(0, fill_blocks(self.matrix, self.plan, range(self.plan.n_blocks), self.workload, os.getpid()))
