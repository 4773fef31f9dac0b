"""Memory preflight: refuse a run that cannot fit, before anything is allocated.

Without it a large run ends in the OOM killer, or in SIGBUS at the first write to a segment
that /dev/shm cannot back (segment creation succeeds lazily: cpython gh-114390).
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

import psutil


SHM_DIR = "/dev/shm"
# Interpreter, numpy and pipe buffers of each process, beyond the matrix it touches.
PER_PROCESS_OVERHEAD = 64 * 2**20
# Leave this much of available RAM to the rest of the machine.
RAM_HEADROOM = 0.9


class PreflightError(ValueError):
    """The run would not fit this machine's memory or /dev/shm."""


@dataclass(frozen=True)
class Need:
    """Bytes a run needs at once: in RAM in all, and of that in /dev/shm."""

    ram: int
    shm: int


def shm_free(path: str = SHM_DIR) -> int | None:
    return shutil.disk_usage(path).free if os.path.isdir(path) else None


def check(need: Need, force: bool = False) -> None:
    """Raise ``PreflightError`` when ``need`` exceeds what this machine has free (unless ``force``)."""
    if force:
        return
    available = psutil.virtual_memory().available
    if need.ram > available * RAM_HEADROOM:
        raise PreflightError(f"needs about {need.ram / 2**30:.2f} GiB of RAM at once, but only "
                             f"{available / 2**30:.2f} GiB is available (use --force to try anyway)")
    free = shm_free()
    if need.shm and free is not None and need.shm > free:
        raise PreflightError(f"needs {need.shm / 2**30:.2f} GiB in {SHM_DIR}, which has only "
                             f"{free / 2**30:.2f} GiB free (use --force to try anyway)")


def process_overhead(workers: int, uses_processes: bool) -> int:
    return PER_PROCESS_OVERHEAD * (1 + (workers if uses_processes else 0))


def matrix_need(storage_nbytes: int, workers: int, uses_processes: bool, in_shm: bool) -> Need:
    """One matrix, in /dev/shm or private to the parent, plus each process's own overhead."""
    return Need(ram=storage_nbytes + process_overhead(workers, uses_processes),
                shm=storage_nbytes if in_shm else 0)
