"""SIGINT and SIGTERM as exceptions that cannot be lost.

Python runs a signal's handler between any two bytecodes of the main thread, also inside a
``__del__`` or a weakref callback, where the exception it raises is printed and dropped
("Exception ignored in ..."); a comparison then ran to its end after its user pressed Ctrl-C. So
the handler also remembers the signal, and a long loop calls `check` between its steps: an
interrupt that was dropped is raised again there.
"""
from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


class Terminated(KeyboardInterrupt):
    """SIGTERM (a batch scheduler, ``kill``): handled as an interrupt, reported with exit 143."""


_received: int | None = None


def _handler(signum: int, frame) -> None:
    global _received
    if signum == signal.SIGTERM:
        _received = signum
        # A second SIGTERM while workers are stopped and segments freed must not cut that short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    elif _received is None:
        _received = signum
    raise _exception()


def _exception() -> KeyboardInterrupt:
    return Terminated() if _received == signal.SIGTERM else KeyboardInterrupt()


def received() -> int | None:
    """The signal that interrupted this command (SIGTERM over SIGINT), or None."""
    return _received


def check() -> None:
    """Raise the interrupt again if one was received: its first raise may have been dropped."""
    if _received is not None:
        raise _exception()


@contextmanager
def handled() -> Iterator[None]:
    """SIGINT and SIGTERM handled here for the block, the earlier handlers restored after it.
    A SIGINT that was ignored stays ignored (a shell starts background jobs so)."""
    global _received
    _received = None
    wanted = [signal.SIGTERM]
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        wanted.append(signal.SIGINT)
    previous = {signum: signal.signal(signum, _handler) for signum in wanted}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
