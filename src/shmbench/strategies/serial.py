"""The baseline: the parent fills its own matrix, no other process involved."""
from __future__ import annotations

import numpy as np

from ..runtimes.local import Inline
from .base import Strategy, Traits


class Serial(Strategy):
    name = "serial"
    summary = "the parent fills the matrix itself; no processes, no sharing"
    traits = Traits(launcher="none", role="reference")
    runtime = Inline
    #: How the matrix is made; a comparison keeps serial's out of forked workers (``unforked_array``).
    allocator = staticmethod(np.empty)

    def allocate(self) -> None:
        self.storage = self.allocator(self.plan.storage_shape, self.plan.dtype)
