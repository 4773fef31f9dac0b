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


#: The strategy every speed-up is over (its traits' role says so).
REFERENCE: str = next(name for name, cls in REGISTRY.items() if cls.traits.role == "reference")
#: The known ways an answer measures its winner against, with what the answer calls them.
BASELINES: dict[str, str] = {name: cls.traits.label for role in ("recipe", "baseline")
                             for name, cls in REGISTRY.items() if cls.traits.role == role}
#: The book's recipe, which the markdown report measures the fastest strategy against.
RECIPE: str = next(name for name, cls in REGISTRY.items() if cls.traits.role == "recipe")


def order(name: str) -> int:
    """Where a strategy goes in tables and figures: the registry's order, peers after, others last."""
    known = [*REGISTRY, *PEERS_ORDER]
    return known.index(name) if name in known else len(known)


#: Each engine contender's peer (``shmbench.peers``): cells of their own, off by default.
PEER_REGISTRY: dict[str, type[Strategy]] = {cls.name: cls for cls in (peer_of(REGISTRY[name]) for name in PEERS)}
PEERS_ORDER = tuple(PEER_REGISTRY)


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


__all__ = ["BASELINES", "PEER_REGISTRY", "RECIPE", "REFERENCE", "REGISTRY", "Strategy", "Traits", "create", "get", "order", "peer_for", "strategies"]
