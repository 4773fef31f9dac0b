"""``joblib.Parallel`` on its loky backend: one task per share, handed to whichever worker is free.

The same ``Parallel`` (and so the same loky workers) serves every command until close. With one
worker joblib runs the task in the parent itself (its sequential backend), as it does for any
``n_jobs=1``. joblib offers no public handle on its workers, so close terminates loky's executor
itself: ``Parallel`` would leave the workers running for reuse, and a benchmark must leave none.
"""
from __future__ import annotations

import os
import shutil
import tempfile

import numpy as np

from ..._system import preflight
from .base import FirstDeath, OnPart, Runtime, become_worker, children_now, died, end, failed, new_children
from .seat import Command, Seat, collected

# How loky starts a worker (its resource tracker, also a child, must be left alone).
_LOKY_WORKER = "joblib.externals.loky.backend.popen_loky_posix"


def _task(attachment, plan, rows: range, command: Command):
    matrix, first_row, release = attachment.open(plan, rows)
    try:
        faults, parts = collected(Seat(plan, rows, matrix, first_row), command)
    finally:
        del matrix
        release()
    return os.getpid(), faults, parts


class Loky(Runtime):
    launcher = "loky"

    def start(self) -> list[int]:
        from joblib import Parallel, delayed, parallel_config
        from joblib.externals.loky.backend import resource_tracker

        before = children_now()
        # joblib makes a temporary folder for its memmapping even when it dumps nothing, and
        # removes it only at exit: give it one of ours, removed at close. max_nbytes=None: the
        # matrix is the only large array, and nothing else should be dumped.
        self._folder = tempfile.mkdtemp(prefix="shmbench-joblib-", dir=preflight.SHM_DIR)
        resource_tracker.register(self._folder, "folder")
        with parallel_config(backend="loky", initializer=become_worker, initargs=(os.getpid(),)):
            self._parallel = Parallel(n_jobs=len(self.shares), temp_folder=self._folder, max_nbytes=None)
        self._parallel.__enter__()  # keeps the same workers for every call until close
        self._executors = [getattr(self._parallel._backend, "_workers", None)]
        self._call([delayed(os.getpid)() for _ in self.shares], "start")
        self.ids = new_children(before, _LOKY_WORKER) or [os.getpid()]  # n_jobs=1: the parent
        self._deaths = FirstDeath([pid for pid in self.ids if pid != os.getpid()])
        return self.ids

    def _call(self, tasks, what: str) -> list:
        from joblib.externals.loky.process_executor import TerminatedWorkerError

        try:
            return self._parallel(tasks)
        except TerminatedWorkerError as error:
            deaths = getattr(self, "_deaths", None)
            raise (deaths.report(what, "; joblib lost its tasks") if deaths else died(None, None, what)) from error
        except Exception as error:
            raise failed(what, repr(error)) from error
        finally:  # after a worker died joblib builds a new executor, with a temporary folder of its own
            self._executors.append(getattr(self._parallel._backend, "_workers", None))

    def run(self, command: Command, on_part: OnPart | None = None, source: np.ndarray | None = None) -> list[int]:
        from joblib import delayed

        results = self._call([delayed(_task)(a, self.plan, rows, command)
                              for a, rows in zip(self.attachments, self.shares)], command.name)
        faults = [0] * len(self.ids)
        for pid, count, parts in results:
            slot = self.ids.index(pid) if pid in self.ids else 0
            faults[slot] += count
            for part in parts:
                if on_part is not None:
                    on_part(slot, *part)
        return faults

    def close(self) -> None:
        from joblib.externals.loky.backend import resource_tracker

        parallel, self._parallel = getattr(self, "_parallel", None), None
        executors = {id(e): e for e in getattr(self, "_executors", []) if e is not None}.values()

        def ask() -> None:
            parallel.__exit__(None, None, None)
            for executor in executors:  # terminate() also removes the executor's temporary folder
                executor.terminate(kill_workers=True)

        try:
            if parallel is not None:
                end([pid for pid in self.ids if pid != os.getpid()], ask)
        finally:
            if getattr(self, "_deaths", None) is not None:
                self._deaths.close()
                self._deaths = None
            folder, self._folder = getattr(self, "_folder", None), None
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
                resource_tracker.unregister(folder, "folder")
