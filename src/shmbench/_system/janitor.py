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
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import psutil


#: Set in the environment of what a runtime starts (``Janitor.marking``): processes it starts later
#: (Ray's agents come up after its raylet) carry it too, and are found by it.
MARK_ENV = "SHMBENCH_JANITOR_MARK"
_SWEEPS = 5


class Janitor:
    """One janitor per runtime; ``close`` dismisses it once the runtime closed itself."""

    def __init__(self) -> None:
        self.mark = uuid.uuid4().hex
        # A session of its own: an interrupt meant for the parent's group does not reach it.
        # Run as a script: it needs psutil and the standard library, not shmbench (numpy and all).
        self._proc = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE, start_new_session=True)

    @property
    def pid(self) -> int:
        return self._proc.pid

    def watch(self, pids: Iterable[int] = (), paths: Iterable[str] = ()) -> None:
        """Processes to end and paths to remove should the parent die."""
        self._proc.stdin.write(json.dumps({"pids": list(pids), "paths": list(paths)}).encode() + b"\n")
        self._proc.stdin.flush()

    @contextmanager
    def marking(self) -> Iterator[None]:
        """Every process started meanwhile, and every one those start, carries this janitor's mark:
        should the parent die, the janitor ends them all."""
        from .environ import setting  # here, not above: the janitor itself runs as a script

        self._proc.stdin.write(json.dumps({"pids": [], "paths": [], "mark": self.mark}).encode() + b"\n")
        self._proc.stdin.flush()
        with setting(MARK_ENV, self.mark):
            yield

    def close(self, clean: bool = False) -> None:
        """Dismiss the janitor; with ``clean`` (a runtime whose start was cut short knows not all it
        started), it first does what it would do had the parent died."""
        try:
            if not clean:
                self._proc.stdin.write(b"done\n")
            self._proc.stdin.close()
        except OSError:
            pass
        self._proc.wait()


def _clean(processes: list[psutil.Process], marks: set[str], paths: list[str]) -> None:
    """End the processes, what they started, every process with one of ``marks`` and every one
    holding a file in one of the folders among ``paths``; again while any is found (a dying runtime
    may start one more), then remove the paths."""
    folders = tuple(os.path.join(path, "") for path in paths if os.path.isdir(path))
    for _ in range(_SWEEPS):
        found = {p for p in processes if p.is_running()}  # psutil checks the pid is still that process
        for process in list(found):
            try:
                found.update(process.children(recursive=True))
            except psutil.Error:
                pass
        found.update(p for p in psutil.process_iter() if _marked(p, marks) or _holds(p, folders))
        found = {p for p in found if _running(p)} - {psutil.Process()}
        if not found:
            break
        for process in found:
            try:
                process.kill()
            except psutil.Error:
                pass
        # Until each is gone or a zombie: a zombie is its parent's to reap (ours, who may be
        # waiting for us), and psutil.wait_procs waited out its whole timeout on one.
        deadline = time.monotonic() + 5
        while any(_running(p) for p in found) and time.monotonic() < deadline:
            time.sleep(0.02)
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
    marks: set[str] = set()
    for line in sys.stdin.buffer:
        if line.strip() == b"done":
            return
        told = json.loads(line)
        processes += [p for p in map(_process, told["pids"]) if p is not None]
        paths += told["paths"]
        marks |= {told["mark"]} if told.get("mark") else set()
    _clean(processes, marks, paths)  # the input closed without "done": the parent is gone


def _running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _marked(process: psutil.Process, marks: set[str]) -> bool:
    try:
        return bool(marks) and process.environ().get(MARK_ENV) in marks
    except psutil.Error:
        return False


def _holds(process: psutil.Process, folders: tuple[str, ...]) -> bool:
    """Whether ``process`` has a file open in one of ``folders`` (its logs, say). Ray's agents retitle
    themselves over their environment, mark and all, and their raylet may be gone already."""
    try:
        return bool(folders) and any(f.path.startswith(folders) for f in process.open_files())
    except psutil.Error:
        return False


if __name__ == "__main__":
    main()
