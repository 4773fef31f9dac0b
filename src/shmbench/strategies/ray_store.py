"""Ray's shared-memory object store on this node: W actors, blocks returned through the store.

The strategy starts a private Ray instance (``ray.init`` with W CPUs, a bounded object store
and no dashboard: the ``start`` phase) and shuts it down at close, removing its session files.
The store is immutable, so nothing is written in place: each actor fills its share in its own
memory and returns it; the return is copied into the store (``fill``), and the parent reads
it zero-copy and assembles the matrix (``collect``). For ``rowsum`` the parent puts its input
into the store once per pass (``fill``) and every actor reads its share of that one copy.
"""
from __future__ import annotations

import gc
import logging
import os
import shutil
import signal
import tempfile

import numpy as np

from .. import preflight
from ..pages import minor_faults
from ..plan import Plan
from ..work import READ_ONLY, fill_blocks
from ..workers import WORKER_BLAS_THREADS, WorkerDiedError, WorkerError, share_rows, wait_gone
from .base import Strategy

# The store holds one matrix (the returned blocks, or the input) plus Ray's own objects.
_STORE_SLACK = 64 * 2**20
_STORE_MINIMUM = 96 * 2**20  # Ray refuses a store under 75 MiB
_PROCESS_SECONDS = 10.0


class _Worker:
    """One Ray actor owning a fixed share of the blocks (Ray imports this class by name)."""

    def __init__(self, plan: Plan, share: range) -> None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(WORKER_BLAS_THREADS)
        self.plan = plan
        self.share = share
        self.rows = share_rows(plan, share)

    def pid(self) -> int:
        return os.getpid()

    def fill(self, workload: str):
        """Fill a private copy of the share; return it (into the store) and the faults it cost."""
        faults = minor_faults()
        rows = np.empty((self.rows.stop - self.rows.start, self.plan.cols))
        fill_blocks(rows, self.plan, self.share, workload, os.getpid(), check_default=False,
                    first_row=self.rows.start)
        return rows, minor_faults() - faults

    def read(self, matrix: np.ndarray, workload: str):
        """Read the share of a matrix in the store (zero-copy, read-only); return its row sums."""
        faults = minor_faults()
        sums = fill_blocks(matrix, self.plan, self.share, workload, os.getpid())
        return self.rows.start, sums, minor_faults() - faults


class RayStore(Strategy):
    name = "ray"
    summary = "Ray's object store on this node: W actors return blocks through it; the parent assembles them"
    fixed_start_method = "ray"
    shares_memory = False  # the parent's matrix is assembled from the store, not the store itself

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._actors: list = []
        self._pids: list[int] = []
        self._pending: list = []
        self._session_dir: str | None = None

    @classmethod
    def unavailable_reason(cls) -> str | None:
        try:
            import ray  # noqa: F401
        except ImportError:
            return "ray is not installed (pip install 'shmbench[ray]')"
        return None

    @property
    def worker_ids(self) -> list[int]:
        return list(self._pids)

    @property
    def store_bytes(self) -> int:
        return max(_STORE_MINIMUM, self.plan.nbytes + _STORE_SLACK)

    def need(self) -> preflight.Need:
        # The parent's matrix, the store (in /dev/shm) and each actor's private share.
        ram = 2 * self.plan.nbytes + self.store_bytes + preflight.process_overhead(self.workers + 4, True)
        return preflight.Need(ram, self.store_bytes)

    def allocate(self) -> None:
        self.matrix = np.empty(self.plan.shape)

    def start(self) -> None:
        import ray

        super().start()
        if ray.is_initialized():
            raise RuntimeError("Ray is already running in this process; the ray strategy starts its own")
        # Ray's sockets live under its temporary directory, whose path must stay short.
        self._session_dir = tempfile.mkdtemp(prefix="shmbench-ray-", dir="/tmp" if os.path.isdir("/tmp") else None)
        handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
        ray.init(num_cpus=self.workers, object_store_memory=self.store_bytes, include_dashboard=False,
                 log_to_driver=False, logging_level=logging.ERROR, _temp_dir=self._session_dir)
        # Ray's core installs its own fatal-signal handlers in this process; the caller's (the
        # CLI stops workers and exits 130 on SIGTERM) must stay in charge.
        for signum, handler in handlers.items():
            if handler is not None:
                signal.signal(signum, handler)
        actor = ray.remote(num_cpus=1)(_Worker)
        self._actors = [actor.remote(self.plan, share) for share in self.plan.shares(self.workers)]
        self._pids = self._get([a.pid.remote() for a in self._actors], "start")

    def _get(self, refs, what: str) -> list:
        import ray

        try:
            return ray.get(refs)
        except ray.exceptions.RayActorError as error:
            slot = next((i for i, a in enumerate(self._actors) if getattr(error, "actor_id", None) == a._actor_id.hex()),
                        None)
            who = f"worker {slot} (pid {self._pids[slot]})" if slot is not None and slot < len(self._pids) else "a Ray actor"
            raise WorkerDiedError(f"{who} died during {what}") from error
        except ray.exceptions.RayTaskError as error:
            raise WorkerError(f"a Ray actor failed during {what}:\n{error}") from error

    def fill(self) -> None:
        import ray

        if self.workload in READ_ONLY:
            stored = ray.put(self.matrix)  # one copy of the input, which every actor reads
            results = self._get([a.read.remote(stored, self.workload) for a in self._actors], "fill")
            del stored
            for first_row, sums, _ in results:
                self.take_sums(first_row, sums)
            faults = [count for _, _, count in results]
        else:
            pairs = [a.fill.options(num_returns=2).remote(self.workload) for a in self._actors]
            self._pending = [rows for rows, _ in pairs]
            faults = self._get([info for _, info in pairs], "fill")
        self._note(faults)

    def prefault_pays(self) -> bool:
        return False  # each actor fills fresh private memory

    def touch(self) -> None:
        pass

    def collect(self) -> None:
        pending, self._pending = self._pending, []
        for share, rows in zip(self.plan.shares(self.workers), self._get(pending, "collect")):
            self.matrix[share_rows(self.plan, share)] = rows  # a read-only view of the store
        del pending

    def is_shared_view(self) -> bool:
        return False

    def close(self) -> None:
        import ray

        self._pending = []
        actors, self._actors = self._actors, []
        try:
            for actor in actors:
                ray.kill(actor)
            if ray.is_initialized():
                ray.shutdown()
            # Ray's leftovers are collected later otherwise, and with them went file descriptors
            # that a fork pool started afterwards had been given: book lost its pool workers in 4
            # of 6 runs after ray in one process here, and in none once they are collected now.
            gc.collect()
            wait_gone(self._pids, _PROCESS_SECONDS)
        finally:
            self._pids = []
            session, self._session_dir = self._session_dir, None
            if session is not None:
                shutil.rmtree(session, ignore_errors=True)
            super().close()

