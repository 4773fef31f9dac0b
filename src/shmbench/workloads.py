"""A workload resolved once, built-in or a kernel of yours: what storage, runtimes, the worker core
and the verifier need to know of it, as facts, so that none of them branches on a name.

A workload travels to workers by its name (``Workload.name``: a built-in's name, a kernel's spec),
which every process resolves for itself: a kernel's function is imported anew there.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from . import kernels

# The book fills the matrix with 42 before the workers run; a worker that finds anything
# else in its rows knows another worker has been there.
DEFAULT_VALUE = 42.0


@dataclass(frozen=True)
class Workload:
    """What one workload does to the matrix, and what it needs done around it."""

    #: As records and commands name it: a built-in's name, or a kernel's spec (``path.py:function``).
    name: str
    #: Reads an input the parent prepared and returns one value per row, leaving the matrix as it was.
    reads: bool = False
    #: Writes its output from an input kept below it in the storage (a writing kernel).
    from_input: bool = False
    #: Writes over ``DEFAULT_VALUE``, which the parent puts first and each worker checks (``pid``):
    #: a worker that finds anything else knows another worker has been there.
    over_default: bool = False
    #: Draws from numpy's module-level generator, which the parent seeds (the book's way).
    legacy: bool = False
    #: A user's kernel, or None for a built-in.
    kernel: kernels.Kernel | None = None

    @property
    def is_kernel(self) -> bool:
        return self.kernel is not None

    @property
    def has_input(self) -> bool:
        """The parent puts an input into the storage before each pass."""
        return self.reads or self.from_input

    @property
    def parent_writes(self) -> bool:
        """The parent writes the storage before each pass (its default values, or an input)."""
        return self.over_default or self.has_input

    @property
    def whole_input(self) -> bool:
        """Each worker is given the whole input, not its rows of it (a kernel's contract: a stencil
        reads around its rows)."""
        return self.is_kernel

    @property
    def label(self) -> str:
        """As tables and titles show it: a kernel's file without its folder."""
        return kernels.label(self.name)

    def check_dtype(self, dtype: str) -> None:
        """``ValueError`` when the workload cannot be written in ``dtype`` (a process id in a uint8)."""
        if not self.over_default:
            return
        kind = np.dtype(dtype)
        exact = np.iinfo(kind).max if kind.kind in "iu" else 2 ** (np.finfo(kind).nmant + 1)
        if exact < pid_max():
            raise ValueError(f"the {self.name} workload cannot use {dtype}: it holds whole numbers up to {exact}, "
                             f"and process ids here go up to {pid_max()}")


#: The built-in workloads; a user's kernel is named ``module:function`` or ``path/file.py:function``.
BUILT_IN = {w.name: w for w in (Workload("pid", over_default=True), Workload("random"),
                                Workload("legacy-random", legacy=True), Workload("rowsum", reads=True))}
WORKLOADS = tuple(BUILT_IN)


def resolve(workload: str | Callable | Workload) -> Workload:
    """The workload a name, a kernel's spec or a module-level function names; ``ValueError`` if it
    is unknown or, for a kernel, does not import or does not take ``(out, rows, rng, input)``."""
    if isinstance(workload, Workload):
        return workload
    if callable(workload):
        workload = kernels.spec_of(workload)
    if not isinstance(workload, str):
        raise ValueError(f"a workload is a name or a function, not {workload!r}")
    return _resolve(workload)


@lru_cache(maxsize=None)
def _resolve(name: str) -> Workload:
    if kernels.is_kernel(name):
        kernel = kernels.load(name)
        return Workload(kernel.spec, reads=kernel.read_only, from_input=not kernel.read_only, kernel=kernel)
    if name not in BUILT_IN:
        raise ValueError(f"unknown workload {name!r}; choose one of: {', '.join(WORKLOADS)}, "
                         f"or a kernel of yours as module:function or path/file.py:function")
    return BUILT_IN[name]


def pid_max() -> int:
    """The largest process id this kernel hands out."""
    try:
        with open("/proc/sys/kernel/pid_max") as stream:
            return int(stream.read())
    except (OSError, ValueError):
        return 2**22  # Linux's ceiling on 64-bit machines
