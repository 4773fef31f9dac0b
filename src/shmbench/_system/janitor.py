"""A janitor: a small process that cleans up after a parent killed outright (SIGKILL runs no handler).

Workers watch the parent themselves, but a runtime also starts processes that are none of ours to
program (Ray's raylets, GCS and agents, which outlived a killed parent here) and writes
files and directories of its own (Ray's session, Dask's scratch space, MPICH's segments in
/dev/shm, which an aborted job never unlinks). The parent tells the janitor, over
its standard input, which processes to end and which paths to remove; when that input closes
without the word "done" (the parent died), the janitor ends and removes them, then exits.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterable

import psutil


class Janitor:
    """One janitor per runtime; ``close`` dismisses it once the runtime closed itself."""

    def __init__(self) -> None:
        # A session of its own: an interrupt meant for the parent's group does not reach it.
        # Run as a script: it needs psutil and the standard library, not shmbench (numpy and all).
        self._proc = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE, start_new_session=True)

    def watch(self, pids: Iterable[int] = (), paths: Iterable[str] = ()) -> None:
        """Processes to end and paths to remove should the parent die."""
        self._proc.stdin.write(json.dumps({"pids": list(pids), "paths": list(paths)}).encode() + b"\n")
        self._proc.stdin.flush()

    def close(self) -> None:
        try:
            self._proc.stdin.write(b"done\n")
            self._proc.stdin.close()
        except OSError:
            pass
        self._proc.wait()


def _clean(processes: list[psutil.Process], paths: list[str]) -> None:
    alive = []
    for process in processes:
        try:
            process.kill()  # psutil checks first that the pid is still the process it was told of
            alive.append(process)
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=5)
    for path in paths:
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.unlink(path)
            except OSError:
                pass


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)  # its start time is taken now, so a reused pid is not mistaken for it
    except psutil.Error:
        return None


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    processes: list[psutil.Process] = []
    paths: list[str] = []
    for line in sys.stdin.buffer:
        if line.strip() == b"done":
            return
        told = json.loads(line)
        processes += [p for p in map(_process, told["pids"]) if p is not None]
        paths += told["paths"]
    _clean(processes, paths)  # the input closed without "done": the parent is gone


if __name__ == "__main__":
    main()
