"""Engines across two hosts made on this machine (``hosts.two_hosts``): each cluster started on them
the way its users start one, shmbench run from host a, the matrix equal to serial's, and the bytes
that crossed the link read from the link itself beside the engine's own figure."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time

import pytest

import hosts

pytestmark = [pytest.mark.extras, pytest.mark.slow, pytest.mark.hosts,
              pytest.mark.skipif(hosts.unavailable() is not None, reason=str(hosts.unavailable()))]

BIN = os.path.dirname(sys.executable)
SIZE = "32MiB"  # 128 rows of 32768 float64: 16 MiB a worker


def _wait(what: str, done, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(1)


def _run(host: hosts.Host, env: dict, *argv: str, serial: bool = True) -> dict:
    """``shmbench run ... --json -`` on ``host`` (beside serial); the records by strategy."""
    done = host.run(sys.executable, "-m", "shmbench", "run", *(["--strategy", "serial"] if serial else []), *argv,
                    "--workers", "2", "--size", SIZE, "--repeat", "2", "--budget", "0", "--digest", "--json", "-",
                    env=env)
    assert done.returncode == 0, done.stderr
    return {r["strategy"]: r for r in json.loads(done.stdout)["results"]}


def _crossed(record: dict, engine_bytes: int) -> None:
    """The record's wire figure against what the engine says crossed the link, within 5%."""
    wire = record["internode_wire_bytes"]
    assert wire is not None and abs(wire - engine_bytes) <= 0.05 * engine_bytes, (wire, engine_bytes)


_RAY_NODES = """import json, logging, sys, ray
ray.init(address=sys.argv[1], log_to_driver=False, logging_level=logging.ERROR)
print(json.dumps([sum(n["Alive"] for n in ray.nodes()), ray.available_resources().get("CPU", 0)]))
"""


def test_ray_across_two_hosts():
    with hosts.two_hosts("ray") as (a, b):
        env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
        env.pop("RAY_ADDRESS", None)
        head = f"{a.address}:6380"
        common = ["--num-cpus", "1", "--object-store-memory", str(256 * 2**20), "--disable-usage-stats", "--block"]
        a.start(f"{BIN}/ray", "start", "--head", "--port", "6380", "--include-dashboard", "false", *common, env=env)

        def nodes() -> list:
            done = a.run(sys.executable, "-c", _RAY_NODES, head, env=env)
            return json.loads(done.stdout.splitlines()[-1]) if done.returncode == 0 else [0, 0]

        _wait("the head", lambda: nodes()[0] >= 1)
        b.start(f"{BIN}/ray", "start", "--address", head, *common, env=env)
        _wait("the second node", lambda: nodes()[0] >= 2)
        records = _run(a, env, "--strategy", "ray", "--ray-address", head)
        joined = records["ray"]
        assert joined["verified"] and joined["digest"] == records["serial"]["digest"]
        assert "ours on 2 node(s)" in joined["settings"]["cluster"]
        assert joined["internode_bytes"] == 16 * 2**20  # the actor on host b sent its half to host a
        _crossed(joined, joined["internode_bytes"])
        assert "seen for the 1 worker(s) on this host" in joined["settings"]["memory"]
        assert nodes() == [2, 2]  # still up, every CPU free: no actor of ours left


def _dask(a: hosts.Host, b: hosts.Host) -> str:
    """``dask scheduler`` on host a and a ``dask worker`` on each host; the scheduler's address."""
    scheduler = f"tcp://{a.address}:8786"
    a.start(f"{BIN}/dask", "scheduler", "--host", a.address, "--port", "8786", "--no-dashboard")
    for host in (a, b):
        host.start(f"{BIN}/dask", "worker", scheduler, "--host", host.address, "--nthreads", "1",
                   "--memory-limit", "0", "--no-dashboard")
    count = ("import sys, distributed\nwith distributed.Client(sys.argv[1], timeout=30) as c:\n"
             "    c.wait_for_workers(2, timeout=60)\n")
    done = a.run(sys.executable, "-c", count, scheduler, timeout=120)
    assert done.returncode == 0, done.stderr
    return scheduler


