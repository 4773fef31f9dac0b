"""Dask's distributed scheduler on this node: a ``LocalCluster`` of W worker processes, one thread each.

Dask shares no memory between its workers, even on one host (a task gets copies; shared memory is
still an open proposal, dask/distributed#4497). Each worker keeps the blocks of its share in memory
of its own between passes, as a Ray actor does: the first task pinned to the worker opens its seat,
a result Dask keeps there while our client holds it, and each command's task takes it as its input,
so a warm pass writes pages it has already faulted in. The client is
made as Dask documents for a client outside the cluster's network path, with
``direct_to_workers=True``: what a worker returns comes straight to the parent over Dask's comms
(serialized without a pickle copy), not relayed through the scheduler. An input is scattered
once per pass straight to the workers, each getting only the rows it reads (``rowsum``), or the
whole input where a kernel's contract gives it that. ``start`` is the cluster starting W
processes; close stops them and removes the cluster's scratch directory.
"""
from __future__ import annotations

import itertools
import logging
import os
import shutil
import tempfile
import threading
import time
import traceback

import numpy as np
import psutil

from .base import (SILENT_SECONDS, OnPart, Runtime, WorkerDiedError, become_worker, deliver, died, end, failed,
                   first_dead, ignore)
from .dask_tasks import open_seat, run_task
from .seat import Command

_POLL_SECONDS = 0.5
#: A running Dask scheduler to join (``tcp://host:port`` or a scheduler file) instead of starting one.
ADDRESS_ENV = "SHMBENCH_DASK_ADDRESS"
#: How long joining may take before the cluster is called unreachable.
CONNECT_SECONDS = 10


def _connect(address: str):
    """A client of the scheduler at ``address`` (a scheduler file is read as Dask reads it)."""
    from distributed import Client

    if os.path.isfile(address):
        return Client(scheduler_file=address, direct_to_workers=True, timeout=CONNECT_SECONDS)
    return Client(address, direct_to_workers=True, timeout=CONNECT_SECONDS)


def probe(address: str, workers: int) -> str | None:
    """Why the cluster at ``address`` cannot take ``workers`` workers (one task each, one per
    worker process), or None; asked before anything runs."""
    try:
        with _connect(address) as client:
            found = len(client.scheduler_info()["workers"])
    except (OSError, TimeoutError) as error:
        return f"cannot reach the Dask scheduler at {address}: {error}"
    if found < workers:
        return f"the Dask cluster at {address} has {found} workers, fewer than the {workers} asked for"
    return None


def _spread(workers: dict[str, dict], count: int) -> list[str]:
    """``count`` worker addresses, taken host by host in turn, so the shares spread over the nodes."""
    by_host: dict[str, list[str]] = {}
    for address, info in sorted(workers.items()):
        by_host.setdefault(info.get("host") or address, []).append(address)
    order = [address for turn in itertools.zip_longest(*by_host.values()) for address in turn if address]
    return order[:count]


def _versions() -> str:
    import dask
    import distributed

    return f"dask {dask.__version__}, distributed {distributed.__version__}"


def _restarted(child: psutil.Process) -> bool:
    """A worker process a nanny started (spawned), not multiprocessing's own helpers (a resource
    tracker, a forkserver), which live as long as the parent."""
    try:
        return "spawn_main" in " ".join(child.cmdline())
    except psutil.Error:
        return False


