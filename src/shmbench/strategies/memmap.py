"""``np.memmap``: a plain file the parent creates and every worker maps by its path.

``memmap`` keeps the file in /dev/shm (tmpfs: memory, nothing reaches a disk); ``memmap_disk``
keeps it in a directory on disk (``$SHMBENCH_DISK_DIR``, else the temporary directory), where
the kernel's page cache holds it and ``flush()`` (msync) writes it back. Both flush in the
``collect`` phase, so the disk's cost shows there and nowhere else. The file's name is removed
once every worker has mapped it, so a run leaves no file behind, however it ends.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .._system import preflight
from .._system.files import create_file, filesystem, remove_file
from ..plan import Plan
from ..runtimes.base import START_METHODS
from ..runtimes.group import ProcessGroup
from .base import Strategy, Traits

DISK_DIR_ENV = "SHMBENCH_DISK_DIR"
_MEMORY_FILESYSTEMS = {"tmpfs", "ramfs"}


def disk_dir() -> str:
    """Where ``memmap_disk`` puts its file."""
    return os.environ.get(DISK_DIR_ENV) or tempfile.gettempdir()


class FileMatrix:
    """For strategies whose matrix is an ``np.memmap`` of the file at ``self.path``."""

    path: str | None = None
    storage: np.ndarray | None
    #: The file, held open from its making to its release: its name goes once the workers have
    #: mapped it, and the room it still lacks is asked of it before the parent writes it.
    _fd: int | None = None

    def is_shared_view(self) -> bool:
        return isinstance(self.storage, np.memmap) and self.storage.filename == os.path.realpath(self.path)

    @property
    def mapping_name(self) -> str | None:
        return os.path.basename(self.path) if self.path else None

    def prefault_pays(self) -> bool:
        # The parent wrote the file's pages (42.0 or the input); workers only map them.
        return self.work.over_default or self.work.reads

    def make_file(self, directory: str, prefix: str) -> None:
        """Make the matrix's file in ``directory`` and map it (``self.path``, ``self.storage``)."""
        self.path, self.storage = create_file(directory, prefix, self.plan.storage_shape, self.plan.dtype)
        self._fd = os.open(self.path, os.O_RDONLY)

    def backing_file(self) -> int | None:
        return self._fd

    def release(self) -> None:
        self.storage = None
        path, self.path = self.path, None
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
        remove_file(path)


@dataclass(frozen=True)
class _FileAttachment:
    path: str

    def open(self, plan: Plan, rows: range):
        # Unmapped when the last view of it goes (the worker drops its matrix before release).
        return np.memmap(self.path, dtype=plan.dtype, mode="r+", shape=plan.storage_shape), 0, lambda: None


class Memmap(FileMatrix, Strategy):
    name = "memmap"
    summary = "np.memmap of a file in /dev/shm, created w+ by the parent and opened r+ by each worker"
    traits = Traits(launcher="multiprocessing", start_methods=START_METHODS)
    runtime = ProcessGroup
    on_disk: ClassVar[bool] = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.directory = disk_dir() if self.on_disk else preflight.SHM_DIR

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if not cls.on_disk:
            return None if os.path.isdir(preflight.SHM_DIR) else f"{preflight.SHM_DIR} does not exist"
        directory = disk_dir()
        if not os.path.isdir(directory):
            return f"{directory} is not a directory (set {DISK_DIR_ENV})"
        if filesystem(directory) in _MEMORY_FILESYSTEMS:
            return f"{directory} is on {filesystem(directory)}, not a disk (set {DISK_DIR_ENV})"
        return None

    def need(self) -> preflight.Need:
        return preflight.matrix_need(self.plan.storage_nbytes, self.workers, True, in_shm=not self.on_disk)

    def check_fits(self, force: bool = False) -> None:
        super().check_fits(force)
        free = shutil.disk_usage(self.directory).free
        if self.on_disk and not force and self.plan.storage_nbytes > free:
            raise preflight.PreflightError(f"needs {self.plan.storage_nbytes / 2**30:.2f} GiB in {self.directory}, which "
                                           f"has only {free / 2**30:.2f} GiB free (use --force to try anyway)")

    def allocate(self) -> None:
        self.make_file(self.directory, f"shmbench-{self.name}-")

    def storage_directory(self) -> str:
        return self.directory

    def start(self) -> None:
        super().start()
        # Every worker has mapped the file: unlink its name now, so that even a killed parent
        # leaves nothing in the directory (the mappings keep the pages, as multiprocessing.heap does).
        remove_file(self.path)

    def attachment(self, slot: int) -> _FileAttachment:
        return _FileAttachment(self.path)

    def collect(self) -> None:
        self.storage.flush()


class MemmapDisk(Memmap):
    name = "memmap_disk"
    summary = f"the same np.memmap, of a file on disk (${DISK_DIR_ENV} or the temporary directory)"
    on_disk = True
