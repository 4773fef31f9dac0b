"""MPI's peer: the program an MPI user writes for this job, run under ``mpiexec -n W``.

An MPI program has no parent outside it: rank 0 is the program and holds the matrix. The ranks
of the node share one MPI-3 window (``MPI.Win.Allocate_shared``, all of it allocated by rank 0)
and each fills its share in place; a barrier ends the pass. For ``rowsum`` each rank sums its
rows of the input in the window and rank 0 gathers the sums. Run alone:
``mpiexec -n 2 python -m shmbench.peers.mpi_peer --size 256MiB``.

Beside a contender (``shmbench run --peers``) the program serves the parent instead: rank 0 takes
each pass as a command on a socket and answers when it is done, the others learning it by
``bcast``; they wait for it in a barrier tested between short sleeps, so ranks idle between passes
do not spin beside the passes timed meanwhile (MPICH's blocking waits poll).
"""
from __future__ import annotations

import dataclasses
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from multiprocessing.connection import Connection

import numpy as np

from ..plan import Plan
from ..work import fill_rows


def _window(plan: Plan):
    from mpi4py import MPI

    node = MPI.COMM_WORLD.Split_type(MPI.COMM_TYPE_SHARED)
    size = plan.storage_nbytes if node.rank == 0 else 0
    window = MPI.Win.Allocate_shared(size, plan.itemsize, comm=node)
    matrix = np.ndarray(plan.storage_shape, plan.dtype, buffer=window.Shared_query(0)[0])
    return window, matrix


def one_pass(comm, plan: Plan, workload: str, matrix: np.ndarray) -> np.ndarray | None:
    """Every rank its share, in place; rank 0 gets the row sums of ``rowsum``."""
    rows = plan.share_rows(comm.size)[comm.rank]
    sums = fill_rows(matrix, plan, rows, workload, 0)
    if workload == "rowsum":
        parts = comm.gather(sums, root=0)
        return np.concatenate(parts) if comm.rank == 0 else None
    comm.Barrier()
    return None


def _prepare(comm, plan: Plan, workload: str, matrix: np.ndarray) -> None:
    """rowsum's input, each rank its share (the same matrix as the parent's ``prepare``)."""
    if workload == "rowsum":
        fill_rows(matrix, plan, plan.share_rows(comm.size)[comm.rank], "random", 0)
    comm.Barrier()


def alone(argv: list[str]) -> int:
    from mpi4py import MPI

    from ._alone import expected, options
    from ..sizes import parse_size

    args = options(argv)
    comm, plan = MPI.COMM_WORLD, Plan(*parse_size(args.size))
    window, matrix = _window(plan)
    times = []
    for _ in range(1 + args.repeat):
        _prepare(comm, plan, args.workload, matrix)
        began = time.perf_counter()
        out = one_pass(comm, plan, args.workload, matrix)
        times.append(time.perf_counter() - began)
    if comm.rank == 0:
        out = matrix if out is None else out
        ok = np.array_equal(out, expected(plan, args.workload, matrix))
        print(f"cold pass: {times[0]:.4f} s; warm median of {args.repeat}: {statistics.median(times[1:]):.4f} s")
        print("verified: the plan's result bit for bit" if ok else "NOT VERIFIED")
    del matrix
    window.Free()
    return 0


def serve(address: str, spec: str) -> int:
    """The program driven by the parent: commands ("prepare"|"pass", workload), ("show",), None."""
    from mpi4py import MPI

    from ..runtimes.base import become_worker
    from ..runtimes.mpi import next_command

    become_worker()
    comm, plan = MPI.COMM_WORLD, Plan(**json.loads(spec))
    window, matrix = _window(plan)
    conn = None
    if comm.rank == 0:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(address)
        conn = Connection(sock.detach())
        conn.send(comm.gather(os.getpid(), root=0))
    else:
        comm.gather(os.getpid(), root=0)
    while True:
        command = next_command(comm, conn)
        if command is None:
            break
        if command[0] == "prepare":
            _prepare(comm, plan, command[1], matrix)
            answer = None
        elif command[0] == "pass":
            answer = one_pass(comm, plan, command[1], matrix)
        else:  # show: the matrix to the parent, for verification
            answer = None
            if conn is not None:
                conn.send_bytes(memoryview(matrix[:plan.rows]).cast("B"))
        if conn is not None:
            conn.send(("done", answer))
    del matrix
    window.Free()
    return 0


class Peer:
    """The parent's side of ``serve``: mpiexec starts the program; each pass is one command."""

    def __init__(self, plan: Plan, workers: int, scratch: str | None = None) -> None:
        self.plan, self.workers, self.scratch = plan, workers, scratch

    def start(self) -> None:
        from ..runtimes.mpi import mpiexec

        folder = self.scratch or "."
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(os.path.join(folder, "peer"))
        server.listen(1)
        server.settimeout(120)
        self.proc = subprocess.Popen([mpiexec(), "-n", str(self.workers), sys.executable, "-m", __name__, "--serve",
                                      server.getsockname(), json.dumps(dataclasses.asdict(self.plan))],
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            self.conn = Connection(server.accept()[0].detach())
        finally:
            server.close()
        self.pids = self.conn.recv()

    def _ask(self, *command) -> object:
        self.conn.send(command)
        reply = self.conn.recv()
        return reply[1]

    def prepare(self, workload: str) -> None:
        self._ask("prepare", workload)

    def run(self, workload: str, matrix: np.ndarray) -> np.ndarray | None:
        return self._ask("pass", workload)

    def show(self, matrix: np.ndarray) -> None:
        self.conn.send(("show",))
        self.conn.recv_bytes_into(memoryview(matrix[:self.plan.rows]).cast("B"))
        self.conn.recv()

    def close(self) -> None:
        try:
            self.conn.send(None)
            self.proc.wait(30)
        finally:
            self.conn.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        raise SystemExit(serve(*sys.argv[2:4]))
    raise SystemExit(alone(sys.argv[1:]))
