"""Process-tree memory with psutil: the programmatic form of the book's ``ps``/``pmap`` check.

PSS (proportional set size) splits each shared page between the processes mapping it, so
the PSS summed over the parent and its workers counts one shared matrix once, and W private
copies W times. asv's ``peakmem_`` sees only the benchmark process, which is why we sum here.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import psutil


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


def snapshot(pids_by_role: Iterable[tuple[int, str]]) -> list[ProcessMemory]:
    """Memory of each (pid, role) that is still alive."""
    out = []
    for pid, role in pids_by_role:
        try:
            info = psutil.Process(pid).memory_full_info()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        out.append(ProcessMemory(pid, role, info.rss, info.pss, info.uss, info.shared))
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
