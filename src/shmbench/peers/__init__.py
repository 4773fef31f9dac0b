"""Peers: each engine contender's job done the way that engine's own documentation would have its
user write it, with nothing of shmbench's runtimes in it.

The job is the contender's: W workers each fill their share of the plan's rows (``random``) or read
them (``rowsum``), and the parent ends up with the whole matrix (or every row's sum). A peer uses
the plan and the worker core (``shmbench.plan``, ``shmbench.work``) and nothing else of ours, so the
work and its verification are the same and any difference in time is the engine's way against ours.
Each module is runnable alone (``python -m shmbench.peers.dask_peer --workers 2 --size 256MiB``;
the MPI peer under ``mpiexec``), and ``shmbench run --peers`` puts each contender's peer beside it
as a cell of its own (``dask_peer``...).

A peer is a class ``Peer(plan, workers, scratch)`` with ``start()``, ``run(workload, matrix)`` (one
pass: fill ``matrix`` in place, or return the row sums of the input it holds) and ``close()``;
``scratch`` is a folder for the engine's own files (housekeeping only: it is removed afterwards).
A peer whose matrix lives outside the parent (MPI's rank 0) also has ``prepare(workload)`` and
``show(matrix)``, which copies its result into the parent's for verification, untimed.
"""
from __future__ import annotations

#: The peer of each engine contender: the module that holds its ``Peer``.
PEERS = {"joblib": "shmbench.peers.joblib_peer", "ray": "shmbench.peers.ray_peer",
         "mpi": "shmbench.peers.mpi_peer", "dask": "shmbench.peers.dask_peer"}
#: What each peer covers.
WORKLOADS = ("random", "rowsum")
