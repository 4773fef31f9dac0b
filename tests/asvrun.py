"""Running asv on this repository from a test, in a temporary results/HTML tree."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS = {"bench_fill.Fill.time_fill", "bench_fill.Cold.time_cold", "bench_phases.Phases.track_start",
              "bench_phases.Phases.track_allocate", "bench_phases.Phases.track_first_touch",
              "bench_phases.Phases.track_collect", "bench_phases.Phases.track_fill_over_serial",
              "bench_phases.Phases.track_total_pss", "bench_gate.Gate.time_fill_over_yardstick",
              "bench_nodes.Nodes.time_fill", "bench_nodes.Nodes.track_internode_bytes"}


def config(tmp: Path) -> Path:
    """The repository's asv.conf.json, with env, results and HTML moved under ``tmp``."""
    text = (REPO / "asv.conf.json").read_text()
    conf = json.loads(re.sub(r"^\s*//.*$", "", text, flags=re.M))
    conf.update(repo=str(REPO), benchmark_dir=str(REPO / "benchmarks"), env_dir=str(tmp / "env"),
                results_dir=str(tmp / "results"), html_dir=str(tmp / "html"))
    path = tmp / "asv.conf.json"
    path.write_text(json.dumps(conf))
    return path


def env(tmp: Path, sizes: str = "1MiB", **extra: str) -> dict:
    return dict(os.environ, HOME=str(tmp), SHMBENCH_ASV_SIZES=sizes, SHMBENCH_ASV_NODES_SIZE=sizes.split(",")[0],
                **extra)


def asv(tmp: Path, *args: str, sizes: str = "1MiB", **extra: str) -> subprocess.CompletedProcess:
    """asv with this repository's suite; ``extra`` environment variables (``SHMBENCH_ASV_...``) too."""
    return subprocess.run([sys.executable, "-m", "asv", "--config", str(config(tmp)), *args], cwd=tmp,
                          capture_output=True, text=True, env=env(tmp, sizes, **extra), timeout=900)


def record(tmp: Path) -> subprocess.CompletedProcess:
    """A quick run of the whole grid at a tiny size, recorded against HEAD."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
    machine = asv(tmp, "machine", "--yes", "--machine", "shmbench-ci")
    assert machine.returncode == 0, machine.stderr
    return asv(tmp, "run", "--python=same", "--quick", "--show-stderr", "--machine", "shmbench-ci",
               "--set-commit-hash", head.stdout.strip())
