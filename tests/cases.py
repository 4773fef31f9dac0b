"""The strategies and start methods the tests run over, read from each strategy's traits."""
from __future__ import annotations

import shmbench
from shmbench.strategies import REGISTRY

METHODS = list(shmbench.START_METHODS)
PROCESS_STRATEGIES = [name for name, cls in REGISTRY.items() if cls.traits.processes]
#: Every strategy with workers of its own (threads or processes).
PARALLEL = [name for name, cls in REGISTRY.items() if cls.traits.parallel]
#: Strategies on shmbench's own process group, with its death report down to the block.
GROUP_STRATEGIES = [name for name, cls in REGISTRY.items() if cls.traits.launcher == "multiprocessing"]
SHARED_GROUP = [name for name in GROUP_STRATEGIES if REGISTRY[name].traits.shares_memory]


def methods_for(name: str) -> list[str | None]:
    """The start methods a strategy runs under; [None] where its launcher has its own way."""
    return list(REGISTRY[name].traits.start_methods) or [None]


def runs() -> list[tuple[str, str | None]]:
    """Every (strategy, start method) that makes sense."""
    return [(name, method) for name in REGISTRY for method in methods_for(name)]
#: Strategies that run across nodes (``--nodes``).
NODE_STRATEGIES = [name for name, cls in REGISTRY.items() if cls.traits.nodes]


def through(strategy, last: str):
    """Run ``strategy``'s phases in their order (``shmbench.PHASES``) up to and including ``last``;
    ``touch`` and ``internode`` only when named as ``last``, ``verify`` never (it is the driver's)."""
    order = [p for p in shmbench.PHASES if p not in ("touch", "internode", "verify", "close") or p == last]
    for phase in order[:order.index(last) + 1]:
        getattr(strategy, phase)()
    return strategy


def wait_until(done, what: str, timeout: float = 30.0, poll: float = 0.01) -> None:
    """Wait for ``done()`` to hold; fail the test, saying ``what`` never happened, after ``timeout``."""
    import time

    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(poll)


def default_sigint() -> None:
    """For ``preexec_fn``: a shell that starts pytest in the background ignores SIGINT, and an
    ignored SIGINT is inherited: Python would then install no KeyboardInterrupt handler in the command."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
