"""Ray's shared-memory object store on this node: W actors return their rows through it.

The store is immutable, so nothing is written in place: each actor fills rows of its own and
returns them; the return is copied into the store, and the parent reads it zero-copy and
assembles the matrix (``collect``). For ``rowsum`` the parent puts its input into the store once
per pass and every actor reads its share of that one copy.
"""
from __future__ import annotations

import numpy as np

from .._system import preflight
from ..runtimes.ray import RayActors, store_bytes
from .base import Strategy, Traits


class RayStore(Strategy):
    name = "ray"
    summary = "Ray's object store on this node: W actors return blocks through it; the parent assembles them"
    traits = Traits(launcher="ray", shares_memory=False, needs=("ray",), extra="ray",
                    nodes="ray.cluster_utils.Cluster: a raylet and an object store per node, on this machine")
    runtime = RayActors
    private_rows = True

    def need(self) -> preflight.Need:
        # The parent's matrix, the stores (in /dev/shm, one a node) and each actor's private rows.
        store = store_bytes(self.plan.storage_nbytes) * self.nodes
        return preflight.Need(self.plan.storage_nbytes + self.plan.nbytes + store + preflight.process_overhead(self.workers + 4, True), store)

    def allocate(self) -> None:
        self.storage = np.empty(self.plan.storage_shape, self.plan.dtype)
