"""joblib's peer: joblib's documented way to write results in shared memory.

The parent creates an ``np.memmap`` ``w+`` in a folder of /dev/shm (where joblib puts its own
memmaps on Linux, given to it as ``temp_folder``) and ``Parallel(n_jobs=W)(delayed(f)(output, ...)
...)`` runs one task per share; joblib sends the memmap by file name and each task writes its rows in place. For
``rowsum`` the input is that memmap and each task returns its rows' sums.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np

from ..plan import Plan
from ..work import fill_rows


def _fill(plan: Plan, rows: range, workload: str, output: np.memmap) -> np.ndarray | None:
    return fill_rows(output, plan, rows, workload, 0)


class Peer:
    def __init__(self, plan: Plan, workers: int, scratch: str | None = None) -> None:
        self.plan, self.shares, self.scratch = plan, plan.share_rows(workers), scratch

    def start(self) -> None:
        folder = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self.folder = tempfile.mkdtemp(prefix="shmbench-joblib-peer-", dir=folder)
        self.output = np.memmap(os.path.join(self.folder, "output.mmap"), dtype=self.plan.dtype, mode="w+",
                                shape=self.plan.storage_shape)

    @property
    def matrix(self) -> np.memmap:
        """The parent's matrix: the memmap itself."""
        return self.output

    def run(self, workload: str, matrix: np.ndarray) -> np.ndarray | None:
        from joblib import Parallel, delayed

        sums = Parallel(n_jobs=len(self.shares), temp_folder=self.folder)(
            delayed(_fill)(self.plan, rows, workload, self.output) for rows in self.shares)
        return np.concatenate(sums) if workload == "rowsum" else None

    def close(self) -> None:
        import shutil

        from joblib.externals.loky import get_reusable_executor

        # joblib keeps its workers (and their folder, their semaphores) for the next Parallel until
        # the process exits; a peer inside a longer process ends them as loky allows.
        executor = get_reusable_executor(reuse=True)
        getattr(executor, "terminate", executor.shutdown)(kill_workers=True)
        self.output = None
        shutil.rmtree(self.folder, ignore_errors=True)


if __name__ == "__main__":
    from ._alone import main

    raise SystemExit(main(Peer))
