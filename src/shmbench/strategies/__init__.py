"""The registry of strategies, by name."""
from __future__ import annotations

from ..peers import PEERS
from ..plan import Plan
from .base import Strategy, Traits
from .book import Book
from .dask_workers import DaskStrategy
from .joblib_memmap import Joblib
from .memmap import Memmap, MemmapDisk
from .mp_array import MpArray
from .mpi_shm import MpiShm
from .mpi_window import MpiWindow
from .peer import peer_of
from .pickled import Pickled
from .ray_store import RayStore
from .serial import Serial
from .shared_memory import SharedMemoryStrategy
from .threads import Threads

REGISTRY: dict[str, type[Strategy]] = {cls.name: cls for cls in (
    Serial, Threads, MpArray, SharedMemoryStrategy, Memmap, MemmapDisk, Joblib, RayStore, MpiWindow, MpiShm, Pickled,
    Book, DaskStrategy)}


#: Each engine contender's peer (``shmbench.peers``): cells of their own, off by default.
PEER_REGISTRY: dict[str, type[Strategy]] = {cls.name: cls for cls in map(peer_of, PEERS)}


def peer_for(name: str) -> str | None:
    """The peer of strategy ``name``: the one of its engine (same launcher), or None."""
    launcher = get(name).traits.launcher
    return next((peer for peer, cls in PEER_REGISTRY.items() if cls.traits.launcher == launcher
                 and name not in PEER_REGISTRY), None)


def strategies() -> list[str]:
    """The names of every registered strategy, available here or not."""
    return list(REGISTRY)


def get(name: str) -> type[Strategy]:
    try:
        return REGISTRY[name] if name in REGISTRY else PEER_REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown strategy {name!r}; choose one of: {', '.join(REGISTRY)}") from None


def create(name: str, plan: Plan, workers: int = 1, workload: str = "random",
           start_method: str | None = None, nodes: int = 1) -> Strategy:
    """A new, unallocated strategy object."""
    cls = get(name)
    reason = cls.unavailable_reason()
    if reason:
        raise ValueError(f"strategy {name!r} is not available here: {reason}")
    return cls(plan, workers, workload, start_method, nodes)


__all__ = ["PEER_REGISTRY", "REGISTRY", "Strategy", "Traits", "create", "get", "peer_for", "strategies"]
