"""Named files that back a matrix: made, mapped and removed, in /dev/shm or on a disk."""
from __future__ import annotations

import os
import tempfile

import numpy as np
import psutil


def create_file(directory: str, prefix: str, shape: tuple[int, int], dtype: str = "float64") -> tuple[str, np.memmap]:
    """A new file of ``shape`` elements of ``dtype`` in ``directory``, mapped ``w+`` (sparse: pages
    come on first write)."""
    fd, path = tempfile.mkstemp(prefix=prefix, suffix=f".{dtype}", dir=directory)
    os.close(fd)
    try:
        return path, np.memmap(path, dtype=dtype, mode="w+", shape=shape)
    except BaseException:
        os.unlink(path)
        raise


def remove_file(path: str | None) -> None:
    if path is not None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def filesystem(path: str) -> str | None:
    """The type of the filesystem that holds ``path`` (the deepest mount point above it)."""
    path = os.path.realpath(path)
    best = None
    for part in psutil.disk_partitions(all=True):
        if path == part.mountpoint or path.startswith(part.mountpoint.rstrip("/") + "/"):
            if best is None or len(part.mountpoint) > len(best.mountpoint):
                best = part
    return best.fstype if best else None