class DaskWorkers(Runtime):
    launcher = "dask"

    def start(self) -> list[int]:
        self._client = self._cluster = None
        self._seats: list = []  # per worker, the future of its seat: its rows, kept on it between passes
        self._joined = os.environ.get(ADDRESS_ENV, "").strip() or None
        if self._joined:
            return self._join(self._joined)
        import dask
        from distributed import Client, LocalCluster

        before = {child.pid for child in psutil.Process().children()}
        scratch = tempfile.mkdtemp(prefix="shmbench-dask-")
        janitor = self.hire_janitor(paths=[scratch])  # the workers exit on their own; their space stays
        self.made(shutil.rmtree, scratch, ignore_errors=True)
        # A worker that dies fails its task at once (Dask would retry it elsewhere three times);
        # no memory limit: the nanny would pause, spill or restart a worker holding a large share.
        self.entered(dask.config.set({"distributed.scheduler.allowed-failures": 0, "temporary-directory": scratch,
                                      "distributed.worker.daemon": True}))
        self.made(self._stop, before, janitor.pid)  # before the cluster: one cut short is closed too
        built: dict = {}
        done = threading.Event()

        def build() -> None:
            try:
                built["cluster"] = LocalCluster(n_workers=len(self.shares), threads_per_worker=1, processes=True,
                                                dashboard_address=None, memory_limit=0, silence_logs=logging.ERROR)
            except BaseException as error:
                built["error"] = error
            finally:
                done.set()

        # Built on a thread of its own: an interrupt (Ctrl-C, SIGTERM) reaches the main thread only,
        # so the cluster is never left half made, out of close's reach. Waited for on an event, not
        # with ``join``: Python 3.11's join, cut by an interrupt, marks a running thread as ended,
        # and the next join returned at once while the cluster was still starting (1 in 6 here).
        threading.Thread(target=build, name="shmbench-dask-start", daemon=True).start()
        try:
            while not done.wait(_POLL_SECONDS):
                pass
        finally:
            done.wait()
            self._cluster = built.get("cluster")
        if "error" in built:  # "Nanny failed to start": a worker process ended while starting
            raise died(None, None, "start", how=str(built["error"])) from built["error"]
        # A worker that dies fails its cell, so its nanny (an object in this process) must not start
        # another: a new worker is born at OOM score 0 and smaller than this process, and with a
        # killed worker's memory not yet freed the OOM killer once took this process instead.
        for nanny in self._cluster.workers.values():
            nanny.close_gracefully(reason="shmbench: a worker that dies is not restarted")
        # Dask's documented way for a client outside the cluster's network path: results and
        # scattered data travel between the client and the workers directly, not through the scheduler.
        self._client = Client(self._cluster, direct_to_workers=True)
        # On each worker's event loop, its main thread (signals can be set there only): a killed
        # parent must not leave Dask's workers running.
        self._client.run(become_worker, os.getpid())
        pids = self._client.run(os.getpid)  # {address: pid}, one per worker process
        self._addresses = sorted(pids)
        self.ids = [pids[address] for address in self._addresses]
        self.settings = {"cluster": f"LocalCluster(n_workers={len(self.shares)}, threads_per_worker=1, processes=True, "
                                    "memory_limit=0, dashboard_address=None)",
                         "client": "Client(cluster, direct_to_workers=True)",
                         "tasks": "client.submit(..., workers=[address], pure=False), one per worker; "
                                  "allowed-failures 0; blocks kept on the worker between passes",
                         "input": "client.scatter(rows, workers=[address], hash=False) each pass: the rows a "
                                  "worker reads (a kernel: the whole input)",
                         "versions": _versions()}
        return self.ids

    def _join(self, address: str) -> list[int]:
        """Use the workers of a cluster the user runs: never started, stopped or reconfigured here,
        and no parent watch on them (a killed client leaves them to Dask's own rules: the scheduler
        forgets a client's futures when its connection drops)."""
        self._last: dict[str, tuple] = {}  # worker -> (its last heartbeat's time, when we saw it change)
        self._client = _connect(address)
        self.made(self._leave, self._client)
        workers = self._client.scheduler_info()["workers"]
        if len(workers) < len(self.shares):
            raise ValueError(f"the Dask cluster at {address} has {len(workers)} workers, fewer than {len(self.shares)}")
        self._addresses = _spread(workers, len(self.shares))
        pids = self._client.run(os.getpid, workers=self._addresses)
        self.ids = [pids[a] for a in self._addresses]
        self._hosts = [workers[a].get("host") or a for a in self._addresses]
        hosts = sorted(set(self._hosts))
        mine = {address.address for addresses in psutil.net_if_addrs().values() for address in addresses}
        self._here = [workers[a].get("host") in mine | {"localhost"} for a in self._addresses]
        here = [a for a, local in zip(self._addresses, self._here) if local]
        self.settings = {"cluster": f"joined {address}: {len(workers)} workers, ours on {len(hosts)} host(s) "
                                    f"({', '.join(map(str, hosts))}); never started or stopped by shmbench",
                         "client": "Client(address, direct_to_workers=True)",
                         "tasks": "client.submit(..., workers=[address], pure=False), one per worker; blocks kept "
                                  "on the worker between passes, dropped when we leave",
                         "memory": f"seen for the {len(here)} worker(s) on this host, not for the others",
                         "versions": _versions()}
        return self.ids

    def on_this_host(self, slot: int) -> bool:
        return self._here[slot] if getattr(self, "_joined", None) else True

    def _check(self, what: str) -> None:
        if getattr(self, "_joined", None):  # the scheduler, not this host's process table, knows them
            known = self._client.scheduler_info()["workers"]
            slot = next((i for i, a in enumerate(self._addresses) if a not in known), None)
            if slot is not None:
                raise died(slot, self.ids[slot], what, self.where(slot),
                           how=f"the scheduler lost it: its process on host {self._hosts[slot]} ended")
            self._heard(known, what)
            return
        slot = first_dead(self.ids)
        if slot is not None:
            raise died(slot, self.ids[slot], what, self.where(slot))

    def _heard(self, known: dict, what: str) -> None:
        """A worker of a joined cluster whose heartbeats stopped reaching the scheduler (a cut link,
        a host down) is lost: the scheduler would wait minutes before it forgets it (its TTL)."""
        now = time.monotonic()
        for slot, address in enumerate(self._addresses):
            seen = known[address].get("last_seen")
            if self._last.get(address, (None,))[0] != seen:
                self._last[address] = (seen, now)
            elif now - self._last[address][1] > SILENT_SECONDS:
                raise died(slot, self.ids[slot], what, self.where(slot),
                           how=f"not heard from in {SILENT_SECONDS:.0f} s: host {self._hosts[slot]} unreachable")

    def run(self, command: Command, on_part: OnPart = ignore, source: np.ndarray | None = None) -> list[int]:
        # A task pinned to a worker that died waits for it for ever (its nanny starts another, at
        # another address): ask the process table before, and while waiting.
        self._check(command.name)
        client = self._client
        whole = source is not None and command.work.whole_input
        if not self._seats:  # opened in the first command's time, as the other runtimes open theirs
            self._seats = [client.submit(open_seat, attachment, self.plan, rows, workers=[address],
                                         allow_other_workers=False, pure=False)
                           for address, attachment, rows in zip(self._addresses, self.attachments, self.shares)]
        futures, given = [], []
        for slot, (address, seat, rows) in enumerate(zip(self._addresses, self._seats, self.shares)):
            part = None
            if source is not None:
                part = client.scatter(source if whole else source[rows.start:rows.stop], workers=[address],
                                      hash=False)
                given.append(part)
            futures.append(client.submit(run_task, seat, command, part, 0 if whole else rows.start,
                                         workers=[address], allow_other_workers=False, pure=False))
        try:
            answers = self._gather(futures, command.name)
        except WorkerDiedError:
            raise
        except Exception as error:
            self._check(command.name)  # the task failed because its worker died
            raise failed(command.name, "".join(traceback.format_exception(error))) from error
        finally:
            del futures, given
        deliver(on_part, ((slot, parts) for slot, (_, parts) in enumerate(answers)))
        return [faults for faults, _ in answers]

    def _gather(self, futures: list, what: str) -> list:
        """The answers, fetched on a thread while the process table is asked every poll: a result
        lives on its worker until fetched, and one whose worker died after its task had finished is
        lost; Dask would wait for ever to compute it again on a worker that never comes back. (A
        fetch with a timeout starts over at each try: a large answer never arrived that way.)"""
        box: dict = {}
        fetched = threading.Event()

        def fetch() -> None:
            try:
                box["answers"] = self._client.gather(futures)
            except BaseException as error:  # handed to the caller's thread
                box["error"] = error
            finally:
                fetched.set()

        threading.Thread(target=fetch, name="shmbench-dask-gather", daemon=True).start()
        while not fetched.wait(_POLL_SECONDS):
            self._check(what)  # a fetch still waiting is cancelled when the client closes
        if "error" in box:
            raise box["error"]
        return box["answers"]

    def internode(self, command: Command, on_part: OnPart = ignore) -> tuple[list[int], int, str]:
        """Every worker is a node of its own for data: all its rows travel to the parent."""
        moved = 0

        def counted(slot: int, kind: str, where: int, part: np.ndarray) -> None:
            nonlocal moved
            moved += part.nbytes
            on_part(slot, kind, where, part)

        faults = self.run(command, counted)
        return faults, moved, "computed: the blocks the workers sent the parent"

    def _leave(self, client) -> None:
        """Leave a cluster the run joined: our seats and results go with our client (Dask releases
        a client's futures when it closes), the cluster stays as it was."""
        self._seats = []
        client.close()

    def _stop(self, before: set[int], janitor: int) -> None:
        client, cluster, self._client, self._cluster = self._client, self._cluster, None, None
        self._seats = []

        def ask() -> None:
            try:
                if client is not None:
                    client.close()
            finally:
                # Also when the client's close fails (a pass cut short by Ctrl-C): a cluster left
                # open was closed again by Dask's atexit hook, which failed with a traceback.
                if cluster is not None:
                    cluster.close()

        end(self.ids, ask)
        # A worker the nanny started again after one died is none of ``ids``: left running, it
        # wrote its scratch space again after we removed it.
        end([child.pid for child in psutil.Process().children() if child.pid not in before
             and child.pid != janitor and _restarted(child)])
