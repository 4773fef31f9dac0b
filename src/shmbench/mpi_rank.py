"""One MPI rank of the ``mpi`` strategy: ``mpiexec -n W python -m shmbench.mpi_rank ...``.

The ranks on this node share one ``MPI.Win.Allocate_shared`` window holding the whole matrix
(rank 0 allocates it, the others query its address). Rank 0 talks to the parent over a Unix
socket; every command reaches all ranks by ``bcast`` and every answer comes back by ``gather``,
so a failing rank is reported instead of leaving the others waiting.

The parent is not a rank and cannot map the window: it hands inputs in, and takes results out,
through an exchange file in /dev/shm that every rank maps.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection

import numpy as np
import psutil

from .pages import minor_faults, prefault
from .plan import Plan
from .work import READ_ONLY, fill_blocks, prepare
from .workers import become_worker, share_rows

_PARENT_POLL_SECONDS = 0.5


def _connect(address: str) -> Connection:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(address)
    return Connection(sock.detach())


def _run(command: tuple, window: np.ndarray, exchange: np.ndarray, plan: Plan, share: range):
    """What one rank does for one command; returns (minor faults, sums or None)."""
    rows = share_rows(plan, share)
    faults = minor_faults()
    sums = None
    name = command[0]
    if name == "prepare":
        if command[1] == "pid":  # the ranks' own share of the window, as the core prepares it
            prepare(window[rows], "pid", plan)
    elif name == "touch":
        prefault(window[rows])
    elif name == "fill":
        workload, check_default = command[1], command[2]
        if workload in READ_ONLY:  # the input comes into the window from the parent's file
            window[rows] = exchange[rows]
        sums = fill_blocks(window, plan, share, workload, os.getpid(), check_default)
    elif name == "collect":
        if command[1] not in READ_ONLY:
            exchange[rows] = window[rows]
    else:
        raise ValueError(f"unknown command {name!r}")
    return minor_faults() - faults, (rows.start, sums)


def _watch_parent(pid: int, exchange_path: str, abort) -> None:
    """End the whole job when the parent dies, whatever the ranks are doing (even in MPI_Init or
    a collective, where no rank could read a closed socket): first remove the files it named."""
    try:
        parent = psutil.Process(pid)
        while parent.is_running() and parent.status() != psutil.STATUS_ZOMBIE:
            time.sleep(_PARENT_POLL_SECONDS)
    except psutil.NoSuchProcess:
        pass
    # MPICH unlinks its segments at MPI_Finalize, which an aborted job never reaches.
    mine = [m.path for m in psutil.Process().memory_maps() if os.path.basename(m.path).startswith("mpich_shm_")]
    for path in [exchange_path, *mine]:
        try:
            os.unlink(path)
        except OSError:
            pass
    abort()
    os._exit(1)


def main(argv: list[str]) -> int:
    from mpi4py import MPI

    become_worker()
    parent_pid, address, exchange_path, spec = argv
    threading.Thread(target=_watch_parent, name="shmbench-parent-watch", daemon=True,
                     args=(int(parent_pid), exchange_path, lambda: MPI.COMM_WORLD.Abort(1))).start()
    plan = Plan(**json.loads(spec))
    world = MPI.COMM_WORLD
    node = world.Split_type(MPI.COMM_TYPE_SHARED)
    if node.size != world.size:
        raise SystemExit("shmbench's mpi strategy runs its ranks on one node")
    rank, size = world.rank, world.size
    window_handle = MPI.Win.Allocate_shared(plan.nbytes if rank == 0 else 0, 8, comm=node)
    try:
        buffer, _ = window_handle.Shared_query(0)
        window = np.ndarray(plan.shape, dtype=np.float64, buffer=buffer)
        exchange = np.memmap(exchange_path, dtype=np.float64, mode="r+", shape=plan.shape)
        share = plan.shares(size)[rank]
        conn = _connect(address) if rank == 0 else None
        pids = world.gather(os.getpid(), root=0)
        if conn is not None:
            conn.send(("ready", pids))
        parent_gone = False
        while True:
            command = None
            if conn is not None:
                try:
                    command = ("stop",) if parent_gone else conn.recv()
                except (EOFError, OSError):
                    command = ("stop",)  # the parent is gone: every rank stops
            command = world.bcast(command, root=0)
            if command[0] == "stop":
                break
            try:
                answer = ("done",) + _run(command, window, exchange, plan, share)
            except BaseException:
                answer = ("error", f"rank {rank} (pid {os.getpid()}):\n{traceback.format_exc()}")
            answers = world.gather(answer, root=0)
            if conn is not None:
                errors = [a[1] for a in answers if a[0] == "error"]
                try:
                    conn.send(("error", "\n".join(errors)) if errors else
                              ("done", [a[1] for a in answers], [a[2] for a in answers]))
                except OSError:  # the parent died during the command: tell the others next
                    parent_gone = True
        del window, exchange
    finally:
        window_handle.Free()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
