"""Threads of the parent, writing their rows of one matrix in place (numpy releases the GIL)."""
from __future__ import annotations

import numpy as np

from ..runtimes.local import Threads as ThreadRuntime
from .base import Strategy, Traits


class Threads(Strategy):
    name = "threads"
    summary = "W threads of the parent writing blocks in place (pid: native thread ids)"
    traits = Traits(launcher="threads")
    runtime = ThreadRuntime

    def allocate(self) -> None:
        self.storage = np.empty(self.plan.storage_shape, self.plan.dtype)
