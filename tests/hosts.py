"""Hosts made on this machine for tests: each a network namespace with an address of its own on a
link between them, and mount and UTS namespaces with its own /dev/shm, /tmp and hostname. Two such
hosts share nothing but the link, as two machines do. Needs root, iproute2 and util-linux.

Not a test module: the tests that run engines across hosts import it. Run as a script, it makes
the run docs/nodes.md shows: ``python tests/hosts.py docs/hosts-run.json`` (as root).
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psutil

#: The link's network: addresses of the test hosts only, never any other.
NETWORK = "10.213.7"
#: The engines' commands: those beside this interpreter.
BIN = os.path.dirname(sys.executable)


def unavailable() -> str | None:
    """Why test hosts cannot be made here, or None."""
    if os.geteuid() != 0:
        return "test hosts need root (network and mount namespaces)"
    missing = [tool for tool in ("ip", "unshare", "nsenter") if not shutil.which(tool)]
    return f"test hosts need {', '.join(missing)}" if missing else None


@dataclass
class Host:
    name: str
    address: str
    link: str  #: its end of the link, the interface whose counters say what crossed
    holder: subprocess.Popen  #: a process that keeps the host's namespaces while it lives
    init: int  #: the process whose namespaces are the host's: entering the host is entering them

    def argv(self, *argv: str) -> list[str]:
        """``argv`` as run on this host."""
        return ["nsenter", "--target", str(self.init), "--net", "--mount", "--uts", "--", *argv]

    def run(self, *argv: str, env: dict | None = None, timeout: float = 300,
            input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*argv), env=env, capture_output=True, text=True, timeout=timeout,
                              input=input)

    def start(self, *argv: str, env: dict | None = None) -> subprocess.Popen:
        """A long-running command on this host, in a session of its own."""
        return subprocess.Popen(self.argv(*argv), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)

    def received(self) -> int:
        """Bytes its end of the link has received so far."""
        return int(self.run("cat", f"/sys/class/net/{self.link}/statistics/rx_bytes").stdout)

    def processes(self) -> list[psutil.Process]:
        """Every process on this host but its holder (those in its network namespace)."""
        mine = os.readlink(f"/proc/{self.init}/ns/net")
        found = []
        for process in psutil.process_iter():
            try:
                if process.pid not in (self.holder.pid, self.init) and os.readlink(f"/proc/{process.pid}/ns/net") == mine:
                    found.append(process)
            except OSError:
                pass
        return found


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True, timeout=30)


def _hold(namespace: str, hostname: str) -> tuple[subprocess.Popen, int]:
    """A process in ``namespace`` with mount and UTS namespaces of its own: its own /dev/shm, /tmp,
    hostname, name resolution (the two hosts by name in its /etc/hosts; a resolver on loopback,
    where none answers, so no name is ever looked up outside) and boot id (UCX, under MPICH, takes
    processes with the same boot id for one machine's and joins them by shared memory). Returns it twice: the holder, and the
    process whose namespaces are the host's. (A process namespace of its own as well kept hydra's
    launcher, run on one host, from reaching the other.)"""
    names = "".join(f"{NETWORK}.{i + 1} host-{side}\\n" for i, side in enumerate("ab"))
    script = ("mount -t tmpfs -o size=4g shm /dev/shm && mount -t tmpfs tmp /tmp "
              f"&& printf '127.0.0.1 localhost\\n{names}' > /tmp/.hosts && mount --bind /tmp/.hosts /etc/hosts "
              "&& echo 'nameserver 127.0.0.1' > /tmp/.resolv.conf && mount --bind /tmp/.resolv.conf /etc/resolv.conf "
              "&& cat /proc/sys/kernel/random/uuid > /tmp/.boot_id "
              "&& mount --bind /tmp/.boot_id /proc/sys/kernel/random/boot_id "
              f"&& hostname {hostname} && echo ready && exec sleep infinity")
    holder = subprocess.Popen(["ip", "netns", "exec", namespace, "unshare", "--mount", "--uts", "sh", "-c", script],
                              stdout=subprocess.PIPE, text=True)
    if holder.stdout.readline().strip() != "ready":
        holder.kill()
        holder.wait()
        raise RuntimeError(f"host {hostname} could not be made")
    return holder, holder.pid


@contextmanager
def two_hosts(tag: str) -> Iterator[tuple[Host, Host]]:
    """Hosts ``a`` and ``b`` on one link; everything started on them is ended afterwards."""
    namespaces = [f"shmbench-{tag}-{side}" for side in "ab"]
    hosts: list[Host] = []
    made: list[str] = []
    try:
        for namespace in namespaces:
            _ip("netns", "add", namespace)
            made.append(namespace)
        _ip("link", "add", "link-a", "netns", namespaces[0], "type", "veth", "peer", "name", "link-b",
            "netns", namespaces[1])
        for i, (namespace, side) in enumerate(zip(namespaces, "ab")):
            address, link = f"{NETWORK}.{i + 1}", f"link-{side}"
            _ip("-n", namespace, "link", "set", "lo", "up")
            _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", link)
            _ip("-n", namespace, "link", "set", link, "up")
            _ip("-n", namespace, "route", "add", "default", "dev", link)  # how engines find the host's address
            hosts.append(Host(f"host-{side}", address, link, *_hold(namespace, f"host-{side}")))
        yield hosts[0], hosts[1]
    finally:
        for host in hosts:
            _end(host.processes())
            host.holder.send_signal(signal.SIGKILL)
            host.holder.wait()
        for namespace in made:
            _ip("netns", "del", namespace)


def _end(processes: list[psutil.Process]) -> None:
    for process in processes:
        try:
            process.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(processes, timeout=15)
    for process in alive:
        try:
            process.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=15)


def launcher(hosts: list[Host]) -> dict[str, str]:
    """What MPICH's hydra, run on ``hosts[0]``, needs to start proxies on the test hosts, which
    have no ssh: its ssh launcher with an executable of ours (in that host's own /tmp) that runs
    the command on the named host, as ssh would on a machine. Returned as the environment hydra
    reads it from."""
    script = "/tmp/shmbench-on-host"
    table = " ".join(f"{h.name}|{h.address}) pid={h.init} ;;" for h in hosts)
    text = ("#!/bin/sh\n"
            "# hydra calls it as ssh: options, the host, then the command line\n"
            'while [ "${1#-}" != "$1" ]; do shift; done\n'
            f'case "$1" in {table} *) echo "no such test host: $1" >&2; exit 255 ;; esac\n'
            "shift\n"
            'exec nsenter --target "$pid" --net --mount --uts -- sh -c "$*"\n')
    written = hosts[0].run("sh", "-c", f"cat > {script} && chmod 755 {script}", input=text)
    assert written.returncode == 0, written.stderr
    return {"HYDRA_LAUNCHER": "ssh", "HYDRA_LAUNCHER_EXEC": script}


def wait(what: str, done, timeout: float = 90) -> None:
    """Until ``done()``; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(1)


_RAY_NODES = """import json, logging, sys, ray
ray.init(address=sys.argv[1], log_to_driver=False, logging_level=logging.ERROR)
print(json.dumps([sum(n["Alive"] for n in ray.nodes()), ray.available_resources().get("CPU", 0)]))
"""


def start_ray(a: Host, b: Host) -> tuple[str, dict]:
    """``ray start --head`` on host a and ``ray start --address`` on host b; the head's address and
    the environment that joins it."""
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    env.pop("RAY_ADDRESS", None)
    head = f"{a.address}:6380"
    common = ["--num-cpus", "1", "--object-store-memory", str(768 * 2**20), "--disable-usage-stats", "--block"]
    a.start(f"{BIN}/ray", "start", "--head", "--port", "6380", "--include-dashboard", "false", *common, env=env)
    wait("the head", lambda: ray_nodes(a, head, env)[0] >= 1)
    b.start(f"{BIN}/ray", "start", "--address", head, *common, env=env)
    wait("the second node", lambda: ray_nodes(a, head, env)[0] >= 2)
    return head, env


def ray_nodes(a: Host, head: str, env: dict) -> list:
    """[nodes alive, CPUs free] of the Ray cluster at ``head``."""
    done = a.run(sys.executable, "-c", _RAY_NODES, head, env=env)
    return json.loads(done.stdout.splitlines()[-1]) if done.returncode == 0 else [0, 0]


def ray_objects(host: Host, head: str, env: dict) -> int:
    """The objects in the object stores of the Ray cluster at ``head`` (``ray memory``: from the
    raylets, without the dashboard the state API needs)."""
    done = host.run(f"{BIN}/ray", "memory", "--stats-only", "--address", head, env=env)
    found = re.search(r"Plasma memory usage \d+ MiB, (\d+) objects", done.stdout)
    assert found, done.stdout + done.stderr
    return int(found.group(1))


def start_dask(a: Host, b: Host) -> str:
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


_DASK_LEFT = """import json, sys, distributed
with distributed.Client(sys.argv[1], timeout=30) as c:
    keys = c.run(lambda dask_worker: len(dask_worker.data))
    tasks = c.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
    print(json.dumps([len(keys), tasks, sum(keys.values())]))
"""


def dask_left(host: Host, scheduler: str) -> list[int]:
    """[workers, tasks the scheduler knows, keys the workers hold] of the Dask cluster at ``scheduler``."""
    done = host.run(sys.executable, "-c", _DASK_LEFT, scheduler, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def engine_options(engine: str, a: Host, b: Host) -> tuple[list[str], dict]:
    """The engine's cluster on the two hosts, as its users start one; shmbench's options and
    environment to run across it from host a."""
    if engine == "ray":
        head, env = start_ray(a, b)
        return ["--strategy", "ray", "--ray-address", head], env
    if engine == "dask":
        return ["--strategy", "dask", "--dask-address", start_dask(a, b)], dict(os.environ)
    return (["--strategy", "mpi", "--nodes", "2", "--hosts", f"{a.address},{b.address}"],
            dict(os.environ, **launcher([a, b])))


def docs_run(path: str, size: str = "256MiB") -> None:
    """Each engine across the two hosts, beside serial where the engine allows it (``--hosts`` is
    for mpi alone), at ``size``; the engines' records of the three runs written to ``path`` as one
    run (each speed-up is against its own run's serial)."""
    began, merged, digests = time.monotonic(), None, set()  # serial's digest (the same seed in every run)
    for engine in ("ray", "dask", "mpi"):
        with two_hosts(f"docs-{engine}") as (a, b):
            options, env = engine_options(engine, a, b)
            serial = [] if engine == "mpi" else ["--strategy", "serial"]
            done = a.run(sys.executable, "-m", "shmbench", "run", *serial, *options, "--workers", "2", "--size", size,
                         "--digest", "--json", "-", env=env, timeout=1800)
            if done.returncode:
                raise SystemExit(f"{engine} across the test hosts failed:\n{done.stderr}")
            doc = json.loads(done.stdout)
            digests.update(r["digest"] for r in doc["results"] if r["strategy"] == "serial")
            doc["results"] = [r for r in doc["results"] if r["strategy"] != "serial"]  # each run's own reference
            if not all(r["verified"] for r in doc["results"]) or {r["digest"] for r in doc["results"]} != digests:
                raise SystemExit(f"{engine} across the test hosts: not verified, or its digest is not serial's")
            head = options[-1]
            left = ({"nodes alive, CPUs free": ray_nodes(a, head, env), "objects": ray_objects(a, head, env)}
                    if engine == "ray" else {"workers, tasks, keys": dask_left(a, head)} if engine == "dask" else
                    {"processes on host b": len(b.processes())})
            print(f"{engine}: verified, digest {digests} equal to serial's; left on the cluster afterwards: {left}",
                  flush=True)
            if merged is None:
                merged = doc
            else:
                merged["results"] += doc["results"]
    merged["run"] = dict(merged.get("run") or {}, command=f"python tests/hosts.py {path}",
                         seconds=time.monotonic() - began)
    with open(path, "w") as f:
        json.dump(merged, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 2 or unavailable():
        raise SystemExit(f"usage: python tests/hosts.py OUT.json (as root){'; ' + unavailable() if unavailable() else ''}")
    docs_run(sys.argv[1])
