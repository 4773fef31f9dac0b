"""``joblib.Parallel`` on its loky backend, workers writing in place into an ``np.memmap`` in /dev/shm.

This is joblib's documented way to write results in place: the parent creates the memmap
``w+`` and passes it to the tasks; joblib's memmapping reducer sends only its file name, and
each task maps the file again ``r+`` (an ordinary array argument would reach the workers as a
read-only memmap, or as a copy). One task per share of blocks; loky hands tasks to whichever
worker is free, so a worker is not sure to get one. With one worker joblib runs the task in
the parent itself (its sequential backend), as it does for any ``n_jobs=1``. Every task maps
the file anew, so each pass pays its page faults again: that is what joblib costs, warm or cold.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from typing import Any

import numpy as np
import psutil

from .. import preflight
from ..pages import minor_faults
from ..plan import Plan
from ..work import fill_blocks
from ..workers import WorkerDiedError, WorkerError, become_worker, process_alive, wait_gone
from .base import Strategy
from .memmap import FileMatrix, create_file, remove_file

# How loky starts a worker (its resource tracker, also a child, must be left alone).
_LOKY_WORKER = "joblib.externals.loky.backend.popen_loky_posix"
_SHUTDOWN_SECONDS = 10.0
_PARENT_POLL_SECONDS = 0.5


def _init_worker() -> None:
    """Each loky worker's initializer: our worker settings, and exit when the parent dies
    (a loky worker would otherwise wait on its queue for ever, holding the file mapped)."""
    become_worker()
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_PARENT_POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="shmbench-parent-watch", daemon=True).start()


def _fill_share(matrix: np.ndarray, plan: Plan, share: range, workload: str):
    """One task: fill (or read) a share of blocks of the memmap joblib re-opened here."""
    pid = os.getpid()
    faults = minor_faults()
    sums = fill_blocks(matrix, plan, share, workload, pid)
    first_row = plan.block(share.start).start if share else 0
    return pid, first_row, sums, minor_faults() - faults


class Joblib(FileMatrix, Strategy):
    name = "joblib"
    summary = "joblib.Parallel (loky) writing in place into an np.memmap in /dev/shm, re-opened r+ per task"
    fixed_start_method = "loky"
    every_worker_gets_work = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.path: str | None = None
        self._folder: str | None = None
        self._parallel: Any = None
        self._executor: Any = None
        self._pids: list[int] = []

    @classmethod
    def unavailable_reason(cls) -> str | None:
        try:
            import joblib  # noqa: F401
        except ImportError:
            return "joblib is not installed (pip install joblib)"
        return None

    @property
    def worker_ids(self) -> list[int]:
        return list(self._pids)

    def need(self) -> preflight.Need:
        return preflight.matrix_need(self.plan, self.workers, True, in_shm=True)

    def allocate(self) -> None:
        from joblib.externals.loky.backend import resource_tracker

        # joblib re-opens the file by name in every task, so the name must live until close;
        # loky's resource tracker (which joblib uses for its own memmaps) removes it if we die.
        self.path, self.matrix = create_file(preflight.SHM_DIR, "shmbench-joblib-", self.plan.shape)
        resource_tracker.register(self.path, "file")

    def start(self) -> None:
        from joblib import Parallel, delayed, parallel_config
        from joblib.externals.loky.backend import resource_tracker

        super().start()
        before = {child.pid for child in psutil.Process().children()}
        # joblib makes a temporary folder for its memmapping even when it dumps nothing, and
        # removes it only at exit: give it one of ours, removed at close. max_nbytes=None: our
        # memmap is the only large array, and nothing else should be dumped.
        self._folder = tempfile.mkdtemp(prefix="shmbench-joblib-", dir=preflight.SHM_DIR)
        resource_tracker.register(self._folder, "folder")
        with parallel_config(backend="loky", initializer=_init_worker):
            self._parallel = Parallel(n_jobs=self.workers, temp_folder=self._folder, max_nbytes=None)
        self._parallel.__enter__()  # keeps the same workers for every call until close
        # joblib offers no public handle on its workers: keep the executor to shut it down.
        self._executor = getattr(self._parallel._backend, "_workers", None)
        self._call((delayed(os.getpid)() for _ in range(self.workers)), "start")
        self._pids = sorted(child.pid for child in psutil.Process().children()
                            if child.pid not in before and _LOKY_WORKER in child.cmdline())
        if not self._pids:  # n_jobs=1: joblib runs the tasks in the parent (its sequential backend)
            self._pids = [os.getpid()]

    def _call(self, tasks, what: str) -> list:
        from joblib.externals.loky.process_executor import TerminatedWorkerError

        try:
            return self._parallel(tasks)
        except TerminatedWorkerError as error:
            dead = [slot for slot, pid in enumerate(self._pids) if not process_alive(pid)]
            who = f"worker {dead[0]} (pid {self._pids[dead[0]]})" if dead else "a joblib worker"
            raise WorkerDiedError(f"{who} died during {what}; joblib lost its tasks") from error
        except Exception as error:
            raise WorkerError(f"a joblib task failed during {what}: {error!r}") from error

    def fill(self) -> None:
        from joblib import delayed

        results = self._call((delayed(_fill_share)(self.matrix, self.plan, share, self.workload)
                             for share in self.plan.shares(self.workers)), "fill")
        faults: dict[str, int] = {}
        for pid, first_row, sums, count in results:
            self.take_sums(first_row, sums)
            role = f"worker {self._pids.index(pid)}" if pid in self._pids else f"pid {pid}"
            faults[role] = faults.get(role, 0) + count
        self.last_faults = faults

    def prefault_pays(self) -> bool:
        return False  # each task maps the file again: a mapping prefaulted earlier is gone

    def touch(self) -> None:
        pass

    def close(self) -> None:
        parallel, executor, self._parallel, self._executor = self._parallel, self._executor, None, None
        try:
            # After a worker died joblib has built a new executor (with its own temporary folder).
            executors = [executor, getattr(getattr(parallel, "_backend", None), "_workers", None)]
            if parallel is not None:
                parallel.__exit__(None, None, None)
            # Parallel leaves loky's workers running for reuse; a benchmark must leave none, and
            # terminate() also removes the executor's temporary folder.
            for done in {id(e): e for e in executors if e is not None}.values():
                done.terminate(kill_workers=True)
            wait_gone([pid for pid in self._pids if pid != os.getpid()], _SHUTDOWN_SECONDS)
        finally:
            self._pids = []
            self.matrix = None
            path, self.path = self.path, None
            folder, self._folder = self._folder, None
            _remove(path, "file", remove_file)
            _remove(folder, "folder", lambda name: shutil.rmtree(name, ignore_errors=True))
            super().close()


def _remove(name: str | None, kind: str, remove) -> None:
    if name is not None:
        from joblib.externals.loky.backend import resource_tracker

        remove(name)
        resource_tracker.unregister(name, kind)

