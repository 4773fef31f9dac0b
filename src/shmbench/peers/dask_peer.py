"""Dask's peer: what Dask's documentation has a user write for this job.

A ``LocalCluster`` of W one-thread worker processes and a client outside the cluster's network
path made with ``direct_to_workers=True`` (results come straight from the workers, not through the
scheduler); one task per share submitted with ``client.submit`` and left to the scheduler to place;
each returns a new array, which the client copies into its preallocated matrix. For ``rowsum`` the
input's rows are scattered (each share once per pass) and the tasks read them where they landed.
"""
from __future__ import annotations

import numpy as np

from ..plan import Plan
from ..work import fill_rows


def _fill(plan: Plan, rows: range, workload: str) -> np.ndarray:
    out = np.empty((len(rows), plan.cols), plan.dtype)
    fill_rows(out, plan, rows, workload, 0, first_row=rows.start)
    return out


def _rowsum(plan: Plan, rows: range, part: np.ndarray) -> np.ndarray:
    return fill_rows(part, plan, rows, "rowsum", 0, first_row=rows.start)


class Peer:
    def __init__(self, plan: Plan, workers: int, scratch: str | None = None) -> None:
        self.plan, self.shares, self.scratch = plan, plan.share_rows(workers), scratch

    def start(self) -> None:
        import dask
        from distributed import Client, LocalCluster

        # Housekeeping only: Dask's files (a lock beside the workers' space) go to the scratch folder.
        with dask.config.set({"temporary-directory": self.scratch} if self.scratch else {}):
            self.cluster = LocalCluster(n_workers=len(self.shares), threads_per_worker=1, processes=True,
                                        dashboard_address=None, local_directory=self.scratch)
        self.client = Client(self.cluster, direct_to_workers=True)

    def run(self, workload: str, matrix: np.ndarray) -> np.ndarray | None:
        client = self.client
        if workload == "rowsum":
            parts = [client.scatter(matrix[rows.start:rows.stop], hash=False) for rows in self.shares]
            futures = [client.submit(_rowsum, self.plan, rows, part) for rows, part in zip(self.shares, parts)]
            return np.concatenate(client.gather(futures))
        futures = [client.submit(_fill, self.plan, rows, workload, pure=False) for rows in self.shares]
        for rows, block in zip(self.shares, client.gather(futures)):
            matrix[rows.start:rows.stop] = block
        return None

    def close(self) -> None:
        try:
            self.client.close()
        finally:  # the cluster too when the client's close fails
            self.cluster.close()


if __name__ == "__main__":
    from ._alone import main

    raise SystemExit(main(Peer))
