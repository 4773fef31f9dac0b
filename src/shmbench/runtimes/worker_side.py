"""The worker's side, whatever runs it: interrupts left to the parent, one BLAS thread, and an
exit as soon as the parent is gone."""
from __future__ import annotations

import os
import select
import signal
import threading
import time
from collections.abc import Callable

import psutil
from threadpoolctl import threadpool_limits

#: Each worker's BLAS/OpenMP pool is capped at this, so W workers never run W x cores threads.
WORKER_BLAS_THREADS = 1
#: A worker's OOM score adjustment, at least: when memory runs out the kernel ends a worker, whose
#: death the parent reports and cleans up after, before the parent, which holds the records (in a
#: memory cgroup of 768 MiB the parent itself was chosen once, beside Dask's worker taking 1 GiB).
#: Raising one's own score needs no privilege.
OOM_SCORE_ADJ = 500
_POLL_SECONDS = 0.5


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def become_worker(parent_pid: int | None = None, on_parent_death: Callable[[], None] | None = None) -> None:
    """What every worker process sets first, whatever runs it."""
    # The parent owns interrupts: it stops the workers itself and releases what they share.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler, inherited with fork
    threadpool_limits(WORKER_BLAS_THREADS)
    _first_for_the_oom_killer()
    if parent_pid is not None:
        watch_parent(parent_pid, on_parent_death)


def _first_for_the_oom_killer() -> None:
    try:
        with open("/proc/self/oom_score_adj", "r+") as adj:
            if int(adj.read()) < OOM_SCORE_ADJ:
                adj.seek(0)
                adj.write(str(OOM_SCORE_ADJ))
    except (OSError, ValueError):  # not Linux, or a sandbox that forbids it: the kernel's own choice
        pass


def watch_parent(pid: int, on_death: Callable[[], None] | None = None) -> None:
    """Exit this process as soon as process ``pid`` (the benchmark's parent) ends.

    A worker waiting on a queue, a collective or a pipe that other processes hold open would
    otherwise outlive a killed parent and keep the matrix mapped. ``on_death`` runs first.
    """
    def watch() -> None:
        try:
            handle = os.pidfd_open(pid)  # Linux >= 5.3: readable once the process has exited
        except ProcessLookupError:
            handle = None
        except (AttributeError, OSError):  # no pidfd here: poll
            while psutil.pid_exists(pid) and process_alive(pid):
                time.sleep(_POLL_SECONDS)
            handle = None
        if handle is not None:
            select.select([handle], [], [])
        try:
            if on_death is not None:
                on_death()
        finally:
            os._exit(1)

    threading.Thread(target=watch, name="shmbench-parent-watch", daemon=True).start()
