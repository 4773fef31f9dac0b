"""The two ways a worker fails, and the one-line reports that name it: which worker, in which
command, where in its share, and how it ended."""
from __future__ import annotations

import os
import re
import shutil

from ..._system import preflight
from ...plan import Plan


class WorkerError(RuntimeError):
    """A worker raised; the message carries the worker's traceback."""


class WorkerDiedError(RuntimeError):
    """A worker process ended without answering (killed, or crashed in C code)."""


def died(slot: int | None, pid: int | None, during: str, where: str = "", how: str = "") -> WorkerDiedError:
    """The one death report: which worker (slot and pid), in which command, where it was, how it ended."""
    who = "a worker" if slot is None else f"worker {slot} (pid {pid})"
    return WorkerDiedError(f"{who} died during {during}{how}{where}")


def failed(during: str, detail: str) -> WorkerError:
    """A worker's exception: its own last line (the exception and its message) on the first line,
    which is what a table or a one-line report shows, and the worker's whole traceback after it."""
    lines = [line.strip() for line in detail.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else "no detail"
    # A kernel's failure already says which kernel, exception, worker and rows: not who wrapped it.
    last = re.sub(r"^shmbench\.kernels\.KernelError: ", "", last)
    return WorkerError(f"a worker failed during {during}: {last}\n{detail}")


def bus_error() -> str:
    """What a worker's SIGBUS means here, in words: a page of the tmpfs (/dev/shm) or of the file
    the matrix lives in could not be had, its file system being full."""
    room = ""
    if os.path.isdir(preflight.SHM_DIR):
        usage = shutil.disk_usage(preflight.SHM_DIR)
        room = f"; {preflight.SHM_DIR} has {usage.free / 2**20:.0f} MiB free of {usage.total / 2**20:.0f} MiB"
    return f", SIGBUS: a page of the shared matrix could not be had, its file system is full{room}"


def on_block(plan: Plan, rows: range, at: int | None) -> str:
    """Where in its share a worker on ``rows`` is, ``at`` being its block (None: before its first)."""
    blocks = plan.blocks_of(rows)
    if not blocks:
        return ""
    mine = f"its blocks {blocks.start}-{blocks.stop - 1}"
    return f" before its first block, of {mine}" if at is None else f" on block {at} of {mine}"
