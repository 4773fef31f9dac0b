"""Process-tree memory with psutil: the programmatic form of the book's ``ps``/``pmap`` check.

PSS (proportional set size) splits each shared page between the processes mapping it, so
the PSS summed over the parent and its workers counts one shared matrix once, and W private
copies W times. asv's ``peakmem_`` sees only the benchmark process, which is why we sum here.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import psutil

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None)


@dataclass(frozen=True)
class ProcessMemory:
    """One process's memory, in bytes."""

    pid: int
    role: str
    rss: int
    pss: int
    uss: int
    shared: int

    def as_dict(self) -> dict:
        return asdict(self)


def release_freed() -> None:
    """Free what earlier cells left in this process (cyclic garbage, heap glibc keeps after a free),
    so the next cell's parent figure is not theirs: after a Ray and a Dask cell, a threads cell's
    parent read 428 MiB without this and 368 MiB with it (294 MiB before them; the rest is their
    modules, which stay imported)."""
    gc.collect()
    if hasattr(_libc, "malloc_trim"):  # glibc's; musl has none
        _libc.malloc_trim(0)


def snapshot(pids_by_role: Iterable[tuple[int, str]]) -> list[ProcessMemory]:
    """Memory of each (pid, role) that is still alive."""
    out = []
    for pid, role in pids_by_role:
        try:
            info = psutil.Process(pid).memory_full_info()
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
        out.append(ProcessMemory(pid, role, info.rss, info.pss, info.uss, info.shared))
    return out


#: What the processes a runtime starts beside the workers are, by a word of their command line.
_RUNTIME_ROLES = (("resource_tracker", "multiprocessing resource tracker"), ("gcs_server", "ray gcs_server"),
                  ("raylet", "ray raylet"), ("dashboard/agent", "ray dashboard agent"),
                  ("runtime_env/agent", "ray runtime-env agent"), ("log_monitor", "ray log monitor"),
                  ("autoscaler/_private/monitor.py", "ray autoscaler monitor"), ("dashboard/dashboard.py", "ray dashboard head"),
                  ("ray::IDLE", "ray idle worker"), ("_system/janitor.py", "shmbench janitor"),
                  ("hydra_pmi_proxy", "mpich hydra proxy"), ("mpiexec", "mpiexec"), ("forkserver", "forkserver"),
                  ("loky", "loky"))


def runtime_processes(parent: int, known: Iterable[int]) -> list[tuple[int, str]]:
    """(pid, role) of every descendant of ``parent`` that is not among ``known`` (the workers): what
    a runtime runs beside them — Ray's raylet, GCS and agents, mpiexec and its proxies, trackers —
    so a strategy is charged for all the memory it holds, not only its workers'."""
    known = set(known)
    out = []
    try:
        children = psutil.Process(parent).children(recursive=True)
    except psutil.NoSuchProcess:
        return out
    for child in children:
        if child.pid in known:
            continue
        try:
            cmdline = " ".join(child.cmdline())
            role = next((r for word, r in _RUNTIME_ROLES if word in cmdline), child.name())
        except psutil.Error:  # gone meanwhile, or a zombie
            continue
        out.append((child.pid, f"runtime: {role}"))
    return out


def total_pss(processes: Iterable[ProcessMemory]) -> int:
    return sum(p.pss for p in processes)


def segment_maps(pid: int, needle: str) -> list[dict]:
    """The mappings of ``pid`` whose path contains ``needle``, like lines of ``pmap -x``."""
    try:
        maps = psutil.Process(pid).memory_maps(grouped=True)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []
    return [{"path": m.path, "size": m.size, "rss": m.rss, "pss": m.pss} for m in maps if needle in m.path]
