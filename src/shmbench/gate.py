"""The regression gate, and the drill that proves its power on this machine.

The gate is ``asv continuous`` on the ``Gate`` benchmarks (``benchmarks/bench_gate.py``): each cell's
warm fill as a ratio to a raw-numpy yardstick timed beside it, so a slow spell of the machine
cancels while a change of ours shows. When that flags cells, the gate runs it once more and fails
only on the cells flagged both times: an unchanged commit was flagged by 1 gate in 8 here (one
cell each time, never the same), while a real slowdown is flagged in most cells every time. The
drill makes two commits in a throw-away clone — one unchanged, one whose worker core does extra
work with bit-identical output — runs the gate on each, and says how many cells each flagged.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Below the slowdown the gate must catch (at 1.10 a true 1.10x would be flagged only half the
#: time), above the noise of its cells: pid's ratio moves by up to 3% between processes at two
#: workers here (a core lost for a spell), random's by 1%; at 1.05 an unchanged commit was
#: flagged in one drill of two.
FACTOR = 1.08
BENCH = r"bench_gate\.Gate"
#: Processes per cell and commit, alternating between the commits: a memory-bound cell's figure
#: moves a few per cent from one process to the next (where its pages land), which samples taken
#: in one process cannot show; two processes each put that spread into the samples themselves.
ROUNDS = 2
_ROW = re.compile(r"^\|\s*(?P<mark>[+\-!x ]?)\s*\|.*\|\s*(?P<ratio>[\d.]+|n/a|~?[\d.]+)\s*\|\s*(?P<name>bench_gate\.\S+.*?)\s*\|$")
# What the drill adds to the worker core: the same values again over part of each block.
_RANDOM = "            np.random.Generator(bits).random(out=view)\n"
_PID = "        view.fill(worker_id)\n"


class DrillError(RuntimeError):
    """The drill could not be set up (no git checkout, a worker core it does not know)."""


def command(base: str, head: str, machine: str | None, factor: float = FACTOR) -> list[str]:
    """One run of the gate: ``asv continuous`` over the Gate cells (exit 1 on a slowdown beyond
    ``factor``); ``machine`` None is asv's own (``asv machine``)."""
    return [sys.executable, "-m", "asv", "continuous", "--factor", str(factor), "--bench", BENCH,
            "--interleave-rounds", "-a", f"rounds={ROUNDS}", *(["--machine", machine] if machine else []),
            "--split", base, head]


@dataclass
class Verdict:
    flagged: int  # cells slower beyond the factor in both runs (in the one run, when it flagged none)
    cells: int
    ratio: float | None
    exit_code: int
    first: int = 0  # cells the first run flagged, confirmed or not


def flagged(table: str) -> set[str]:
    """The cells ``asv continuous`` marked slower ("+") in its ``table``; a cell may be listed twice."""
    return {row["name"] for row in map(_ROW.match, (line.strip() for line in table.splitlines()))
            if row and row["mark"] == "+"}


def _asv(cwd: Path, *args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "asv", *args], cwd=cwd, capture_output=True, text=True, env=env)


def run_gate(repo: Path, base: str, head: str, machine: str | None, env: dict, factor: float = FACTOR,
             show=None) -> Verdict:
    """Run the gate between two commits of ``repo``: ``asv continuous``, and once more if it flagged
    cells, failing on those flagged both times; the cells counted and the median ratio. ``show``
    is given each run's output."""
    done = subprocess.run(command(base, head, machine, factor), cwd=repo, capture_output=True, text=True, env=env)
    if show is not None:
        show(done.stdout + done.stderr)
    first = flagged(done.stdout)
    slower = first
    if first and done.returncode == 1:  # confirm: every cell is measured again, in new processes
        again = subprocess.run(command(base, head, machine, factor), cwd=repo, capture_output=True, text=True,
                               env=env)
        if show is not None:
            show(again.stdout + again.stderr)
        if again.returncode not in (0, 1):
            done = again
        slower = first & flagged(again.stdout)
    compared = _asv(repo, "compare", *(["--machine", machine] if machine else []), "--split", base, head, env=env)
    ratios = []
    for line in compared.stdout.splitlines():
        row = _ROW.match(line.strip())
        if row and re.fullmatch(r"~?[\d.]+", row["ratio"]):
            ratios.append(float(row["ratio"].lstrip("~")))
    if done.returncode not in (0, 1) or not ratios:
        raise DrillError(f"the gate did not run (asv exit {done.returncode}):\n{done.stdout[-2000:]}\n"
                         f"{done.stderr[-2000:]}")
    return Verdict(len(slower), len(ratios), statistics.median(ratios), 1 if slower else 0, len(first))


def pid_refill_share(size: str = "256MiB") -> float:
    """What writing every block once more costs a ``pid`` pass, as a share of it, measured here over
    a matrix of the gate's size. Streaming, as a worker goes: a block written again at once is still
    in the cache, so it costs far less than its first write (sized on one block alone, the drill's
    pid cells slowed by 2-4% instead of 10%)."""
    from .plan import Plan
    from .sizes import parse_size
    from .work import DEFAULT_VALUE, fill_block

    plan = Plan(*parse_size(size))
    matrix = np.empty(plan.shape)
    blocks = [matrix[plan.block(i)] for i in range(plan.n_blocks)]
    plain, again = [], []
    for _ in range(5):
        for times, refill in ((plain, False), (again, True)):
            matrix.fill(DEFAULT_VALUE)
            start = time.perf_counter()
            for view in blocks:
                fill_block(view, "pid", None, 7)
                if refill:
                    view.fill(7)
            times.append(time.perf_counter() - start)
    return max(0.01, statistics.median(again) / statistics.median(plain) - 1.0)


