"""Ray's peer: what Ray's documentation has a user write for this job.

``ray.init(num_cpus=W)`` with Ray's own default object store; one remote task per share, each
returning a new array (Ray puts it in the object store), ``ray.get`` reading the results zero-copy
and the driver copying them into its preallocated matrix. For ``rowsum`` the input is put into the
store once per pass (``ray.put``) and every task reads its rows of that one copy. Ray runs in its
single-machine mode, as the ``ray`` strategy's does: on loopback only (traffic to the machine's
own address takes the loopback path anyway).
"""
from __future__ import annotations

from contextlib import ExitStack

import numpy as np

from ..plan import Plan
from ..runtimes.ray import on_loopback
from ..work import fill_rows


def _fill(plan: Plan, rows: range, workload: str) -> np.ndarray:
    out = np.empty((len(rows), plan.cols), plan.dtype)
    fill_rows(out, plan, rows, workload, 0, first_row=rows.start)
    return out


def _rowsum(plan: Plan, rows: range, matrix: np.ndarray) -> np.ndarray:
    return fill_rows(matrix, plan, rows, "rowsum", 0)


class Peer:
    def __init__(self, plan: Plan, workers: int, scratch: str | None = None) -> None:
        self.plan, self.shares, self.scratch = plan, plan.share_rows(workers), scratch
        self._local = ExitStack()  # Ray's single-machine mode, until close

    def start(self) -> None:
        import ray

        self._local.enter_context(on_loopback())
        ray.init(num_cpus=len(self.shares), include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                 _temp_dir=self.scratch)
        self.fill, self.rowsum = ray.remote(_fill), ray.remote(_rowsum)

    def run(self, workload: str, matrix: np.ndarray) -> np.ndarray | None:
        import ray

        if workload == "rowsum":
            stored = ray.put(matrix)
            return np.concatenate(ray.get([self.rowsum.remote(self.plan, rows, stored) for rows in self.shares]))
        blocks = ray.get([self.fill.remote(self.plan, rows, workload) for rows in self.shares])
        for rows, block in zip(self.shares, blocks):
            matrix[rows.start:rows.stop] = block
        return None

    def close(self) -> None:
        import ray

        ray.shutdown()
        self._local.close()


if __name__ == "__main__":
    from ._alone import main

    raise SystemExit(main(Peer))
