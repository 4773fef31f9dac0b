"""Joining a Ray cluster the user already runs, started the way Ray documents (``ray start --head``,
then ``ray start --address`` for one more node): verified records, and the cluster left as found.

Ray's nodes take the machine's primary address (127.0.0.1 is not allowed for a node that others
join), so the cluster runs on a host of its own: a network namespace whose only address beside
loopback sits on a link that leads nowhere. shmbench runs on that host, as a user runs it on
a node of their cluster.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import psutil
import pytest

from cases import default_sigint
from shmbench.cli.common import EXIT_INTERRUPTED

pytestmark = [pytest.mark.extras, pytest.mark.slow, pytest.mark.hosts]
pytest.importorskip("ray", reason="the ray extra is not installed")

RAY = os.path.join(os.path.dirname(sys.executable), "ray")
HOST_ADDRESS = "10.213.0.1"  # the namespace's own; nothing outside it is ever reached
PORT = "6380"


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def host():
    """A network namespace with loopback and ``HOST_ADDRESS`` on a link whose two ends are both in
    it; yields its name."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("a test host needs root and iproute2 (ip netns)")
    name = f"shmbench-ray-{os.getpid()}"
    _ip("netns", "add", name)
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", name, "link", "add", "h0", "type", "veth", "peer", "name", "h1")  # both ends in the namespace
        _ip("-n", name, "addr", "add", f"{HOST_ADDRESS}/24", "dev", "h0")
        for end in ("h0", "h1"):
            _ip("-n", name, "link", "set", end, "up")
        _ip("-n", name, "route", "add", "default", "dev", "h0")  # how Ray finds the node's address
        yield name
    finally:
        _ip("netns", "del", name)


def _ours(folder: str) -> list[psutil.Process]:
    """Ray's processes started under ``folder`` (their command lines name it), with their children."""
    found: dict[int, psutil.Process] = {}
    for process in psutil.process_iter(["cmdline"]):
        if folder in " ".join(process.info["cmdline"] or []):
            for each in [process, *process.children(recursive=True)]:
                found[each.pid] = each
    return list(found.values())


@pytest.fixture  # not shared between tests: each test's own check finds nothing of it left
def cluster(host):
    """``ray start --head`` and ``ray start --address`` on the test host, one CPU each, with Ray's
    token authentication (the token in a file of the test's); yields (address, environment)."""
    folder = tempfile.mkdtemp(prefix="shmbench-rayc-", dir="/tmp")  # Ray's socket paths must stay short
    token = os.path.join(folder, "token")
    with open(token, "w") as out:
        out.write(secrets.token_hex(32))
    env = dict(os.environ, RAY_TMPDIR=folder, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=token)
    env.pop("RAY_ADDRESS", None)
    address = f"{HOST_ADDRESS}:{PORT}"
    common = ["--num-cpus", "1", "--object-store-memory", str(256 * 2**20), "--disable-usage-stats", "--block"]
    started = []
    try:
        for argv in (["--head", "--port", PORT, "--include-dashboard", "false"], ["--address", address]):
            started.append(subprocess.Popen(["ip", "netns", "exec", host, RAY, "start", *argv, *common], env=env,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                            start_new_session=True))
            if argv[0] == "--head":
                _wait_for_nodes(host, address, env, 1)
        _wait_for_nodes(host, address, env, 2)
        yield address, env
    finally:
        for proc in started:
            try:
                os.killpg(proc.pid, signal.SIGTERM)  # `ray start --block` ends what it started
            except ProcessLookupError:
                pass
        for proc in started:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        left = _ours(folder)
        for process in left:
            process.kill()
        psutil.wait_procs(left, timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


_STATE = """import json, logging, sys, ray
ray.init(address=sys.argv[1], log_to_driver=False, logging_level=logging.ERROR)
nodes = [n for n in ray.nodes() if n["Alive"]]
print(json.dumps({"nodes": len(nodes), "cpus": ray.cluster_resources().get("CPU", 0),
                  "free": ray.available_resources().get("CPU", 0)}))
"""


def _state(host: str, address: str, env: dict) -> dict:
    """What a driver of its own sees of the cluster: alive nodes, CPUs, CPUs free."""
    done = _in(host, env, sys.executable, "-c", _STATE, address)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.split("\n")[-2])


