"""``joblib.Parallel`` on its loky backend: one task per share, handed to whichever worker is free.

One ``Parallel`` (and so the same loky workers) serves every command until close. With one worker
joblib runs the task in the parent itself, as it does for any ``n_jobs=1``. joblib offers no
public handle on its workers, so close terminates loky's executors itself: ``Parallel`` would
leave the workers running for reuse, and a benchmark must leave none.
"""
from __future__ import annotations

import os
import shutil
import tempfile

import numpy as np

from .._system import preflight
from .base import OnPart, Roll, Runtime, call_in, deliver, end, failed, ignore
from .seat import Command, Seat, collected


def _task(attachment, plan, rows: range, command: Command):
    matrix, first_row, release = attachment.open(plan, rows)
    try:
        return os.getpid(), *collected(Seat(plan, rows, matrix, first_row), command)
    finally:
        del matrix
        release()


class Loky(Runtime):
    launcher = "loky"

    def start(self) -> list[int]:
        from joblib import Parallel, delayed, parallel_config
        from joblib.externals.loky.backend import resource_tracker

        # With one worker joblib runs tasks in the parent (n_jobs=1): no worker calls in.
        self._roll = Roll(len(self.shares) if len(self.shares) > 1 else 0)
        self.made(self._roll.close)
        # joblib makes a temporary folder for its memmapping even when it dumps nothing, and
        # removes it only at exit: give it one of ours. max_nbytes=None: nothing to dump.
        folder = tempfile.mkdtemp(prefix="shmbench-joblib-", dir=preflight.SHM_DIR)
        self.made(resource_tracker.unregister, folder, "folder")  # after the folder is gone
        self.made(shutil.rmtree, folder, ignore_errors=True)
        resource_tracker.register(folder, "folder")
        with parallel_config(backend="loky", initializer=call_in, initargs=(self._roll.address, os.getpid())):
            self._parallel = Parallel(n_jobs=len(self.shares), temp_folder=folder, max_nbytes=None)
        self._executors = []
        self.made(self._stop)
        self._parallel.__enter__()  # the same workers for every call until close
        self._executors.append(getattr(self._parallel._backend, "_workers", None))
        self._call([delayed(os.getpid)() for _ in self.shares], "start")
        self.ids = self._roll.take() or [os.getpid()]
        import joblib

        self.settings = {"parallel": f"Parallel(n_jobs={len(self.shares)}, backend='loky', max_nbytes=None), "
                                     "one Parallel for every pass",
                         "tasks": "delayed(task)(memmap, rows), one per worker; each maps the parent's w+ memmap "
                                  "again r+ (joblib's documented in-place pattern)",
                         "versions": f"joblib {joblib.__version__}"}
        return self.ids

    def _call(self, tasks, what: str) -> list:
        from joblib.externals.loky.process_executor import TerminatedWorkerError

        try:
            return self._parallel(tasks)
        except TerminatedWorkerError as error:
            raise self._roll.report(what, "; joblib lost its tasks") from error
        except Exception as error:
            raise failed(what, repr(error)) from error
        finally:  # after a worker died joblib builds a new executor, with a temporary folder of its own
            self._executors.append(getattr(self._parallel._backend, "_workers", None))

    def run(self, command: Command, on_part: OnPart = ignore, source: np.ndarray | None = None) -> list[int]:
        from joblib import delayed

        answers = self._call([delayed(_task)(a, self.plan, rows, command)
                              for a, rows in zip(self.attachments, self.shares)], command.name)
        slots = [self.ids.index(pid) if pid in self.ids else 0 for pid, _, _ in answers]
        deliver(on_part, ((slot, parts) for slot, (_, _, parts) in zip(slots, answers)))
        faults = [0] * len(self.ids)
        for slot, (_, count, _) in zip(slots, answers):
            faults[slot] += count
        return faults

    def _stop(self) -> None:
        executors = {id(e): e for e in self._executors if e is not None}.values()

        def ask() -> None:
            self._parallel.__exit__(None, None, None)
            for executor in executors:  # terminate() also removes the executor's temporary folder
                executor.terminate(kill_workers=True)

        end([pid for pid in self.ids if pid != os.getpid()], ask)
