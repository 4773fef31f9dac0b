"""Memory that ran out, named for what it is when a worker dies of it.

A worker that touches a page of a full tmpfs (or of a file on a full disk) dies of SIGBUS; one the
OOM killer ends dies of SIGKILL, like one somebody killed. Only the process group sees its
workers' exit codes; pools, launchers and engines (loky, mpiexec, Ray, Dask) say that a worker
died and little more. So the evidence is read from the machine instead, the same way for all: the
memory cgroup's count of OOM kills since the cell started, and the room left where the matrix lives.
"""
from __future__ import annotations

import os
import shutil
import signal

from . import oom

#: Below this much room a file system counts as full: a page or two may be left over.
FULL_BYTES = 2**20


class Witness:
    """Taken when a cell starts; asked, when one of its workers dies, whether memory ran out."""

    def __init__(self, directory: str | None) -> None:
        #: The directory of the file system the matrix's pages come from (None: no file system).
        self.directory = directory
        self.ooms = oom.kills()

    def room(self) -> tuple[int, int] | None:
        """(free, total) bytes where the matrix lives; None when that is no file system of ours."""
        if not self.directory or not os.path.isdir(self.directory):
            return None
        usage = shutil.disk_usage(self.directory)
        return usage.free, usage.total

    def cause(self, code: int | None) -> str:
        """What a worker's death with exit code ``code`` (None: not known) says of memory, in
        words; "" when nothing points at memory."""
        now = oom.kills()
        if code in (None, -signal.SIGKILL) and None not in (self.ooms, now) and now > self.ooms:
            who = "killed by the OOM killer" if code else "the OOM killer ended a process of its cgroup meanwhile"
            return f"{who}: {oom.usage()}"
        room = self.room()
        full = room is not None and room[0] < FULL_BYTES
        if code == -signal.SIGBUS or (code is None and full):
            where = "" if room is None else \
                f"; {self.directory} has {room[0] / 2**20:.0f} MiB free of {room[1] / 2**20:.0f} MiB"
            if code is None:  # the death itself unseen: the full file system is the evidence
                return f"the shared matrix's file system is full, where a write dies of SIGBUS{where}"
            return f"SIGBUS: a page of the shared matrix could not be had, its file system is full{where}"
        return ""
