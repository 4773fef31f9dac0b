"""One MPI rank of the ``mpi`` strategy: ``mpiexec -n W python -m shmbench.strategies.mpi_rank ...``.

The ranks of a node (``COMM_TYPE_SHARED``) share one ``MPI.Win.Allocate_shared`` window holding
that node's rows (its first rank allocates it, the others query its address). Every rank on the
parent's host reads commands from a Unix socket of its own (a blocking read: no CPU while idle);
every command reaches all ranks by ``bcast`` and every answer comes back to rank 0 by ``gather``,
which sends it on, so a failing rank is reported instead of leaving the others waiting. The parent
cannot map a window: on its node, inputs come in and results go out through an exchange file
those ranks map; the other nodes' leaders send their rows to rank 0 by message (``internode``).
In ``direct`` mode (``mpi_shm``) the parent's node has no window: its ranks write that file,
which is the parent's matrix, in place.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time
import traceback
from multiprocessing.connection import Connection

import numpy as np
import psutil

from .._system.pages import minor_faults
from ..plan import Plan
from ..runtimes.base import become_worker
from ..runtimes.mpi import next_command, quiet_barrier
from ..runtimes.seat import Seat, collected

_TAG = 7  # the rows of another node, on their way to the parent's
_ABANDON_SECONDS = 0.5
def _segments() -> list[str]:
    """MPICH's files this rank maps, and the one MPI_Init may still have open (not yet mapped)."""
    me = psutil.Process()
    paths = {m.path for m in me.memory_maps()} | {f.path for f in me.open_files()}
    return sorted(path for path in paths if os.path.basename(path).startswith("mpich_"))


def _abandon(exchange_path: str, address: str) -> None:
    """The parent died: remove the files it named and MPICH's segments (an aborted job never
    reaches MPI_Finalize, which unlinks them), then end the whole job."""
    from mpi4py import MPI

    for path in [exchange_path, address, *_segments()]:
        try:
            os.unlink(path)
        except OSError:
            pass
    try:
        os.rmdir(os.path.dirname(address))  # the parent's private folder for the socket
    except OSError:
        pass
    # Every rank on the parent's host saw it die at the same moment and removes its own node's
    # segments; the abort, which ends them all, waits that long (ranks on other hosts see nothing).
    time.sleep(_ABANDON_SECONDS)
    MPI.COMM_WORLD.Abort(1)


def _internode(world, leaders: list, matrix: np.ndarray, exchange: np.ndarray | None) -> tuple[int, list]:
    """The rows of the other nodes, by message, into the parent's matrix: each other node's
    leader sends its window to rank 0, which receives it in place. Answers the bytes received."""
    from mpi4py import MPI

    faults, moved = minor_faults(), 0
    if world.rank == 0:
        for rank, start, stop in filter(None, leaders):
            status = MPI.Status()
            world.Recv([exchange[start:stop].reshape(-1).view(np.uint8), MPI.BYTE], source=rank, tag=_TAG,
                       status=status)
            moved += status.Get_count(MPI.BYTE)
    elif any(leader and leader[0] == world.rank for leader in leaders):
        world.Send([matrix.reshape(-1).view(np.uint8), MPI.BYTE], dest=0, tag=_TAG)
    return minor_faults() - faults, [("moved", 0, np.int64(moved))] if world.rank == 0 else []


def _listen(address: str, rank: int) -> Connection:
    """This rank's own line to the parent: commands arrive on it, so a rank waits for the next one
    in a blocking read that costs no CPU (rank 0 also sends the answers back on it)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(address)
    conn = Connection(sock.detach())
    conn.send(rank)
    return conn


def main(argv: list[str]) -> int:
    parent_pid, parent_host, address, exchange_path, mode, spec = argv
    # Watched from before MPI_Init: a rank may wait in it, or in a collective, for ever. Ranks on
    # other hosts cannot see the parent: rank 0's watch aborts the whole job for them.
    here = socket.gethostname() == parent_host
    become_worker(int(parent_pid) if here else None, (lambda: _abandon(exchange_path, address)) if here else None)
    from mpi4py import MPI

    plan = Plan(**json.loads(spec))
    world = MPI.COMM_WORLD
    node = world.Split_type(MPI.COMM_TYPE_SHARED)
    shares = plan.share_rows(world.size)
    members = sorted(node.allgather(world.rank))
    if members != list(range(members[0], members[-1] + 1)):
        raise SystemExit("shmbench's mpi strategy needs each node's ranks in one block (MPICH: "
                         "MPIR_CVAR_CLIQUES_BY_BLOCK=1, or mpiexec -ppn)")
    # This node's window holds its ranks' rows; the parent's node (rank 0's) also maps the parent's matrix.
    held = [shares[rank] for rank in members if shares[rank]]  # more ranks than blocks leaves some without
    rows = range(held[0].start, held[-1].stop) if held else range(0)
    home = members[0] == 0
    # "direct" (mpi_shm): the parent's node writes the parent's segment itself, with no window.
    direct = home and mode == "direct"
    firsts = sorted(set(world.allgather(members[0])))
    leaders = world.allgather((world.rank, rows.start, rows.stop) if node.rank == 0 and not home else None)
    window = MPI.Win.Allocate_shared(len(rows) * plan.cols * plan.itemsize if node.rank == 0 and not direct else 0,
                                     plan.itemsize, comm=node)
    try:
        exchange = (np.memmap(exchange_path, dtype=plan.dtype, mode="r+", shape=plan.storage_shape)
                    if home else None)
        if direct:
            matrix, seat = exchange, Seat(plan, shares[world.rank], exchange)
        else:
            matrix = np.ndarray((len(rows), plan.cols), dtype=plan.dtype, buffer=window.Shared_query(0)[0])
            seat = Seat(plan, shares[world.rank], matrix, rows.start, exchange=exchange)
        # Ranks on the parent's host each get commands on a line of their own; ranks on other
        # hosts learn them from rank 0 (and, between commands, sleep in ``quiet_barrier``).
        conn = _listen(address, world.rank) if here else None
        everywhere = all(world.allgather(here))  # every rank reads commands from the parent itself
        started = world.gather((os.getpid(), firsts.index(members[0]), _segments(), here, socket.gethostname()),
                               root=0)
        if world.rank == 0:
            conn.send(("done", started))
        while True:
            command = next_command(world, conn, quietly=not everywhere)
            if command is None:
                break
            try:
                if command.name == "internode":
                    answer = ("done", *_internode(world, leaders, matrix, exchange))
                elif command.name in ("prepare", "collect") and direct:
                    answer = ("done", 0, [])  # the parent prepared its segment; the rows are in it
                elif command.name == "collect" and exchange is None:
                    answer = ("done", 0, [])  # this node's rows went to the parent's in ``internode``
                else:
                    answer = ("done", *collected(seat, command))
            except BaseException:
                answer = ("error", f"rank {world.rank} (pid {os.getpid()}):\n{traceback.format_exc()}")
            quiet_barrier(world)  # a rank done early sleeps while the others still work
            answers = world.gather(answer, root=0)
            if world.rank == 0:
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
