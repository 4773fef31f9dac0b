"""A time limit on one phase, kept by SIGALRM in the main thread.

The parent spends a phase waiting on its workers (a pipe, ``ray.get``, a future, an MPI line) or
working itself (serial's fill, a kernel's reference): the signal's handler raises `TimeLimit`
in either, between two bytecodes, whatever the runtime. Should something drop it (an exception
raised inside a ``__del__`` is printed and dropped), it is raised again each second until the phase
ends. Outside the main thread no signal can be had, and no limit is kept.
"""
from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: Once past the limit, the exception is raised again this often until the phase gives up.
_AGAIN_SECONDS = 1.0

#: The time limit on each phase of each pass when the user sets none (``--timeout``): serial's
#: reference gets FIRST_LIMIT (nothing is measured yet); then every phase, serial's included,
#: gets LIMIT_FACTOR times serial's slowest phase of its first pass, and never under LIMIT_FLOOR: a runtime's start
#: (Ray's, Dask's) takes seconds whatever the size. The slowest honest phase of the default
#: comparison here was Ray's start, 3.3 s (23x serial's slowest), of the 60 s it would be given.
FIRST_LIMIT, LIMIT_FACTOR, LIMIT_FLOOR = 600.0, 50.0, 60.0


def phase_limit(serial_phases: dict[str, float]) -> float:
    """The time limit on each phase, scaled by serial's first pass (``serial_phases``)."""
    return max(LIMIT_FLOOR, LIMIT_FACTOR * max(serial_phases.values(), default=0.0))


class TimeLimit(RuntimeError):
    """A phase ran past its time limit."""


@contextmanager
def limit(seconds: float | None, what: str) -> Iterator[None]:
    """Raise `TimeLimit` in the block once ``seconds`` have gone; no limit when None or 0."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame) -> None:
        raise TimeLimit(f"{what} ran past its time limit of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds, _AGAIN_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
