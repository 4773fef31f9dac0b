"""Across nodes: the contenders that run on several (``--nodes``; pretend nodes on this machine).

``time_fill`` is the warm fill with its ``internode`` phase and collect, workers split evenly across
the nodes; ``track_internode_bytes`` the bytes one pass moved between nodes. Strategies that run on
one node are skipped with that reason at every node count, and so is every cell of a commit from
before ``--nodes`` (their one-node cells are ``bench_fill.Fill``'s).
"""
from __future__ import annotations

from .common import (NODES, NODES_SIZE, PHASE_TIMEOUT, STRATEGIES, WORKERS, Driver, HeavyBenchmark, live, runnable,
                     verify_first_sample)


class Nodes(HeavyBenchmark):
    params = [STRATEGIES, [NODES_SIZE], [max(WORKERS)], NODES]
    param_names = ["strategy", "size", "workers", "nodes"]

    def setup(self, strategy, size, workers, nodes):
        self.driver = None  # asv calls teardown even after setup skipped the cell
        # Skips only, allocating nothing; a strategy on one node is skipped at every node count
        # (its one-node cells are ``bench_fill.Fill``'s).
        runnable(strategy, size, workers, nodes=max(NODES))
        if nodes > workers:
            raise NotImplementedError(f"{nodes} nodes need at least {nodes} workers")
        self.key = ("nodes", strategy, size, workers, nodes)
        self.driver = live(self.key, lambda: Driver(runnable(strategy, size, workers, nodes=nodes),
                                                    timeout=PHASE_TIMEOUT))
        self.driver.strategy.prepare()

    def time_fill(self, strategy, size, workers, nodes):
        self.driver.fill_and_collect()

    def track_internode_bytes(self, strategy, size, workers, nodes):
        """Bytes one pass moved between nodes (0 on one node, except Dask's: nothing is shared there)."""
        return self.driver.strategy.internode_bytes

    track_internode_bytes.unit = "bytes"

    def teardown(self, strategy, size, workers, nodes):
        verify_first_sample(self.driver, getattr(self, "key", None))
