"""Your own kernel, run by every strategy: ``--workload module:function`` or ``path/file.py:function``.

A *writing* kernel is called once per block, in whichever worker owns the block, as
``kernel(out, rows, rng, input)``:

- ``out``: the block's rows of the output matrix, writable (write every element of it);
- ``rows``: their rows in the plan, a ``range`` (``input[rows]`` is the same rows of the input);
- ``rng``: a ``numpy.random.Generator`` seeded for the block, the same in every strategy;
- ``input``: the whole input matrix, read-only: the parent fills it once per pass (uniform [0, 1)
  for floats, as the ``random`` workload), stored and shared exactly as the output is, so a
  stencil reads the rows around its block without racing the workers that write them.

A kernel whose function has ``read_only = True`` reads instead: it is given its block of the input
as ``out`` (read-only) and returns one value per row, as ``rowsum`` does.

Serial's output is the reference: every strategy's output must be bit-identical to it. Serial runs
the kernel twice; if the two outputs differ the kernel is not deterministic, and strategies are
then judged by the module's ``check(matrix)`` alone (a function beside the kernel, run on every
output if there is one: it returns False or raises to fail).
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ._system.deadline import TimeLimit


class KernelError(ValueError):
    """A kernel that cannot be loaded, or that broke its contract while running."""


def is_kernel(workload: str) -> bool:
    """Whether ``workload`` names a user's kernel rather than a built-in workload."""
    return ":" in workload


def label(workload: str) -> str:
    """A workload as tables and titles show it: a kernel's file without its folder."""
    where, _, name = workload.rpartition(":")
    return f"{os.path.basename(where)}:{name}" if where and _is_path(where) else workload


def _is_path(where: str) -> bool:
    return where.endswith(".py") or os.sep in where


def normalize(spec: str) -> str:
    """``spec`` with a file's path made absolute, so every worker finds the same file wherever it runs."""
    where, _, name = spec.rpartition(":")
    if not where or not name:
        raise KernelError(f"a kernel is named module:function or path/file.py:function, not {spec!r}")
    return f"{os.path.abspath(where)}:{name}" if _is_path(where) else spec


def spec_of(function: Callable) -> str:
    """The spec naming ``function`` (a module-level function), so workers can import it anew."""
    name, module = getattr(function, "__qualname__", ""), getattr(function, "__module__", None)
    if not module or not name.isidentifier():
        raise KernelError(f"a kernel must be a module-level function that workers can import, not {function!r}")
    if module == "__main__":
        path = getattr(sys.modules["__main__"], "__file__", None)
        if path is None:
            raise KernelError("a kernel defined in an interactive session cannot reach worker processes: "
                              "put it in a file and pass path/file.py:function")
        return normalize(f"{path}:{name}")
    return f"{module}:{name}"


@dataclass(frozen=True)
class Kernel:
    spec: str
    function: Callable
    #: ``check(matrix)`` from the kernel's module, or None.
    check: Callable | None
    #: Reads its block and returns one value per row, instead of writing.
    read_only: bool


def _module(where: str):
    if not _is_path(where):
        try:
            return importlib.import_module(where)
        except Exception as error:  # an import runs the user's code: any error is theirs
            raise KernelError(f"cannot import module {where!r}: {type(error).__name__}: {error}") from error
    if not os.path.isfile(where):
        raise KernelError(f"no kernel file {where}")
    # One module per file, under a name of its own: importing it never runs the file as __main__.
    name = "shmbench_kernel_" + hashlib.sha256(where.encode()).hexdigest()[:16]
    if name in sys.modules:
        return sys.modules[name]
    found = importlib.util.spec_from_file_location(name, where)
    module = importlib.util.module_from_spec(found)
    sys.modules[name] = module  # before running it, as import does (dataclasses and pickle look it up)
    try:
        found.loader.exec_module(module)
    except Exception as error:
        del sys.modules[name]
        raise KernelError(f"{where} did not import: {type(error).__name__}: {error}") from error
    return module


@lru_cache(maxsize=None)
def load(spec: str) -> Kernel:
    """The kernel ``spec`` names, checked to take ``(out, rows, rng, input)``; ``KernelError`` if not."""
    spec = normalize(spec)
    where, _, name = spec.rpartition(":")
    module = _module(where)
    function = getattr(module, name, None)
    if not callable(function):
        raise KernelError(f"{where} has no function {name!r}")
    try:
        inspect.signature(function).bind(None, None, None, None)
    except TypeError:
        raise KernelError(f"kernel {name} must take (out, rows, rng, input), not {inspect.signature(function)}") \
            from None
    except ValueError:  # a builtin without a signature: let the call say
        pass
    check = getattr(module, "check", None)
    return Kernel(spec, function, check if callable(check) else None, bool(getattr(function, "read_only", False)))


def call(spec: str, view: np.ndarray, rows: range, seed: np.random.SeedSequence, source: np.ndarray,
         worker_id: int) -> np.ndarray | None:
    """Run the kernel on one block; a read-only kernel's values per row come back checked."""
    kernel = load(spec)
    rng = np.random.Generator(np.random.PCG64(seed))
    given = source.view()
    given.flags.writeable = False
    if kernel.read_only:
        view = view.view()
        view.flags.writeable = False
    try:
        values = kernel.function(view, rows, rng, given)
    except TimeLimit:
        raise  # the parent's limit, raised in the kernel it ran: not the kernel's error
    except Exception as error:
        raise KernelError(f"kernel {kernel.spec.rpartition(':')[2]} raised {type(error).__name__}: {error} "
                          f"(worker {worker_id}, rows {rows.start}-{rows.stop - 1})") from error
    if not kernel.read_only:
        return None
    values = np.asarray(values)
    if values.shape != (len(rows),):
        raise KernelError(f"read-only kernel {kernel.spec.rpartition(':')[2]} returned shape {values.shape} for "
                          f"{len(rows)} rows (rows {rows.start}-{rows.stop - 1}); it must return one value per row")
    return values


_FRAME = re.compile(r'\s*File "(?P<path>.+)", line \d+, in ')


def own_frames(text: str, spec: str) -> list[str]:
    """The frames of the kernel's own file in a traceback's ``text`` (each with its line of code),
    once each: what a user reads of a failure in their kernel, without shmbench's frames."""
    try:
        path = os.path.realpath(inspect.getsourcefile(load(spec).function) or "")
    except (KernelError, TypeError):
        return []
    lines, frames = text.splitlines(), []
    for index, line in enumerate(lines):
        found = _FRAME.match(line)
        if found and os.path.realpath(found["path"]) == path:
            code = lines[index + 1].strip() if index + 1 < len(lines) and not _FRAME.match(lines[index + 1]) else ""
            frame = line.strip() + (f"\n    {code}" if code else "")
            if frame not in frames:
                frames.append(frame)
    return frames


def digest(array: np.ndarray) -> str:
    return hashlib.sha256(memoryview(np.ascontiguousarray(array)).cast("B")).hexdigest()
