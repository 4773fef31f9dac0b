"""SIGINT and SIGTERM as exceptions that cannot be lost.

Python runs a signal's handler between any two bytecodes of the main thread, also inside a
``__del__``, a weakref callback or an at-fork hook, where the exception it raises is printed and
dropped ("Exception ignored in ..."); a comparison then ran to its end after its user pressed
Ctrl-C. So the handler also remembers the signal, a long loop calls `check` between its steps to
raise a dropped one again, and the traceback such a drop prints is kept off the terminal.
"""
from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from .environ import setting


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
    printing = sys.unraisablehook

    def unraisable(unraisable) -> None:
        # Our interrupt, raised where it could not propagate (a __del__, an at-fork hook such as
        # logging's): said once by the command, raised again by `check`, not printed as a traceback.
        if _received is None or not isinstance(unraisable.exc_value, KeyboardInterrupt):
            printing(unraisable)

    sys.unraisablehook = unraisable
    try:
        yield
    finally:
        sys.unraisablehook = printing
        for signum, handler in previous.items():
            signal.signal(signum, handler)


#: Ray's switch for programs that handle signals themselves (its constants name the JVM's). Ray's
#: C++ failure handler otherwise takes SIGTERM while ``ray.init`` connects (a stack dump, then
#: SIGSEGV or SIGTERM's default at exit), and ``ray.shutdown`` leaves SIGTERM at its default
#: under Python's feet: a SIGTERM in the second of a shutdown that follows, or in any later cell,
#: killed the process outright, nothing stopped or said (measured with sigaction here).
RAY_SWITCH = "RAY_DISABLE_FAILURE_SIGNAL_HANDLER"


def _switch_ray_off() -> None:
    """Ray's switch, for a module of Ray's already imported: it read the variable then, once."""
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:
        constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER = True


@contextmanager
def kept() -> Iterator[None]:
    """A library's start or stop made whole with respect to SIGINT and SIGTERM, and the process's
    handlers kept through it. A signal that comes meanwhile is held and given to them after it: an
    interrupt raised in the middle of ``ray.init`` left a driver half made, and the process died of
    SIGSEGV at exit (2 of 16 tries here). ``ray.init`` also makes SIGTERM ``sys.exit(15)`` first
    thing: such an exit is given to the caller's handler as the SIGTERM it was. The handlers are
    set again after the block, in C too (a library may have changed them under Python's feet), and
    Ray's failure handler is switched off for the block (``RAY_SWITCH``)."""
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    held: list[int] = []

    def hold(signum: int, frame) -> None:
        held.append(signum)

    _switch_ray_off()
    for signum, handler in handlers.items():
        if handler is not None and handler is not signal.SIG_IGN:
            signal.signal(signum, hold)
    try:
        with setting(RAY_SWITCH, "1"):
            yield
    except SystemExit as error:
        if error.code != signal.SIGTERM:
            raise
        held.append(signal.SIGTERM)
        raise
    finally:
        for signum, handler in handlers.items():
            if handler is not None:  # None: installed outside Python, nothing to give back
                signal.signal(signum, handler)
        for signum in dict.fromkeys(held):
            signal.raise_signal(signum)  # the handler raises here (or the default ends us, as it would have)
