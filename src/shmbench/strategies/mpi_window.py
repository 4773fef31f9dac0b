"""MPI-3 shared memory: W ranks launched with ``mpiexec -n W`` share one ``Allocate_shared`` window.

The ranks (``shmbench.mpi_rank``) fill the window in place, each its share of the blocks. The
parent is not an MPI rank, so it reaches the matrix through an exchange file in /dev/shm that
every rank maps: results are copied out of the window in ``collect``, and the ``rowsum`` input is
copied into it in ``fill``. ``start`` is mpiexec launching W interpreters, MPI_Init, and the window.
mpiexec runs in a session of its own, so the strategy can stop all of it at once. The control
socket and the exchange file lose their names once every rank is connected and mapped.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from multiprocessing.connection import Connection, wait

import psutil

from .. import preflight
from ..memory import segment_maps
from ..work import READ_ONLY
from ..workers import WorkerDiedError, WorkerError, process_alive
from .base import Strategy
from .memmap import create_file, remove_file

_START_SECONDS = 120.0
_STOP_SECONDS = 5.0
_POLL_SECONDS = 0.2
_STDERR_LINES = 6
_MPICH_SEGMENT = "mpich_shm_"


def mpiexec() -> str | None:
    """The mpiexec beside this interpreter (the ``mpich`` wheel's), else the first on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return beside if os.access(beside, os.X_OK) else shutil.which("mpiexec")


class MpiWindow(Strategy):
    name = "mpi"
    summary = "mpiexec -n W ranks sharing one MPI.Win.Allocate_shared window; results copied out to the parent"
    fixed_start_method = "mpiexec"
    shares_memory = False  # the parent reads the exchange file, a copy of the window

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.path: str | None = None
        self._proc: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._pids: list[int] = []
        self._busy = False
        self._segments: set[str] = set()

    @classmethod
    def unavailable_reason(cls) -> str | None:
        try:
            import mpi4py  # noqa: F401
        except ImportError:
            return "mpi4py is not installed (pip install 'shmbench[mpi]')"
        if mpiexec() is None:
            return "no mpiexec found (pip install 'shmbench[mpi]' brings MPICH's)"
        return None

    @property
    def worker_ids(self) -> list[int]:
        return list(self._pids)

    def need(self) -> preflight.Need:
        # The window and the exchange file, both in /dev/shm.
        return preflight.Need(2 * self.plan.nbytes + preflight.process_overhead(self.workers + 1, True),
                              2 * self.plan.nbytes)

    def allocate(self) -> None:
        self.path, self.matrix = create_file(preflight.SHM_DIR, "shmbench-mpi-", self.plan.shape)

    def start(self) -> None:
        super().start()
        folder = tempfile.mkdtemp(prefix="shmbench-mpi-")  # private (0700): only we reach the socket
        address = os.path.join(folder, "control")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            server.bind(address)
            server.listen(1)
            spec = json.dumps({"rows": self.plan.rows, "cols": self.plan.cols, "seed": self.plan.seed,
                               "block_rows": self.plan.block_rows})
            self._stderr = tempfile.TemporaryFile("w+")
            self._proc = subprocess.Popen(
                [mpiexec(), "-n", str(self.workers), sys.executable, "-m", "shmbench.mpi_rank",
                 str(os.getpid()), address, self.path, spec],
                stdin=subprocess.DEVNULL, stdout=self._stderr, stderr=subprocess.STDOUT, start_new_session=True)
            self._conn = self._accept(server)
        finally:
            server.close()
            shutil.rmtree(folder, ignore_errors=True)
        self._pids = self._answer("start", word="ready")[0]
        # Every rank has mapped the exchange file: unlink its name, so that nothing is left in
        # /dev/shm however the run ends (the mappings keep the pages).
        remove_file(self.path)
        # MPICH unlinks its /dev/shm segments at MPI_Finalize; a killed rank never gets there.
        # Note the ones our ranks map, to remove what is left of them at close.
        self._segments = {m["path"] for pid in self._pids for m in segment_maps(pid, preflight.SHM_DIR + "/")
                          if os.path.basename(m["path"]).startswith(_MPICH_SEGMENT)}

    def _accept(self, server: socket.socket) -> Connection:
        server.settimeout(_POLL_SECONDS)
        waited = 0.0
        while waited < _START_SECONDS:
            try:
                sock, _ = server.accept()
            except TimeoutError:
                waited += _POLL_SECONDS
                if self._proc.poll() is not None:
                    raise WorkerDiedError(f"mpiexec exited (code {self._proc.returncode}) before rank 0 "
                                          f"connected{self._last_words()}") from None
                continue
            sock.settimeout(None)
            return Connection(sock.detach())
        raise WorkerDiedError(f"rank 0 did not connect within {_START_SECONDS:.0f} s{self._last_words()}")

    def _last_words(self) -> str:
        lines = [line.rstrip() for line in self._log().splitlines() if line.strip()]
        return (":\n" + "\n".join(lines[-_STDERR_LINES:])) if lines else ""

    def _command(self, *message) -> tuple:
        self._busy = True
        try:
            self._conn.send(message)
        except OSError:
            raise self._died(message[0]) from None
        return self._answer(message[0])

    def _answer(self, what: str, word: str = "done") -> tuple:
        while True:
            if wait([self._conn], _POLL_SECONDS):
                try:
                    reply = self._conn.recv()
                except (EOFError, OSError):
                    raise self._died(what) from None
                if reply[0] == "error":
                    raise WorkerError(f"an MPI rank failed during {what}:\n{reply[1]}")
                if reply[0] == word:
                    self._busy = False
                    return reply[1:]
            elif self._proc.poll() is not None:
                raise self._died(what)

    def _died(self, what: str) -> WorkerDiedError:
        dead = [pid for pid in self._pids if not process_alive(pid)]
        try:
            self._proc.wait(_STOP_SECONDS)  # mpiexec ends the whole job when a rank dies
        except subprocess.TimeoutExpired:
            pass
        log = self._log()
        # mpiexec (hydra) names the rank that died first; the others it killed itself.
        named = [int(pid) for pid in re.findall(r"PID (\d+) RUNNING AT", log)]
        culprit = next((pid for pid in named + dead if pid in self._pids), None)
        who = "an MPI rank"
        if culprit is not None:
            slot = self._pids.index(culprit)
            who = f"worker {slot} (rank {slot}, pid {culprit})"
        exit_string = re.search(r"EXIT STRING: (.*)", log)
        how = f" ({exit_string.group(1).strip()})" if exit_string else ""
        return WorkerDiedError(f"{who} died during {what}{how}")

    def _log(self) -> str:
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read()

    def prepare(self) -> None:
        super().prepare()  # the parent's side: the rowsum input in the exchange file
        self._command("prepare", self.workload)

    def prefault_pays(self) -> bool:
        return self.workload == "pid"  # the ranks' 42.0 created the window's pages

    def touch(self) -> None:
        faults, _ = self._command("touch")
        self._note(faults)

    def fill(self) -> None:
        faults, results = self._command("fill", self.workload, True)
        for first_row, sums in results:
            self.take_sums(first_row, sums)
        self._note(faults)

    def collect(self) -> None:
        faults, _ = self._command("collect", self.workload)
        if self.workload not in READ_ONLY:
            self._note(faults)

    def is_shared_view(self) -> bool:
        return False

    def close(self) -> None:
        proc, conn, self._proc, self._conn = self._proc, self._conn, None, None
        try:
            if proc is not None:
                _stop(proc, conn, busy=self._busy)
        finally:
            if conn is not None:
                conn.close()
            if getattr(self, "_stderr", None) is not None:
                self._stderr.close()
                self._stderr = None
            self._pids = []
            self._busy = False
            self.matrix = None
            path, self.path = self.path, None
            remove_file(path)
            for segment in self._segments:
                remove_file(segment)
            self._segments = set()
            super().close()


def _stop(proc: subprocess.Popen, conn: Connection | None, busy: bool) -> None:
    """Ask idle ranks to stop; end the whole job (mpiexec, its proxies, the ranks) otherwise."""
    if not busy and conn is not None and proc.poll() is None:
        try:
            conn.send(("stop",))
            proc.wait(_STOP_SECONDS)
            return
        except (OSError, subprocess.TimeoutExpired):
            pass
    group = _group(proc)
    for signum in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is None or any(p.is_running() for p in group):
            try:
                os.killpg(proc.pid, signum)
            except ProcessLookupError:
                pass
            try:
                proc.wait(_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                continue
            psutil.wait_procs(group, timeout=_STOP_SECONDS)
    proc.wait()


def _group(proc: subprocess.Popen) -> list[psutil.Process]:
    try:
        return psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
