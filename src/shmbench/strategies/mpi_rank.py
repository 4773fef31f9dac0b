"""One MPI rank of the ``mpi`` strategy: ``mpiexec -n W python -m shmbench.strategies.mpi_rank ...``.

The ranks on this node share one ``MPI.Win.Allocate_shared`` window holding the whole matrix
(rank 0 allocates it, the others query its address). Rank 0 talks to the parent over a Unix
socket; every command reaches all ranks by ``bcast`` and every answer comes back by ``gather``,
so a failing rank is reported instead of leaving the others waiting. The parent cannot map the
window: inputs come in, and results go out, through an exchange file every rank maps.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import traceback
from multiprocessing.connection import Connection

import numpy as np
import psutil

from ..plan import Plan
from ._runtimes.base import become_worker
from ._runtimes.seat import Seat, collected


def _abandon(exchange_path: str) -> None:
    """The parent died: remove the files it named and MPICH's segments (an aborted job never
    reaches MPI_Finalize, which unlinks them), then end the whole job."""
    from mpi4py import MPI

    me = psutil.Process()
    # Mapped segments, and the temporary file MPI_Init may still have open (not yet mapped).
    paths = {m.path for m in me.memory_maps()} | {f.path for f in me.open_files()}
    mine = [path for path in paths if os.path.basename(path).startswith("mpich_")]
    for path in [exchange_path, *mine]:
        try:
            os.unlink(path)
        except OSError:
            pass
    MPI.COMM_WORLD.Abort(1)


def main(argv: list[str]) -> int:
    parent_pid, address, exchange_path, spec = argv
    # Watched from before MPI_Init: a rank may wait in it, or in a collective, for ever.
    become_worker(int(parent_pid), lambda: _abandon(exchange_path))
    from mpi4py import MPI

    plan = Plan(**json.loads(spec))
    world = MPI.COMM_WORLD
    node = world.Split_type(MPI.COMM_TYPE_SHARED)
    if node.size != world.size:
        raise SystemExit("shmbench's mpi strategy runs its ranks on one node")
    window = MPI.Win.Allocate_shared(plan.nbytes if world.rank == 0 else 0, plan.itemsize, comm=node)
    try:
        matrix = np.ndarray(plan.shape, dtype=plan.dtype, buffer=window.Shared_query(0)[0])
        exchange = np.memmap(exchange_path, dtype=plan.dtype, mode="r+", shape=plan.storage_shape)
        seat = Seat(plan, plan.share_rows(world.size)[world.rank], matrix, exchange=exchange)
        conn = None
        if world.rank == 0:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(address)
            conn = Connection(sock.detach())
        pids = world.gather(os.getpid(), root=0)
        if conn is not None:
            conn.send(("done", pids))
        while True:
            command = None
            if conn is not None:
                try:
                    command = conn.recv()
                except (EOFError, OSError):
                    pass  # the parent is gone: every rank stops
            command = world.bcast(command, root=0)
            if command is None:
                break
            try:
                answer = ("done", *collected(seat, command))
            except BaseException:
                answer = ("error", f"rank {world.rank} (pid {os.getpid()}):\n{traceback.format_exc()}")
            answers = world.gather(answer, root=0)
            if conn is not None:
                errors = [a[1] for a in answers if a[0] == "error"]
                try:
                    conn.send(("error", "\n".join(errors)) if errors else
                              ("done", [a[1] for a in answers], [a[2] for a in answers]))
                except OSError:
                    pass  # the parent died during the command: the next recv says so
        del seat, matrix, exchange
    finally:
        window.Free()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
