"""MPI ranks launched by ``mpiexec -n W``, driven from the parent over a Unix socket to rank 0.

Rank 0 passes each command to every rank with ``bcast`` and collects the answers with ``gather``
(``shmbench.strategies.mpi_rank``). mpiexec runs in a session of its own; a dead rank is named
from mpiexec's own report. The parent is not a rank: what it reads comes through the exchange
file its attachment names. Several nodes are MPICH's pretend nodes (cliques) on this machine, or
real hosts given in ``SHMBENCH_MPI_HOSTS``; each node's ranks are one block of consecutive ranks,
the first block on the parent's node.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from multiprocessing.connection import Connection, wait

import numpy as np
import psutil

from ..._system.janitor import Janitor
from ..._system.files import remove_file
from ..._system.preflight import SHM_DIR
from .base import FirstDeath, OnPart, Runtime, deliver, died, end, failed, ignore
from .seat import Command

#: Comma-separated hosts for mpiexec (``shmbench run --hosts a,b``): real nodes instead of pretend ones.
HOSTS_ENV = "SHMBENCH_MPI_HOSTS"
_START_SECONDS = 120.0
_POLL_SECONDS = 0.2


def mpiexec() -> str | None:
    """The mpiexec beside this interpreter (the ``mpich`` wheel's), else the first on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return beside if os.access(beside, os.X_OK) else shutil.which("mpiexec")


class MpiRanks(Runtime):
    launcher = "mpiexec"

    def start(self) -> list[int]:
        self._log = tempfile.TemporaryFile("w+")
        folder = tempfile.mkdtemp(prefix="shmbench-mpi-")  # private (0700): only we reach the socket
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            server.bind(os.path.join(folder, "control"))
            server.listen(1)
            server.settimeout(_START_SECONDS)
            self._proc = subprocess.Popen(
                [mpiexec(), *self._placement(), "-n", str(len(self.shares)), sys.executable, "-m",
                 "shmbench.strategies.mpi_rank", str(os.getpid()), socket.gethostname(), server.getsockname(),
                 self.attachments[0].path, json.dumps(dataclasses.asdict(self.plan))],
                stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
                env=self._environment())
            while True:
                if wait([server], _POLL_SECONDS):
                    self._conn = Connection(server.accept()[0].detach())
                    break
                if self._proc.poll() is not None:
                    raise self._died("start")
        finally:
            server.close()
            shutil.rmtree(folder, ignore_errors=True)
        self._busy = True
        started = self._answer("start")[0]
        self.ids, self.nodes = [pid for pid, _, _ in started], [node for _, node, _ in started]
        self._first_death = FirstDeath(self.ids)
        # MPICH unlinks its /dev/shm segments at MPI_Finalize, which a killed rank never reaches:
        # each rank named the ones it maps, to remove what is left of them at close.
        self._segments = {path for _, _, paths in started for path in paths if path.startswith(f"{SHM_DIR}/mpich_shm_")}
        # Rank 0 removes its node's segments should the parent die; the janitor every node's.
        self._janitor = Janitor()
        self._janitor.watch(paths=sorted(self._segments))
        return self.ids

    def run(self, command: Command, on_part: OnPart = ignore, source: np.ndarray | None = None) -> list[int]:
        self._busy = True
        try:
            self._conn.send(command)
        except OSError:
            raise self._died(command.name) from None
        faults, parts = self._answer(command.name)
        deliver(on_part, enumerate(parts))
        return faults

    def _placement(self) -> list[str]:
        """mpiexec's options that put the ranks on their nodes: real hosts (``SHMBENCH_MPI_HOSTS``),
        a block of ranks each, else none (pretend nodes come from the environment)."""
        hosts = os.environ.get(HOSTS_ENV, "").strip()
        return ["-hosts", hosts, "-ppn", str(-(-len(self.shares) // (max(self.nodes) + 1)))] if hosts else []

    def _environment(self) -> dict[str, str]:
        """On one machine, MPICH's cliques make pretend nodes: ``COMM_TYPE_SHARED`` splits the ranks
        into that many blocks, each with shared memory of its own, as MPICH tests multi-node code."""
        env = dict(os.environ)
        nodes = max(self.nodes) + 1
        if nodes > 1 and not env.get(HOSTS_ENV, "").strip():
            env.update(MPIR_CVAR_NUM_CLIQUES=str(nodes), MPIR_CVAR_CLIQUES_BY_BLOCK="1")
        return env

    def internode(self, command: Command, on_part: OnPart = ignore) -> tuple[list[int], int, str]:
        if max(self.nodes) == 0:
            return super().internode(command, on_part)
        moved: list[int] = []
        faults = self.run(Command("internode", command.workload), lambda slot, kind, where, part: moved.append(int(part)))
        return faults, sum(moved), "measured: MPI_Get_count of every message rank 0 received"

    def _answer(self, what: str) -> tuple:
        while not wait([self._conn], _POLL_SECONDS):
            if self._proc.poll() is not None:
                raise self._died(what)
        try:
            reply = self._conn.recv()
        except (EOFError, OSError):
            raise self._died(what) from None
        if reply[0] == "error":
            raise failed(what, reply[1])
        self._busy = False
        return reply[1:]

    def _died(self, what: str) -> Exception:
        try:
            self._proc.wait(5.0)  # mpiexec ends the whole job when a rank dies
        except subprocess.TimeoutExpired:
            pass
        self._log.seek(0)
        log = self._log.read()
        if not self.ids:
            lines = [line for line in log.splitlines() if line.strip()][-6:]
            return died(None, None, what, how=f" (mpiexec exit code {self._proc.returncode})" +
                        "".join(f"\n{line}" for line in lines))
        # The rank seen to die first; mpiexec (hydra) killed the others, and its report may name
        # any of them, so its word is taken only where the watch saw nothing.
        slot = self._first_death.first()
        if slot is None:
            named = [int(pid) for pid in re.findall(r"PID (\d+) RUNNING AT", log)]
            pid = next((pid for pid in named if pid in self.ids), None)
            slot = None if pid is None else self.ids.index(pid)
        pid = None if slot is None else self.ids[slot]
        how = re.search(r"EXIT STRING: (.*)", log)
        return died(slot, pid, what, how=f" ({how.group(1).strip()})" if how else "")

    def close(self) -> None:
        proc, conn, self._proc, self._conn = getattr(self, "_proc", None), getattr(self, "_conn", None), None, None
        try:
            if proc is not None:
                try:  # mpiexec's proxies and the ranks it started, before they go
                    job = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
                except psutil.NoSuchProcess:
                    job = []
                end([proc, *job], None if getattr(self, "_busy", True) or conn is None else lambda: conn.send(None))
        finally:
            if conn is not None:
                conn.close()
            log, self._log = getattr(self, "_log", None), None
            if log is not None:
                log.close()
            for path in getattr(self, "_segments", ()):
                remove_file(path)
            self._segments = set()
            watch, self._first_death = getattr(self, "_first_death", None), None
            if watch is not None:
                watch.close()
            janitor, self._janitor = getattr(self, "_janitor", None), None
            if janitor is not None:
                janitor.close()
