"""Ray actors on a private Ray instance: one actor per share, answers through the object store.

``start`` is ``ray.init`` with one CPU per worker, a bounded object store and no dashboard, in a
session directory of ours that close removes, every address on loopback. What an actor returns
(its blocks, its sums) is copied into the store, and the parent reads it from there zero-copy. A
read-only workload's input is put into the store once per pass and every actor reads its share of
that one copy.

With ``--ray-address`` (``ADDRESS_ENV``), ``start`` joins a cluster the user runs instead (``ray
start``, as Ray documents): a driver of ours, one actor per share spread over its nodes, killed at
close; the cluster itself is never started, stopped or reconfigured.

On several nodes, ``start`` is ``ray.cluster_utils.Cluster`` (as Ray's own tests run clusters): a
raylet and an object store per node, all on this machine; each actor is pinned to its node. The
answers of actors off the driver's node are real transfers between object stores: ``internode``
pulls them into the driver's store, and ``collect`` assembles them with the rest.
"""
from __future__ import annotations

import gc
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import psutil

from .._system import environ, interrupts
from .base import SILENT_SECONDS, OnPart, Runtime, become_worker, deliver, died, end, failed, ignore
from .seat import Command, Seat, collected

_STORE_SLACK = 64 * 2**20  # Ray's own objects, beside the answers
_STORE_MINIMUM = 96 * 2**20  # Ray refuses a store under 75 MiB
# Ray frees the last pass's objects asynchronously (once the driver's references are dropped and
# the owners hear of it), so the next pass's answers may arrive while the last ones still hold
# their space: a store of one matrix then blocks on eviction or spills.
_STORE_PASSES = 2
# Ray's single-machine switch (as on Windows and macOS): off, every process of a Ray started here
# listens on loopback only. On, ``ray.init()`` binds the machine's primary address, reachable from
# the network, even for one machine (Ray turns 127.0.0.1 given as the node's address into it).
_CLUSTERS = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
#: A running Ray cluster to join (its head's ``host:port``, or ``auto``) instead of starting one.
ADDRESS_ENV = "SHMBENCH_RAY_ADDRESS"
#: How long joining may take before the cluster is called unreachable (Ray itself retries for a minute).
CONNECT_SECONDS = 15
#: How often a pending ``ray.get`` looks up, and how often it knocks at a far node's raylet.
_POLL_SECONDS = 0.5
_PROBE_EVERY_SECONDS = 2.0
_PROBE = """import json, logging, sys, ray
ray.init(address=sys.argv[1], log_to_driver=False, logging_level=logging.ERROR)
print(json.dumps(ray.cluster_resources().get("CPU", 0)))
"""


def probe(address: str, workers: int) -> str | None:
    """Why the Ray cluster at ``address`` cannot take ``workers`` actors of one CPU each, or None;
    asked before anything runs, by a driver of its own in a process of its own."""
    if address.startswith("ray://"):
        return (f"{address} is a Ray Client address; shmbench joins as a driver on a node of the cluster: "
                "give the head's host:port (what `ray start --head` prints), or auto")
    host, _, port = address.rpartition(":")
    if host and port.isdigit():  # an unreachable head is told at once, not after Ray's retries
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
        except OSError as error:
            return f"cannot reach the Ray cluster at {address}: {error.strerror or error}"
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE, address], capture_output=True, text=True,
                              timeout=CONNECT_SECONDS)
    except subprocess.TimeoutExpired:
        return f"cannot join the Ray cluster at {address}: no answer within {CONNECT_SECONDS} s"
    if done.returncode:
        errors = [line for line in done.stderr.splitlines() if "Error" in line] or done.stderr.splitlines() or ["?"]
        return f"cannot join the Ray cluster at {address}: {errors[-1].strip()}"
    cpus = float(done.stdout.split()[-1])
    if cpus < workers:
        return f"the Ray cluster at {address} has {cpus:g} CPUs, fewer than the {workers} asked for"
    return None


def _cluster(nodes: int, cpus: int, store: int, session: str):
    """``nodes`` raylets with their object stores on this machine, ``cpus`` CPUs each."""
    from ray.cluster_utils import Cluster

    cluster = Cluster()
    try:
        for _ in range(nodes):
            cluster.add_node(num_cpus=cpus, object_store_memory=store, include_dashboard=False, temp_dir=session)
    except BaseException:
        cluster.shutdown()
        raise
    return cluster