def test_dask_across_two_hosts():
    with hosts.two_hosts("dask") as (a, b):
        scheduler = _dask(a, b)
        records = _run(a, dict(os.environ), "--strategy", "dask", "--dask-address", scheduler)
        joined = records["dask"]
        assert joined["verified"] and joined["digest"] == records["serial"]["digest"]
        assert "ours on 2 host(s)" in joined["settings"]["cluster"]
        # Dask sends every block to the parent; only host b's half crosses the link (host a's
        # worker reaches the parent through loopback, as local traffic to one's own address does).
        assert joined["internode_bytes"] == 32 * 2**20
        _crossed(joined, joined["internode_bytes"] // 2)


def test_mpi_across_two_hosts():
    with hosts.two_hosts("mpi") as (a, b):
        env = dict(os.environ, **hosts.launcher([a, b]))
        before = a.received()
        ranks = _run(a, env, "--strategy", "mpi", "--nodes", "2", "--hosts", f"{a.address},{b.address}",
                     serial=False)["mpi"]
        serial = _run(a, env, serial=True)["serial"]
        assert ranks["verified"] and ranks["digest"] == serial["digest"]
        assert ranks["internode_bytes"] == 16 * 2**20 and ranks["internode_bytes_how"].startswith("measured")
        # Host b's rank is known to be elsewhere, so the link is read; but MPICH's 16 MiB do not
        # cross it here (about 10 KB did, with FI_PROVIDER=tcp and MPIR_CVAR_NOLOCAL=1 too): these
        # hosts share one kernel and process table, and some path of MPICH's uses that. Not found yet.
        assert ranks["internode_wire_bytes"] is not None and a.received() > before


def test_an_unreachable_mpi_host_is_refused_in_one_line():
    with hosts.two_hosts("gone") as (a, b):
        env = dict(os.environ, **hosts.launcher([a, b]))
        nowhere = "10.213.7.9"  # on the test link, where no host is: the launcher cannot reach it
        hostfile = "/tmp/hosts"  # host a's own /tmp
        assert a.run("sh", "-c", f"cat > {hostfile}", input=f"# a hydra host file\n{a.address}:1\n{nowhere}\n"
                     ).returncode == 0
        began = time.monotonic()
        done = a.run(sys.executable, "-m", "shmbench", "run", "--strategy", "mpi", "--workers", "2", "--nodes", "2",
                     "--hostfile", hostfile, "--size", SIZE, env=env)
        assert time.monotonic() - began < 15
        assert done.returncode == 2 and done.stdout == "", done.stderr
        assert done.stderr.strip().splitlines() == [
            f"shmbench: error: mpiexec cannot start a process on host {nowhere} (launcher ssh): "
            f"no such test host: {nowhere}"], done.stderr
        assert not [p for p in a.processes() + b.processes() if "python" in " ".join(p.cmdline())]
        # A host that never answers (its ssh hangs): refused when the probe's time is out, nothing left.
        hanging = "10.213.7.8"
        wrapper = "/tmp/shmbench-hangs"
        assert a.run("sh", "-c", f"cat > {wrapper} && chmod 755 {wrapper}", input=(
            f'#!/bin/sh\ncase "$*" in *{hanging}*) exec sleep 600 ;; esac\nexec {env["HYDRA_LAUNCHER_EXEC"]} "$@"\n')
        ).returncode == 0
        began = time.monotonic()
        done = a.run(sys.executable, "-m", "shmbench", "run", "--strategy", "mpi", "--workers", "2", "--nodes", "2",
                     "--hosts", f"{a.address},{hanging}", "--size", SIZE, env=dict(env, HYDRA_LAUNCHER_EXEC=wrapper))
        assert time.monotonic() - began < 15
        assert done.returncode == 2 and done.stderr.strip().splitlines() == [
            f"shmbench: error: mpiexec cannot start a process on host {hanging} (launcher ssh): "
            "no answer within 10 s"], done.stderr
        assert not [p for p in a.processes() if "sleep" in p.name() or "mpiexec" in p.name()]


def test_a_link_cut_mid_fill_fails_the_cell_naming_the_host():
    with hosts.two_hosts("cut") as (a, b):
        scheduler = _dask(a, b)
        run = subprocess.Popen(a.argv(sys.executable, "-m", "shmbench", "run", "--strategy", "dask", "--dask-address",
                                      scheduler, "--workers", "2", "--size", "256MiB", "--repeat", "50"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait("the passes", lambda: a.received() > 64 * 2**20, timeout=120)  # host b's rows arrive each pass
        a.run("ip", "link", "set", a.link, "down")
        cut = time.monotonic()
        out, err = run.communicate(timeout=120)
        assert run.returncode == 1, err
        assert time.monotonic() - cut < 30
        assert "worker 1 (pid " in err and f"host {b.address} unreachable" in err, err
        assert not [p for p in a.processes() if "shmbench" in " ".join(p.cmdline())]  # nothing of ours left
