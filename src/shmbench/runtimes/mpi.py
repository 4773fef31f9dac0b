"""MPI ranks launched by ``mpiexec -n W``, driven from the parent over Unix sockets.

Each rank on this host reads commands from a socket of its own; rank 0 passes each to the ranks
of other hosts with ``bcast``, collects the answers with ``gather`` and sends them back
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
import time
from multiprocessing.connection import Connection, wait

import numpy as np
import psutil

from .._system.files import remove_file
from .._system.preflight import SHM_DIR
from .base import FirstDeath, OnPart, Runtime, WorkerDiedError, deliver, died, end, failed, ignore
from .seat import Command

#: Comma-separated hosts for mpiexec (``shmbench run --hosts a,b``): real nodes instead of pretend ones.
HOSTS_ENV = "SHMBENCH_MPI_HOSTS"
_START_SECONDS = 120.0
_POLL_SECONDS = 0.2

# How a rank waits for the others: MPICH's blocking collectives poll, so a rank waiting in them
# burns a whole core (three ranks idle for 3 s used 3.0 s of CPU each here), taking it from the
# work being timed beside them. Sleeps between tests grow to this cap: a rank done early notices
# the last one within it, and one that waits there for long wakes 2000 times a second (about 8%
# of a core here), so ranks on the parent's host wait for commands on a socket instead.
WAIT_FIRST_SECONDS = 20e-6
WAIT_CAP_SECONDS = 0.5e-3


def quiet_barrier(comm) -> None:
    """A barrier that sleeps while it waits (``Ibarrier`` tested between growing sleeps), where
    ``comm.Barrier()`` would spin. Every rank reaches it before a collective, which then finds
    the others already there."""
    request = comm.Ibarrier()
    pause = WAIT_FIRST_SECONDS
    while not request.Test():
        time.sleep(pause)
        pause = min(2 * pause, WAIT_CAP_SECONDS)


def next_command(comm, line, quietly: bool = True):
    """The parent's next command, on every rank of ``comm``: read from ``line`` by the ranks that
    have one (rank 0 always), passed on by rank 0's ``bcast``; None once the parent is done or gone.
    ``quietly``: the ranks without a line sleep until rank 0 has it (MPICH's bcast would spin)."""
    command = None
    if line is not None:
        try:
            command = line.recv()
        except (EOFError, OSError):
            pass  # the parent is gone: every rank stops
    if quietly:
        quiet_barrier(comm)
    return comm.bcast(command, root=0)


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("mpi4py", "mpich"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            pass
    return ", ".join(found)


def mpiexec() -> str | None:
    """The mpiexec beside this interpreter (the ``mpich`` wheel's), else the first on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return beside if os.access(beside, os.X_OK) else shutil.which("mpiexec")


#: How long the hosts may take to run a process each before a run across them is refused.
PROBE_SECONDS = 10.0


def probe_hosts(hosts: list[str]) -> str | None:
    """Why mpiexec cannot start this interpreter on each of ``hosts``, or None; asked before
    anything runs, through the launcher hydra will use for the run (ssh unless ``HYDRA_LAUNCHER``
    names another), so a host it cannot reach is named in one line instead of failing a cell."""
    if mpiexec() is None:  # the mpi cells are refused as unavailable, saying why
        return None
    for host in hosts:
        try:
            socket.getaddrinfo(host, None)
        except OSError as error:
            return f"host {host} cannot be resolved: {error.strerror or error}"
    # A job a host, all at once: hydra ends a whole job when one proxy cannot be launched, and
    # its own report does not say on which host.
    jobs = {host: subprocess.Popen([mpiexec(), "-hosts", host, "-n", "1", sys.executable, "-c", "print('here')"],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True) for host in hosts}
    deadline = time.monotonic() + PROBE_SECONDS
    silent: dict[str, str] = {}
    try:
        for host, proc in jobs.items():
            try:
                out, err = proc.communicate(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                end([proc, *_children(proc.pid)])  # hydra ends its proxies when asked to stop
                out, err = proc.communicate()
                err = f"no answer within {PROBE_SECONDS:.0f} s"
            if out.strip() != "here":
                # The launcher's own words (ssh's "connect to host ... refused") before hydra's.
                said = [line.strip() for line in err.splitlines() if line.strip()]
                silent[host] = next((line for line in said if not line.startswith("[")), said[0] if said else "?")
    finally:  # an interrupt meanwhile: none of them is left running
        end([each for proc in jobs.values() if proc.poll() is None for each in (proc, *_children(proc.pid))])
    if not silent:
        return None
    launcher = os.environ.get("HYDRA_LAUNCHER", "ssh")
    return "; ".join(f"mpiexec cannot start a process on host {host} (launcher {launcher}): {why}"
                     for host, why in silent.items())


def _children(pid: int) -> list[int]:
    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


class MpiRanks(Runtime):
    launcher = "mpiexec"

    def start(self) -> list[int]:
        # Rank 0 removes its node's segments should the parent die; the janitor every node's.
        self._janitor = self.hire_janitor()
        self._segments: set[str] = set()
        self.made(self._remove_segments)
        self._log = tempfile.TemporaryFile("w+")
        self.made(self._log.close)
        self._lines: dict[int, Connection] = {}  # rank -> its socket, for the ranks on this host
        self.made(self._close_lines)
        self._busy = True  # until the ranks have answered: a job cut short in its start is ended, not asked
        self._here: list[bool] = []
        self._hosts: list[str] = []  # per rank, its hostname
        folder = tempfile.mkdtemp(prefix="shmbench-mpi-")  # private (0700): only we reach the socket
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._control = os.path.join(folder, "control")
        try:
            server.bind(self._control)
            server.listen(len(self.shares))
            exchange = self.attachments[0]
            self._proc = subprocess.Popen(
                [mpiexec(), *self._placement(), "-n", str(len(self.shares)), sys.executable, *self._rank_arguments(),
                 exchange.path, "direct" if exchange.direct else "window", json.dumps(dataclasses.asdict(self.plan))],
                stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
                env=self._environment())
            self.made(self._stop_job)
            # Every rank on this host calls in with its rank before rank 0 answers "start" (which
            # says how many there are); rank 0's line carries the answers.
            while 0 not in self._lines:
                self._accept(server)
            self._conn = self._lines[0]
            started = self._answer("start")[0]
            while len(self._lines) < sum(here for _, _, _, here, _ in started):
                self._accept(server)
        finally:
            server.close()
            shutil.rmtree(folder, ignore_errors=True)
        self.ids, self.nodes = [pid for pid, *_ in started], [node for _, node, *_ in started]
        self._here = [bool(here) for _, _, _, here, _ in started]  # a rank elsewhere: its pid means nothing here
        self._hosts = [host for *_, host in started]
        self._first_death = FirstDeath(self.ids, {rank: line.fileno() for rank, line in self._lines.items()})
        self.made(self._first_death.close)  # it polls the lines: stopped before they close
        # MPICH unlinks its /dev/shm segments at MPI_Finalize, which a killed rank never reaches:
        # each rank named the ones it maps, to remove what is left of them at close.
        self._segments.update(path for _, _, paths, _, _ in started for path in paths
                              if path.startswith(f"{SHM_DIR}/mpich_shm_"))
        self._janitor.watch(paths=sorted(self._segments))
        self.settings = {"wait": "ranks on this host block on a socket of their own between commands; a rank "
                                 f"done early sleeps in an Ibarrier tested every <= {WAIT_CAP_SECONDS * 1e3:g} ms",
                         "launch": f"mpiexec -n {len(self.shares)}" + "".join(f" {o}" for o in self._placement()),
                         "versions": _versions()}
        return self.ids

    def on_this_host(self, slot: int) -> bool:
        return self._here[slot] if self._here else True

    def busy(self) -> list[str]:
        """While a command is out, the ranks on other hosts: their answers come through rank 0, so
        the parent cannot tell which holds it up, but a host cut off is among them. [] otherwise."""
        if not self._busy or not self.ids:
            return []
        return [f"worker {slot} (pid {self.ids[slot]}) on host {self._hosts[slot]}"
                for slot, here in enumerate(self._here) if not here]

    def _accept(self, server: socket.socket) -> None:
        """One more rank's line; a job that ended while starting is reported."""
        deadline = time.monotonic() + _START_SECONDS
        while not wait([server], _POLL_SECONDS):
            if self._proc.poll() is not None:
                raise self._died("start")
            if time.monotonic() > deadline:
                raise died(None, None, "start", how=f"no rank called in within {_START_SECONDS:.0f} s")
        conn = Connection(server.accept()[0].detach())
        self._lines[conn.recv()] = conn

    def run(self, command: Command, on_part: OnPart = ignore, source: np.ndarray | None = None) -> list[int]:
        self._busy = True
        try:
            for conn in self._lines.values():
                conn.send(command)
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
        if self._proc.poll() is not None:  # ranks that answer without their launcher: a job no one manages
            raise self._died(what)
        if reply[0] == "error":
            raise failed(what, reply[1])
        self._busy = False
        return reply[1:]

    def _died(self, what: str) -> Exception:
        try:
            self._proc.wait(5.0)  # mpiexec ends the whole job when a rank dies
        except subprocess.TimeoutExpired:
            pass
        if self._proc.returncode is not None and self._proc.returncode < 0:  # mpiexec itself was killed
            return WorkerDiedError(f"mpiexec (pid {self._proc.pid})", what, code=self._proc.returncode)
        self._log.seek(0)
        log = self._log.read()
        if not self.ids:
            lines = [line for line in log.splitlines() if line.strip()][-6:]
            return died(None, None, what, "".join(f"\n{line}" for line in lines),
                        how=f"mpiexec exit code {self._proc.returncode}")
        # The rank seen to die first; mpiexec (hydra) killed the others, and its report may name
        # any of them, so its word is taken only where the watch saw nothing.
        slot = self._first_death.first()
        if slot is None:
            named = [int(pid) for pid in re.findall(r"PID (\d+) RUNNING AT", log)]
            pid = next((pid for pid in named if pid in self.ids), None)
            slot = None if pid is None else self.ids.index(pid)
        pid = None if slot is None else self.ids[slot]
        where = f" on host {self._hosts[slot]}" if slot is not None and not self._here[slot] else ""
        how = re.search(r"EXIT STRING: (.*)", log)
        signum = re.search(r"\(signal (\d+)\)", how.group(1)) if how else None
        if signum:  # "Killed (signal 9)": the exit code a child of ours would have had
            return died(slot, pid, what, where, code=-int(signum.group(1)))
        return died(slot, pid, what, where, how=how.group(1).strip() if how else "")

    def _stop_job(self) -> None:
        lines = list(self._lines.values())

        def ask() -> None:
            for line in lines:
                line.send(None)

        end([self._proc, *self._job()], None if self._busy or not lines else ask)

    def _rank_arguments(self) -> list[str]:
        """How a rank is started, up to what tells this job's ranks from any other's."""
        return ["-m", "shmbench.strategies.mpi_rank", str(os.getpid()), socket.gethostname(), self._control]

    def _job(self) -> list[int]:
        """mpiexec's proxies and the ranks it started on this host, before they go. hydra puts each
        in a session of its own: once mpiexec is gone, they are found by their command lines."""
        if self._proc.poll() is None:
            try:
                return [p.pid for p in psutil.Process(self._proc.pid).children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        job = set()
        for process in psutil.process_iter(["cmdline", "ppid"]):
            if (process.info["cmdline"] or [])[1:6] == self._rank_arguments():
                job.add(process.pid)
                try:
                    if psutil.Process(process.info["ppid"]).name() == "hydra_pmi_proxy":
                        job.add(process.info["ppid"])
                except psutil.Error:
                    pass
        return sorted(job)

    def _close_lines(self) -> None:
        for line in self._lines.values():
            line.close()
        self._lines = {}

    def _remove_segments(self) -> None:
        for path in self._segments:
            remove_file(path)
