"""Several nodes (``--nodes``): pretend nodes on this machine, results bit-identical to serial's,
the bytes that crossed between nodes accounted for, deaths on another node named."""
from __future__ import annotations

import os
import signal

import numpy as np
import psutil
import pytest

import shmbench
from shmbench import Plan, WorkerDiedError, create
from shmbench.cli import main
from shmbench.strategies import REGISTRY
from shmbench.runtimes.base import process_alive

from cases import NODE_STRATEGIES, through, wait_until

ROWS, COLS, BLOCK_ROWS, WORKERS = 300, 2048, 16, 4  # 19 blocks: shares and nodes of unequal sizes


def _off_the_parents_node(nodes: int) -> int:
    """Rows held by workers off node 0, the workers split as evenly as the strategies split them."""
    shares = Plan(ROWS, COLS, block_rows=BLOCK_ROWS).share_rows(WORKERS)
    home = np.array_split(range(WORKERS), nodes)[0]
    return sum(len(rows) for slot, rows in enumerate(shares) if slot not in home)


@pytest.mark.parametrize("nodes", [1, 2, 3])
@pytest.mark.parametrize("strategy", NODE_STRATEGIES)
def test_every_node_count_gives_serials_matrix_and_counts_what_crossed(strategy, nodes):
    serial = shmbench.run("serial", ROWS, COLS, block_rows=BLOCK_ROWS, digest=True)
    result = shmbench.run(strategy, ROWS, COLS, workers=WORKERS, nodes=nodes, block_rows=BLOCK_ROWS, digest=True,
                          repeat=1)
    assert result.verified, result.problems
    assert result.digest == serial.digest
    assert result.nodes == nodes
    # Dask's workers share nothing: every row is sent to the parent, whatever the node count.
    rows = ROWS if strategy == "dask" else _off_the_parents_node(nodes)
    assert result.internode_bytes == rows * COLS * 8
    by_mpi = REGISTRY[strategy].traits.launcher == "mpiexec"
    assert result.internode_bytes_how.startswith("measured" if by_mpi and nodes > 1 else "computed")
    labels = {m["role"].split("(node ")[-1].rstrip(")") for m in result.memory if m["role"].startswith("worker")}
    assert labels == ({str(n) for n in range(nodes)} if nodes > 1 else {m["role"] for m in result.memory
                                                                        if m["role"].startswith("worker")})


@pytest.mark.slow  # Ray's cluster, started and stopped
@pytest.mark.extras
def test_ray_runs_a_raylet_and_an_object_store_per_node():
    result = shmbench.run("ray", ROWS, COLS, workers=WORKERS, nodes=2, block_rows=BLOCK_ROWS)
    roles = [m["role"] for m in result.memory]
    assert roles.count("runtime: ray raylet") == 2, roles
    assert result.phases["internode"] > 0


@pytest.mark.slow  # Ray's cluster, started and stopped
@pytest.mark.extras
@pytest.mark.parametrize("strategy, nodes", [("ray", 1), ("ray", 2), ("ray_peer", 1), ("dask", 1), ("dask_peer", 1)])
def test_an_engine_started_here_listens_on_loopback_only(strategy, nodes):
    """Ray binds the machine's primary address unless told it runs on one machine (Dask's
    LocalCluster takes 127.0.0.1 of itself): nothing of an engine we start may be reachable from
    the network. Dask's scheduler and Ray's driver listen in this process."""
    with create(strategy, Plan(64, 64), workers=2, nodes=nodes) as s:
        through(s, "start")
        engine = {p.pid for p in psutil.Process().children(recursive=True)} | {os.getpid()}
        listening = {c.laddr.ip for c in psutil.net_connections("inet")
                     if c.status == psutil.CONN_LISTEN and c.pid in engine}
    assert listening, f"no {strategy} process found listening"
    assert listening <= {"127.0.0.1", "::ffff:127.0.0.1", "::1"}, listening


@pytest.mark.parametrize("strategy", NODE_STRATEGIES)
def test_a_worker_killed_on_the_second_node_is_named(strategy):
    with create(strategy, Plan(256, 64), workers=4, nodes=2) as s:
        through(s, "start")
        assert s.node_of(3) == 1
        victim = s.worker_ids[3]
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: not process_alive(victim), "the victim's death")  # its runtime may reap it meanwhile
        # mpiexec ends the other ranks at once; under load they may all be gone before the parent's
        # watch wakes, and then the lowest is named (mpiexec's own report is no better).
        by_mpi = REGISTRY[strategy].traits.launcher == "mpiexec"
        named = r"worker \d \(pid \d+\)" if by_mpi else f"worker 3 \\(pid {victim}\\)"
        with pytest.raises(WorkerDiedError, match=named):
            s.prepare()
            s.fill()
            s.internode()


@pytest.mark.parametrize("strategy", [name for name in REGISTRY if name not in NODE_STRATEGIES])
def test_strategies_on_one_node_refuse_more(strategy):
    with pytest.raises(ValueError, match="runs on one node"):
        create(strategy, Plan(64, 64), workers=2, nodes=2)


def test_more_nodes_than_workers_is_refused():
    with pytest.raises(ValueError, match="3 nodes need at least 3 workers"):
        create("mpi", Plan(64, 64), workers=2, nodes=3)


@pytest.mark.parametrize("workload", ["rowsum", "tests/kernels.py:draw"])
def test_mpi_on_several_nodes_refuses_workloads_with_an_input(workload):
    with pytest.raises(ValueError, match="writing workloads"):
        create("mpi", Plan(64, 64), workers=2, nodes=2, workload=workload)


def test_cli_refuses_nodes_for_strategies_on_one_node_in_one_line(capsys):
    assert main(["run", "--strategy", "serial", "--strategy", "shared_memory", "--nodes", "2", "--size", "1MiB"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--nodes above 1 is for {', '.join(sorted(NODE_STRATEGIES))}" in err, err


def test_cli_memory_lists_workers_by_node(capsys):
    assert main(["memory", "--strategy", "mpi", "--workers", "4", "--nodes", "2", "--size", "4MiB"]) == 0
    out = capsys.readouterr().out
    assert "worker 3 (node 1)" in out and "mpich hydra proxy" in out


@pytest.mark.slow  # a whole CLI run per case
@pytest.mark.parametrize("strategy", NODE_STRATEGIES)
def test_parent_killed_ends_the_workers_of_every_node(strategy, cli):
    from test_faults import kill_parent_and_expect_nothing_left

    kill_parent_and_expect_nothing_left(cli, strategy, "--workers", "2", "--nodes", "2", "--size", "64MiB")
