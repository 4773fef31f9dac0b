"""``joblib.Parallel`` on its loky backend, workers writing in place into an ``np.memmap`` in /dev/shm.

This is joblib's documented way to write results in place: the parent creates the memmap ``w+``
and passes it to the tasks; joblib's memmapping reducer sends only its file name, and each task
maps the file again ``r+`` (an ordinary array would reach the workers read-only, or as a copy).
Every task maps the file anew, so each pass pays its page faults again: that is what joblib
costs, warm or cold.
"""
from __future__ import annotations

from .._system import preflight
from ..runtimes.loky import Loky
from .base import Strategy, Traits
from .memmap import FileMatrix


class Joblib(FileMatrix, Strategy):
    name = "joblib"
    summary = "joblib.Parallel (loky) writing in place into an np.memmap in /dev/shm, re-opened r+ per task"
    # loky hands tasks to whichever worker is free, so a worker is not sure to get one.
    traits = Traits(launcher="loky", every_worker_gets_work=False, needs=("joblib",))
    runtime = Loky

    def need(self) -> preflight.Need:
        return preflight.matrix_need(self.plan.storage_nbytes, self.workers, True, in_shm=True)

    def allocate(self) -> None:
        from joblib.externals.loky.backend import resource_tracker

        # joblib re-opens the file by name in every task, so the name must live until close;
        # loky's resource tracker (which joblib uses for its own memmaps) removes it if we die.
        self.make_file(preflight.SHM_DIR, "shmbench-joblib-")
        resource_tracker.register(self.path, "file")

    def prefault_pays(self) -> bool:
        return False  # each task maps the file again: a mapping prefaulted earlier is gone

    def release(self) -> None:
        from joblib.externals.loky.backend import resource_tracker

        path = self.path
        super().release()
        if path is not None:
            resource_tracker.unregister(path, "file")
