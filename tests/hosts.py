"""Hosts made on this machine for tests: each a network namespace with an address of its own on a
link between them, and mount and UTS namespaces with its own /dev/shm, /tmp and hostname. Two such
hosts share nothing but the link, as two machines do. Needs root, iproute2 and util-linux.

Not a test module: the tests that run engines across hosts import it.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psutil

#: The link's network: addresses of the test hosts only, never any other.
NETWORK = "10.213.7"


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
    """A process in ``namespace`` with mount and UTS namespaces of its own: its own /dev/shm, /tmp
    and hostname. Returns it twice: the holder, and the process whose namespaces are the host's.
    (A process namespace of its own as well kept hydra's launcher, run on one host, from
    reaching the other.)"""
    script = ("mount -t tmpfs -o size=4g shm /dev/shm && mount -t tmpfs tmp /tmp "
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
