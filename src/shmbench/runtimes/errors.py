"""The two ways a worker fails, and the one-line reports that name it: which worker, in which
command, where in its share, and how it ended."""
from __future__ import annotations

import re

from ..plan import Plan


class WorkerError(RuntimeError):
    """A worker raised; the message carries the worker's traceback."""


class WorkerDiedError(RuntimeError):
    """A worker process ended without answering (killed, or crashed in C code). ``code`` is its
    exit code where the runtime saw it (minus the signal that ended it), else None."""

    def __init__(self, who: str, during: str, where: str = "", how: str = "", code: int | None = None) -> None:
        self.who, self.during, self.where, self.how, self.code = who, during, where, how, code
        super().__init__(self._words())

    def _words(self) -> str:
        how = ", ".join(part for part in (f"exit code {self.code}" if self.code is not None else "", self.how) if part)
        return f"{self.who} died during {self.during}{f' ({how})' if how else ''}{self.where}"

    def __reduce__(self):
        return type(self), (self.who, self.during, self.where, self.how, self.code)

    def because(self, cause: str) -> None:
        """Add what the death says of its cause (memory that ran out) to the report."""
        if cause:
            self.how = f"{self.how}, {cause}" if self.how else cause
            self.args = (self._words(),)


def died(slot: int | None, pid: int | None, during: str, where: str = "", how: str = "",
         code: int | None = None) -> WorkerDiedError:
    """The one death report: which worker (slot and pid), in which command, where it was, how it
    ended (``how`` in words, without parentheses; ``code`` its exit code, where known)."""
    who = "a worker" if slot is None else f"worker {slot} (pid {pid})"
    return WorkerDiedError(who, during, where, how, code)


def failed(during: str, detail: str) -> WorkerError:
    """A worker's exception: its own last line (the exception and its message) on the first line,
    which is what a table or a one-line report shows, and the worker's whole traceback after it."""
    lines = [line.strip() for line in detail.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else "no detail"
    # A kernel's failure already says which kernel, exception, worker and rows: not who wrapped it.
    last = re.sub(r"^shmbench\.kernels\.KernelError: ", "", last)
    return WorkerError(f"a worker failed during {during}: {last}\n{detail}")



def on_block(plan: Plan, rows: range, at: int | None) -> str:
    """Where in its share a worker on ``rows`` is, ``at`` being its block (None: before its first)."""
    blocks = plan.blocks_of(rows)
    if not blocks:
        return ""
    mine = f"its blocks {blocks.start}-{blocks.stop - 1}"
    return f" before its first block, of {mine}" if at is None else f" on block {at} of {mine}"
