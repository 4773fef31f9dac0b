"""The strategies and start methods the tests run over, derived from the registry."""
from __future__ import annotations

import shmbench
from shmbench.strategies import REGISTRY

METHODS = list(shmbench.START_METHODS)
PROCESS_STRATEGIES = [name for name, cls in REGISTRY.items() if cls.uses_processes]
#: Every strategy with workers of its own (threads or processes).
PARALLEL = [name for name, cls in REGISTRY.items() if cls.parallel]
#: Strategies on shmbench's own worker group (book runs the book's multiprocessing.Pool).
GROUP_STRATEGIES = [name for name in PROCESS_STRATEGIES if REGISTRY[name].fixed_start_method is None]
SHARED_GROUP = [name for name in GROUP_STRATEGIES if REGISTRY[name].shares_memory]


def methods_for(name: str) -> list[str | None]:
    cls = REGISTRY[name]
    if not cls.uses_processes:
        return [None]
    return [cls.fixed_start_method] if cls.fixed_start_method else METHODS


def runs() -> list[tuple[str, str | None]]:
    """Every (strategy, start method) that makes sense."""
    return [(name, method) for name in REGISTRY for method in methods_for(name)]
