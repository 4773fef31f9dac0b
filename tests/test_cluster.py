"""Joining a Dask cluster the user already runs, started the way Dask documents (``dask scheduler``,
``dask worker``), on loopback only: verified records, and the cluster left as it was found."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from cases import default_sigint, wait_until
from shmbench.cli.common import EXIT_INTERRUPTED

pytestmark = [pytest.mark.extras, pytest.mark.slow]
distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")

DASK = os.path.join(os.path.dirname(sys.executable), "dask")


def _start(*argv: str) -> subprocess.Popen:
    # A session of its own, so the whole of it (a nanny and its worker) can be ended at once.
    return subprocess.Popen([DASK, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


@pytest.fixture
def cluster(tmp_path):
    """A scheduler and two one-thread workers on 127.0.0.1; yields the scheduler file."""
    path = str(tmp_path / "scheduler.json")
    started = [_start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", path)]
    try:
        wait_until(lambda: os.path.exists(path), "the scheduler's file")
        for _ in range(2):
            started.append(_start("worker", "--scheduler-file", path, "--host", "127.0.0.1", "--nthreads", "1",
                                  "--memory-limit", "0", "--no-dashboard"))
        with distributed.Client(scheduler_file=path, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield path
    finally:
        for proc in reversed(started):
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in reversed(started):
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shmbench", "run", *argv], capture_output=True, text=True, timeout=300)


def test_a_dask_cluster_the_user_runs_is_joined_and_left_as_it_was(cluster, tmp_path):
    out = tmp_path / "joined.json"
    done = _run("--strategy", "serial", "--strategy", "dask", "--dask-address", cluster, "--workers", "2",
                "--size", "8MiB", "--repeat", "3", "--budget", "0", "--digest", "--json", str(out))
    assert done.returncode == 0, done.stderr
    records = {r["strategy"]: r for r in json.loads(out.read_text())["results"]}
    joined = records["dask"]
    assert joined["verified"] and joined["digest"] == records["serial"]["digest"]
    assert joined["settings"]["cluster"].startswith(f"joined {cluster}: 2 workers")
    assert "seen for the 2 worker(s) on this host" in joined["settings"]["memory"]
    _left_as_it_was(cluster)


def _left_as_it_was(cluster: str) -> None:
    """Both workers still up (never stopped by us), and no task of ours, nor any row, left on them."""
    with distributed.Client(scheduler_file=cluster, timeout=30) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        # Lambdas are sent by value (a test module's functions the workers could not import).
        wait_until(lambda: client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) == 0,
                   "the scheduler forgetting our tasks", poll=0.5)
        wait_until(lambda: set(client.run(lambda dask_worker: len(dask_worker.data)).values()) == {0},
                   "the workers dropping our rows", poll=0.5)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL])
def test_an_interrupted_or_killed_client_leaves_nothing_on_the_cluster(cluster, signum):
    """Our seats (each worker's rows) are results our client holds: an interrupted shmbench closes
    its client, and the scheduler forgets a killed one's futures when its connection drops (Dask's
    own rule), so neither leaves anything behind it."""
    run = subprocess.Popen([sys.executable, "-m", "shmbench", "run", "--strategy", "dask", "--dask-address", cluster,
                            "--workers", "2", "--size", "64MiB", "--repeat", "50"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=default_sigint)
    with distributed.Client(scheduler_file=cluster, timeout=30) as client:
        wait_until(lambda: min(client.run(lambda dask_worker: len(dask_worker.data)).values()) >= 1,
                   "a seat on each worker", timeout=120, poll=0.5)
    run.send_signal(signum)
    assert run.wait(60) == (EXIT_INTERRUPTED if signum == signal.SIGINT else -signal.SIGKILL)
    _left_as_it_was(cluster)


def test_a_cluster_too_small_or_unreachable_is_refused_in_one_line(cluster):
    small = _run("--strategy", "dask", "--dask-address", cluster, "--workers", "3", "--size", "8MiB")
    assert small.returncode == 2 and "Traceback" not in small.stderr
    assert "has 2 workers, fewer than the 3 asked for" in small.stderr, small.stderr
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    gone = _run("--strategy", "dask", "--dask-address", f"tcp://127.0.0.1:{closed}", "--workers", "2", "--size", "8MiB")
    assert gone.returncode == 2 and "Traceback" not in gone.stderr
    assert f"cannot reach the Dask scheduler at tcp://127.0.0.1:{closed}" in gone.stderr, gone.stderr
    assert len(gone.stderr.strip().splitlines()) == 1
    alone = _run("--strategy", "serial", "--dask-address", cluster, "--size", "8MiB")
    assert alone.returncode == 2 and "--dask-address is for --strategy dask" in alone.stderr