@contextmanager
def on_loopback() -> Iterator[None]:
    """Ray's single-machine mode for the block: for the processes Ray starts (the variable) and for
    this driver (which read it when Ray was imported)."""
    from ray._private import ray_constants

    earlier, address = ray_constants.ENABLE_RAY_CLUSTER, os.environ.pop("RAY_ADDRESS", None)  # not to be joined
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        with environ.setting(_CLUSTERS, "0"):
            yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = earlier
        environ.restore("RAY_ADDRESS", address)


def store_bytes(nbytes: int) -> int:
    """The object store for a matrix of ``nbytes``: the answers (or the input) of two passes."""
    return max(_STORE_MINIMUM, _STORE_PASSES * nbytes + _STORE_SLACK)


class _Actor:
    """One Ray actor holding a seat (Ray imports this class by name)."""

    def __init__(self, attachment, plan, rows: range) -> None:
        become_worker()  # Ray ends its actors itself when the driver dies
        self.attachment = attachment
        self.seat = Seat(plan, rows, None)

    def pid(self) -> int:
        return os.getpid()

    def place(self) -> tuple[int, str, str]:
        """Where the actor runs: its pid, its node's id and address."""
        import ray

        return os.getpid(), ray.get_runtime_context().get_node_id(), ray.util.get_node_ip_address()

    def run(self, command: Command, source: np.ndarray | None):
        seat = self.seat
        if seat.matrix is None:
            seat.matrix, seat.first_row, _ = self.attachment.open(seat.plan, seat.rows)
        # The rows stay between passes, as a stateful actor's would: dropped after each collect, the
        # next fill allocated them afresh, and the kernel's zeroing of 512 MiB of new pages (whole
        # seconds of system time when no huge pages were to be had) made 1 GiB passes bimodal here.
        return collected(seat, command, source)