def slow_down(source: str, slowdown: float, pid_refill: float = 0.3) -> str:
    """The worker core's text, redoing part of each block's work with bit-identical output."""
    if _RANDOM not in source or _PID not in source:
        raise DrillError("this worker core is not the one the drill knows how to slow down")
    extra = slowdown - 1.0
    # A random fill's cost is its draws: redo that fraction of them. A pid block is written again,
    # as many times (and a part) as adds ``extra`` of the pass, at ``pid_refill`` a whole write.
    random_part = (f"{_RANDOM}            _again = np.random.PCG64(seed)\n"
                   f"            _again.advance(skip)\n"
                   f"            _flat = view.reshape(-1)\n"
                   f"            np.random.Generator(_again).random(out=_flat[:int(_flat.size * {extra:.4f})])\n")
    refills = extra / pid_refill
    pid_part = (f"{_PID}        for _ in range({int(refills)}):\n"
                f"            view.fill(worker_id)\n"
                f"        view.reshape(-1)[:int(view.size * {refills - int(refills):.4f})].fill(worker_id)\n")
    return source.replace(_RANDOM, random_part).replace(_PID, pid_part)


def drill(repo: str, slowdown: float = 1.10, factor: float = FACTOR, keep: bool = False, gates: int = 1,
          progress=None) -> str:
    """Prove the gate on this machine; returns the one-line verdict. With ``gates`` above 1, each
    commit is gated that many times (alternating), so a false-alarm rate can be counted."""
    top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=repo, capture_output=True, text=True)
    if top.returncode != 0 or not (Path(top.stdout.strip()) / "asv.conf.json").is_file():
        raise DrillError(f"{repo} is not a git checkout of shmbench (with asv.conf.json)")
    where = Path(tempfile.mkdtemp(prefix="shmbench-drill-"))
    clone = where / "repo"
    env = dict(os.environ, HOME=str(where), GIT_AUTHOR_NAME="drill", GIT_AUTHOR_EMAIL="drill@localhost",
               GIT_COMMITTER_NAME="drill", GIT_COMMITTER_EMAIL="drill@localhost")
    calm: list[Verdict] = []
    slow: list[Verdict] = []
    try:
        subprocess.run(["git", "clone", "--quiet", top.stdout.strip(), str(clone)], check=True, env=env)
        conf = json.loads(re.sub(r"^\s*//.*$", "", (clone / "asv.conf.json").read_text(), flags=re.M))
        # Environments are kept between drills (building one takes minutes); results are not.
        conf["env_dir"] = str(Path(os.environ.get("SHMBENCH_CACHE", Path.home() / ".cache" / "shmbench")) / "asv-env")
        (clone / "asv.conf.json").write_text(json.dumps(conf, indent=2))

        def commit(message: str) -> str:
            subprocess.run(["git", "commit", "--quiet", "--allow-empty", "-am", message], cwd=clone, check=True,
                           env=env)
            return subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True,
                                  check=True).stdout.strip()

        base = commit("drill: the configuration of this drill")
        unchanged = commit("drill: unchanged")
        core = clone / "src" / "shmbench" / "work.py"
        core.write_text(slow_down(core.read_text(), slowdown, pid_refill_share()))
        slowed = commit(f"drill: the worker core does {slowdown:.2f}x the work, same output")
        _asv(clone, "machine", "--yes", "--machine", "drill", env=env)
        for turn in range(gates):
            calm.append(run_gate(clone, base, unchanged, "drill", env, factor))
            slow.append(run_gate(clone, unchanged, slowed, "drill", env, factor))
            if progress is not None:
                progress(f"gate {turn + 1} of {gates}: unchanged {calm[-1].flagged} cells flagged (first run "
                         f"{calm[-1].first}), slowed {slow[-1].flagged} of {slow[-1].cells} (first run {slow[-1].first})")
    finally:
        if not keep:
            shutil.rmtree(where, ignore_errors=True)
    return verdict(slowdown, calm, slow)


def verdict(slowdown: float, calm: list[Verdict], slow: list[Verdict]) -> str:
    """The drill's one line: one gate of each commit, or counts over several."""
    ratios = [v.ratio for v in slow if v.ratio]
    measured = f"{statistics.median(ratios):.2f}x" if ratios else "n/a"
    if len(slow) == 1:
        return (f"drill: {slowdown:.2f}x slowdown (measured {measured}) flagged in {slow[0].flagged} of "
                f"{slow[0].cells} cells (gate exit {slow[0].exit_code}); unchanged commit: {calm[0].flagged} "
                f"false alarms ({calm[0].first} cells flagged by its first run)")
    caught = sum(v.exit_code == 1 for v in slow)
    alarms = sum(v.exit_code == 1 for v in calm)
    return (f"drill: {slowdown:.2f}x slowdown (measured {measured}) caught by {caught} of {len(slow)} gates "
            f"({sum(v.flagged for v in slow)} of {sum(v.cells for v in slow)} cells flagged); unchanged commit: "
            f"false alarms in {alarms} of {len(calm)} gates ({sum(v.flagged for v in calm)} cells flagged; "
            f"a first run flagged cells in {sum(v.first > 0 for v in calm)})")
