"""Each engine contender as its users would run it: idle MPI ranks that do not spin, and every
record saying how its engine was configured."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import psutil
import pytest

import shmbench
from shmbench import Plan, create
from shmbench.peers import PEERS
from shmbench.runner import Driver
from shmbench.strategies import PEER_REGISTRY, REGISTRY, peer_for

REGISTRY_OF = {name: cls.contender for name, cls in PEER_REGISTRY.items()}


@pytest.mark.parametrize("strategy", ["mpi", "mpi_shm"])
def test_idle_mpi_ranks_sleep_instead_of_spinning(strategy):
    # MPICH's blocking collectives poll: before, each rank waiting for the next command used a
    # whole core (1.0 s of CPU per second idle), taking it from whatever was timed beside it.
    with Driver(create(strategy, Plan(512, 4096), workers=3)) as driver:
        driver.open()
        assert driver.first_pass() == []
        ranks = [psutil.Process(pid) for pid in driver.strategy.worker_ids]
        before = [sum(rank.cpu_times()[:2]) for rank in ranks]
        start = time.monotonic()
        time.sleep(1.0)
        idle = time.monotonic() - start
        used = [sum(rank.cpu_times()[:2]) - b for rank, b in zip(ranks, before)]
        # A few per cent of a core at most, each: the sleeps between tests of the barrier.
        assert max(used) < 0.05 * idle, used
        seconds, problems = driver.warm_pass()  # and they still answer the next command
        assert problems == []


ENGINES = ["joblib", "ray", "mpi", "mpi_shm", "dask"]


@pytest.mark.parametrize("strategy", ENGINES)
def test_each_engine_contender_records_how_its_engine_was_set_up(strategy):
    result = shmbench.run(strategy, 64, 512, workers=2)
    assert result.verified, result.problems
    assert result.settings and "versions" in result.settings, result.settings
    assert all(isinstance(value, str) and value for value in result.settings.values())


def test_dask_talks_to_its_workers_directly():
    result = shmbench.run("dask", 64, 512, workers=2)
    assert "direct_to_workers=True" in result.settings["client"]


@pytest.mark.parametrize("workload", ["random", "rowsum"])
@pytest.mark.parametrize("peer", list(PEER_REGISTRY))
def test_every_peer_gives_serials_result_bit_for_bit(peer, workload):
    serial = shmbench.run("serial", 96, 1000, workload=workload, block_rows=7, digest=True)
    result = shmbench.run(peer, 96, 1000, workers=2, workload=workload, block_rows=7, digest=True, repeat=2)
    assert result.verified, result.problems
    assert result.digest == serial.digest
    assert result.settings["peer"].startswith(f"python -m {PEERS[REGISTRY_OF[peer]]}")


def test_a_peer_refuses_what_its_script_does_not_do():
    with pytest.raises(ValueError, match="random and rowsum only"):
        create("dask_peer", Plan(8, 8), workers=2, workload="pid")
    with pytest.raises(ValueError, match="one node"):
        create("ray_peer", Plan(8, 8), workers=2, nodes=2)


def test_every_engine_contender_has_a_peer_of_its_engine():
    for name in ENGINES:
        peer = peer_for(name)
        assert peer in PEER_REGISTRY and PEER_REGISTRY[peer].traits.launcher == REGISTRY[name].traits.launcher
    assert peer_for("shared_memory") is None


@pytest.mark.slow  # a peer run alone, as a user runs its script (mpi under mpiexec)
@pytest.mark.parametrize("peer", ["joblib_peer", "mpi_peer"])
def test_a_peer_runs_alone_and_verifies(peer):
    command = [sys.executable, "-m", f"shmbench.peers.{peer}", "--size", "256x1000", "--repeat", "2"]
    if peer == "mpi_peer":
        from shmbench.runtimes.mpi import mpiexec

        command = [mpiexec(), "-n", "2", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "verified: the plan's result bit for bit" in done.stdout


@pytest.mark.slow  # a whole CLI comparison
def test_peers_sit_beside_their_contenders_and_the_answer_compares_them(tmp_path):
    from shmbench.cli import main

    out = tmp_path / "r.json"
    assert main(["run", "--peers", "--strategy", "serial", "--strategy", "joblib", "--strategy", "mpi",
                 "--workers", "2", "--size", "256x4096", "--repeat", "3", "--budget", "0", "--json", str(out)]) == 0
    records = json.loads(out.read_text())["results"]
    assert [r["strategy"] for r in records] == ["serial", "joblib", "joblib_peer", "mpi", "mpi_peer"]
    by = {r["strategy"]: r for r in records}
    assert by["joblib_peer"]["peer_of"] == "joblib" and by["joblib"]["peer"] == "joblib_peer"
    assert by["mpi"]["over_peer"] == pytest.approx(by["mpi_peer"]["speedup"] / by["mpi"]["speedup"])
    assert all(r["verified"] for r in records)
