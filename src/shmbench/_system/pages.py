"""Faulting pages in before the fill, so a first pass does not pay one page fault per 4 KiB.

A process touching shared pages for the first time takes a minor fault on each (262,144 for
1 GiB); ``madvise(MADV_POPULATE_WRITE)`` (Linux >= 5.14) maps them all in one call. Where it
is missing, writing one element per page back onto itself does the same, more slowly.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import resource

import numpy as np

MADV_POPULATE_WRITE = 23
PAGE = mmap.PAGESIZE

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]


def minor_faults() -> int:
    """Minor page faults this process has taken so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def unforked_array(shape: tuple[int, ...], dtype: str = "float64", huge_pages: bool = True) -> np.ndarray:
    """A private array that processes forked later do not inherit (``MADV_DONTFORK``).

    For a reference that lives beside a cell (serial's matrix, the yardstick): inherited
    copy-on-write by a fork-started cell's workers, the parent's next write to it would copy every
    page, and the workers' memory would count a share of it. Anonymous private memory, with the
    huge-page advice numpy gives its own large arrays (the same kind of memory as theirs), or with
    huge pages refused (``huge_pages=False``: the same pages in every process, whatever the luck of
    the kernel's huge-page allocation).
    """
    nbytes = max(PAGE, int(np.prod(shape)) * np.dtype(dtype).itemsize)
    area = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    area.madvise(mmap.MADV_DONTFORK)
    advice = "MADV_HUGEPAGE" if huge_pages else "MADV_NOHUGEPAGE"
    if hasattr(mmap, advice):
        area.madvise(getattr(mmap, advice))
    return np.frombuffer(area, dtype=dtype, count=int(np.prod(shape))).reshape(shape)


def prefault(view: np.ndarray) -> str:
    """Map every page of ``view`` (C-contiguous, writable) for writing; returns how it was done."""
    if view.size == 0:
        return "none"
    start = view.ctypes.data
    first = start - start % PAGE
    length = start + view.nbytes - first
    if _libc.madvise(first, length, MADV_POPULATE_WRITE) == 0:
        return "madvise"
    flat = view.reshape(-1)
    step = max(1, PAGE // view.itemsize)
    flat[::step] = flat[::step]  # a write fault per page, values unchanged
    return "touch"