class RayActors(Runtime):
    launcher = "ray"

    def start(self) -> list[int]:
        import ray

        if ray.is_initialized():
            raise RuntimeError("Ray is already running in this process; the ray strategy starts its own")
        self._actors: list = []
        self._cluster = None
        self._fetched: dict = {}  # slot -> answer, pulled to the driver's node by ``internode``
        self._here: list[bool] = []  # per worker, on this host: for a cluster the run joined
        self._places_joined: list[tuple[str, str]] = []  # per worker, its node's id and address, likewise
        self._far: dict[int, tuple[str, int]] = {}  # workers on other hosts: their raylet's address and port
        self._heard_at: dict[int, float] = {}  # ... and when each raylet last answered
        joined = os.environ.get(ADDRESS_ENV, "").strip()
        if joined:
            return self._join(joined)
        # Ray's sockets live under its temporary directory, whose path must stay short.
        session = tempfile.mkdtemp(prefix="shmbench-ray-", dir="/tmp" if os.path.isdir("/tmp") else None)
        janitor = self.hire_janitor(paths=[session])  # first: the parent may die while Ray starts
        # Removed before the janitor is dismissed: a janitor sweeping after a start cut short ends
        # every process holding a file in the session, the parent's own driver included.
        self.made(shutil.rmtree, session, ignore_errors=True)
        before = {p.pid for p in psutil.Process().children(recursive=True)}
        nodes = max(self.nodes) + 1
        if nodes > 1:  # where the cluster notes its address for ``ray.init("auto")``: our session, not /tmp/ray
            self.made(environ.restore, "RAY_TMPDIR", os.environ.get("RAY_TMPDIR"))
            os.environ["RAY_TMPDIR"] = session
            os.makedirs(os.path.join(session, "ray"))
        self.entered(on_loopback())
        self.made(self._stop)  # before ray.init: one cut short leaves a node and a driver half made
        # The janitor marks Ray's processes and those they start later (its agents). Ray installs
        # signal handlers of its own; the caller's (the CLI stops workers and exits 143 on SIGTERM)
        # must stay in charge.
        with janitor.marking(), interrupts.kept():
            quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
            if nodes == 1:
                ray.init(num_cpus=len(self.shares), object_store_memory=store_bytes(self.plan.nbytes),
                         include_dashboard=False, _temp_dir=session, **quiet)
            else:
                self._cluster = _cluster(nodes, -(-len(self.shares) // nodes), store_bytes(self.plan.nbytes), session)
                ray.init(address=self._cluster.address, **quiet)
        actor = ray.remote(num_cpus=1)(_Actor)
        places = self._places() if nodes > 1 else [{}] * len(self.shares)
        self._actors = [actor.options(**place).remote(a, self.plan, rows)
                        for a, rows, place in zip(self.attachments, self.shares, places)]
        self.ids = self._get([a.pid.remote() for a in self._actors], "start")
        # Ray's own processes (raylets, GCS, agents) outlived a killed parent here: the janitor ends them.
        started = [p.pid for p in psutil.Process().children(recursive=True) if p.pid not in before]
        janitor.watch(started + self.ids)
        store = store_bytes(self.plan.nbytes)
        self.settings = {"init": (f"ray.init(num_cpus={len(self.shares)}, object_store_memory={store}, "
                                  "include_dashboard=False)") if nodes == 1 else
                         f"ray.cluster_utils.Cluster: {nodes} nodes of num_cpus={-(-len(self.shares) // nodes)}, "
                         f"object_store_memory={store}",
                         "store": f"{store / 2**20:.0f} MiB a node: at least {_STORE_PASSES} passes' answers + "
                                  f"{_STORE_SLACK >> 20} MiB",
                         "tasks": "one actor (num_cpus=1) per worker, keeping its rows between passes and "
                                  "returning its blocks; the driver reads them zero-copy with ray.get",
                         "signals": f"{interrupts.RAY_SWITCH}=1 during start and close: the driver's SIGINT and "
                                    "SIGTERM handlers stay shmbench's (no effect on speed)",
                         "versions": f"ray {ray.__version__}"}
        return self.ids

    def _join(self, address: str) -> list[int]:
        """Actors on a cluster the user runs, spread over its nodes: the cluster is never started,
        stopped or reconfigured here. Our actors are killed and our driver leaves at close; a
        killed parent leaves them to Ray's own rule (a driver's actors and objects go with it)."""
        import ray

        self.made(self._leave)
        with interrupts.kept():
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
        actor = ray.remote(num_cpus=1)(_Actor)
        self._actors = [actor.options(scheduling_strategy="SPREAD").remote(a, self.plan, rows)
                        for a, rows in zip(self.attachments, self.shares)]
        places = self._get([a.place.remote() for a in self._actors], "start")
        mine = ray.get_runtime_context().get_node_id()
        order = [mine] + sorted({node for _, node, _ in places} - {mine})
        self.ids, self.nodes = [pid for pid, _, _ in places], [order.index(node) for _, node, _ in places]
        local = {a.address for addresses in psutil.net_if_addrs().values() for a in addresses}
        self._here = [ip in local for _, _, ip in places]
        self._places_joined = [(node, ip) for _, node, ip in places]
        raylets = {n["NodeID"]: (n["NodeManagerAddress"], n["NodeManagerPort"]) for n in ray.nodes()}
        self._far = {slot: raylets[node] for slot, (node, _) in enumerate(self._places_joined) if not self._here[slot]}
        self._heard_at = {slot: time.monotonic() for slot in self._far}
        alive = [n for n in ray.nodes() if n["Alive"]]
        self.settings = {"cluster": f"joined {address}: {len(alive)} nodes, {ray.cluster_resources().get('CPU', 0):g} "
                                    f"CPUs, ours on {len(set(self.nodes))} node(s); never started or stopped by "
                                    "shmbench",
                         "init": "ray.init(address=...)",
                         "tasks": "one actor (num_cpus=1, scheduling_strategy='SPREAD') per worker, keeping its rows "
                                  "between passes and returning its blocks; the driver reads them with ray.get",
                         "memory": f"seen for the {sum(self._here)} worker(s) on this host, not for the others",
                         "versions": f"ray {ray.__version__}"}
        return self.ids

    def on_this_host(self, slot: int) -> bool:
        return self._here[slot] if self._here else True

    def _leave(self) -> None:
        """Leave a cluster the run joined: our actors killed (Ray frees what they held), our driver
        gone (Ray frees the objects it owned); nothing signalled by pid, which means nothing here."""
        import ray

        actors, self._actors, self._fetched = self._actors, [], {}
        with interrupts.kept():
            for actor in actors:
                ray.kill(actor)
            ray.shutdown()
        gc.collect()  # as after a Ray of our own: its leftovers must not reach a forked worker

    def _places(self) -> list[dict]:
        """Each actor's placement: pinned to its node, node 0 being the one the driver joined."""
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        mine = ray.get_runtime_context().get_node_id()
        ids = [mine] + sorted(n.node_id for n in self._cluster.list_all_nodes() if n.node_id != mine)
        return [{"scheduling_strategy": NodeAffinitySchedulingStrategy(ids[node], soft=False)} for node in self.nodes]

    def _get(self, refs, what: str) -> list:
        import ray

        try:
            while self._far and len(ray.wait(refs, num_returns=len(refs), timeout=_POLL_SECONDS)[0]) < len(refs):
                self._heard(what)
            return ray.get(refs)
        except (ray.exceptions.RayActorError, ray.exceptions.ObjectLostError) as error:
            gone = [i for i, a in enumerate(self._actors) if a._actor_id.hex() == getattr(error, "actor_id", None)]
            slot = gone[0] if gone and gone[0] < len(self.ids) else None
            lost = self._lost()
            if lost is not None:  # a node of a joined cluster gone: a cut link, a host down, its Ray ended
                raise died(lost, self.ids[lost], what, self.where(lost),
                           how=f"its node left the cluster: host {self._places_joined[lost][1]} unreachable "
                               "or its Ray ended") from error
            if isinstance(error, ray.exceptions.ObjectLostError):
                raise
            how = f"its actor on host {self._places_joined[slot][1]} ended" if self._places_joined and slot is not None \
                else ""
            raise died(slot, self.ids[slot] if slot is not None else None, what, self.where(slot), how=how) from error
        except ray.exceptions.RayTaskError as error:
            raise failed(what, str(error)) from error

    def _heard(self, what: str) -> None:
        """A worker on another host whose node's raylet stops answering (a cut link, a host down)
        is lost: Ray's health checks take a minute or more to call the node dead, and a pending
        ``ray.get`` waited for longer than that here."""
        now = time.monotonic()
        for slot, (ip, port) in self._far.items():
            if now - self._heard_at[slot] < _PROBE_EVERY_SECONDS:
                continue
            try:
                socket.create_connection((ip, port), timeout=1.0).close()
                self._heard_at[slot] = time.monotonic()
            except OSError:
                if time.monotonic() - self._heard_at[slot] > SILENT_SECONDS:
                    raise died(slot, self.ids[slot], what, self.where(slot),
                               how=f"not heard from in {SILENT_SECONDS:.0f} s: host {ip} unreachable") from None

    def _lost(self) -> int | None:
        """The first worker whose node a joined cluster no longer counts alive, or None."""
        import ray

        if not self._places_joined:
            return None
        alive = {node["NodeID"] for node in ray.nodes() if node["Alive"]}
        return next((slot for slot, (node, _) in enumerate(self._places_joined) if node not in alive), None)

    def run(self, command: Command, on_part: OnPart = ignore, source: np.ndarray | None = None) -> list[int]:
        import ray

        stored = None if source is None else ray.put(source)  # one copy, read by every actor
        fetched, self._fetched = self._fetched, {}
        todo = [slot for slot in range(len(self._actors)) if slot not in fetched]
        got = dict(zip(todo, self._get([self._actors[s].run.remote(command, stored) for s in todo], command.name)))
        answers = [fetched[slot] if slot in fetched else got[slot] for slot in range(len(self._actors))]
        deliver(on_part, ((slot, parts) for slot, (_, parts) in enumerate(answers)))  # views of the store
        return [faults for faults, _ in answers]

    def internode(self, command: Command, on_part: OnPart = ignore) -> tuple[list[int], int, str]:
        """The answers of the actors off the driver's node, pulled into its object store; the next
        ``run`` of ``command`` takes them as they are and assembles them with the others'."""
        remote = [slot for slot, node in enumerate(self.nodes) if node]
        answers = self._get([self._actors[slot].run.remote(command, None) for slot in remote], command.name)
        self._fetched = dict(zip(remote, answers))
        moved = sum(part[2].nbytes for _, parts in answers for part in parts)
        faults = [self._fetched[slot][0] if slot in self._fetched else 0 for slot in range(len(self.shares))]
        return faults, moved, "computed: the blocks of the actors off the driver's node"

    def _stop(self) -> None:
        import ray

        actors, cluster = self._actors, self._cluster

        def ask() -> None:
            for actor in actors:
                ray.kill(actor)
            # Also when ray.init was cut short (is_initialized says no): the node it started and a
            # driver half made are undone here, not by the interpreter's exit, where they crashed.
            ray.shutdown()
            if cluster is not None:
                cluster.shutdown()
            # Ray's leftovers are collected later otherwise, and with them went file descriptors
            # that a fork pool started afterwards had been given: book lost its pool workers in 4
            # of 6 runs after ray in one process here, and in none once they are collected now.
            gc.collect()

        self._actors, self._cluster, self._fetched = [], None, {}
        with interrupts.kept():  # ray.shutdown may leave SIGTERM's handler at its default
            end(self.ids, ask)