def _wait_for_nodes(host: str, address: str, env: dict, count: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        done = _in(host, env, sys.executable, "-c", _STATE, address)
        if done.returncode == 0 and json.loads(done.stdout.split("\n")[-2])["nodes"] >= count:
            return
        assert time.monotonic() < deadline, f"the cluster never had {count} nodes: {done.stderr[-500:]}"
        time.sleep(1)


def _in(host: str, env: dict, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", host, *argv], env=env, capture_output=True, text=True,
                          timeout=timeout)


def _run(host: str, env: dict, *argv: str) -> subprocess.CompletedProcess:
    return _in(host, env, sys.executable, "-m", "shmbench", "run", *argv)


def test_a_ray_cluster_the_user_runs_is_joined_and_left_as_it_was(host, cluster, tmp_path):
    address, env = cluster
    out = tmp_path / "joined.json"
    done = _run(host, env, "--strategy", "serial", "--strategy", "ray", "--ray-address", address, "--workers", "2",
                "--size", "32MiB", "--repeat", "3", "--budget", "0", "--digest", "--json", str(out))
    assert done.returncode == 0, done.stderr
    records = {r["strategy"]: r for r in json.loads(out.read_text())["results"]}
    joined = records["ray"]
    assert joined["verified"] and joined["digest"] == records["serial"]["digest"]
    settings = joined["settings"]["cluster"]
    assert settings.startswith(f"joined {address}: 2 nodes, 2 CPUs, ours on 2 node(s)"), settings
    assert joined["internode_bytes"] == 16 * 2**20  # SPREAD put one actor on the other node: its half crossed
    assert "seen for the 2 worker(s) on this host" in joined["settings"]["memory"]
    _left_as_it_was(host, address, env)


def _left_as_it_was(host: str, address: str, env: dict, timeout: float = 60) -> None:
    """Both nodes up, every CPU free (no actor of ours), no actor process. (The objects in the
    stores are counted by the two-host tests, where ``ray memory`` runs in a host of its own: in
    one CI run here, /dev/shm gained multiprocessing semaphores during a test that ran it.)"""
    deadline = time.monotonic() + timeout
    while True:
        state = _state(host, address, env)
        actors = [p for p in psutil.process_iter(["name"]) if p.info["name"] == "ray::_Actor"]
        if (state, actors) == ({"nodes": 2, "cpus": 2, "free": 2}, []):
            return
        assert time.monotonic() < deadline, (state, actors)
        time.sleep(1)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL])
def test_an_interrupted_or_killed_driver_leaves_nothing_on_the_cluster(host, cluster, signum):
    """An interrupted shmbench kills its actors and disconnects; a killed one's actors and the
    objects it owned go with its job (Ray's own rule): neither leaves an actor behind it."""
    address, env = cluster
    run = subprocess.Popen(["ip", "netns", "exec", host, sys.executable, "-m", "shmbench", "run", "--strategy", "ray",
                            "--ray-address", address, "--workers", "2", "--size", "64MiB", "--repeat", "50"],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=default_sigint)
    deadline = time.monotonic() + 120
    while _state(host, address, env)["free"] > 0:  # until our actors hold both CPUs
        assert time.monotonic() < deadline and run.poll() is None, "the run never got going"
        time.sleep(0.5)
    time.sleep(3)  # passes under way: results in the stores
    run.send_signal(signum)
    assert run.wait(60) == (EXIT_INTERRUPTED if signum == signal.SIGINT else -signal.SIGKILL)
    _left_as_it_was(host, address, env)


def test_a_ray_cluster_too_small_or_unreachable_is_refused_in_one_line(host, cluster):
    address, env = cluster
    small = _run(host, env, "--strategy", "ray", "--ray-address", address, "--workers", "3", "--size", "8MiB")
    assert small.returncode == 2 and "Traceback" not in small.stderr
    assert f"the Ray cluster at {address} has 2 CPUs, fewer than the 3 asked for" in small.stderr, small.stderr
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    began = time.monotonic()
    gone = subprocess.run([sys.executable, "-m", "shmbench", "run", "--strategy", "ray", "--ray-address",
                           f"127.0.0.1:{closed}", "--workers", "2", "--size", "8MiB"],
                          capture_output=True, text=True, timeout=120)
    assert gone.returncode == 2 and len(gone.stderr.strip().splitlines()) == 1, gone.stderr
    assert f"cannot reach the Ray cluster at 127.0.0.1:{closed}" in gone.stderr, gone.stderr
    assert time.monotonic() - began < 15
    client = _run(host, env, "--strategy", "ray", "--ray-address", "ray://127.0.0.1:10001", "--size", "8MiB")
    assert client.returncode == 2 and "is a Ray Client address" in client.stderr, client.stderr
    alone = _run(host, env, "--strategy", "serial", "--ray-address", address, "--size", "8MiB")
    assert alone.returncode == 2 and "--ray-address is for --strategy ray" in alone.stderr, alone.stderr
