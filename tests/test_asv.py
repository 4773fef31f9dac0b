"""The asv suite: it passes ``asv check``, a quick run has no failure, and publish lists it all."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import shmbench

REPO = Path(__file__).resolve().parent.parent
EXPECTED = {"bench_fill.Fill.time_fill", "bench_fill.Cold.time_cold", "bench_phases.Phases.track_start",
            "bench_phases.Phases.track_allocate", "bench_phases.Phases.track_first_touch",
            "bench_phases.Phases.track_collect", "bench_phases.Phases.track_fill_over_serial",
            "bench_phases.Phases.track_total_pss"}


def _config(tmp: Path) -> Path:
    text = (REPO / "asv.conf.json").read_text()
    conf = json.loads(re.sub(r"^\s*//.*$", "", text, flags=re.M))
    conf.update(repo=str(REPO), benchmark_dir=str(REPO / "benchmarks"), env_dir=str(tmp / "env"),
                results_dir=str(tmp / "results"), html_dir=str(tmp / "html"))
    path = tmp / "asv.conf.json"
    path.write_text(json.dumps(conf))
    return path


def _asv(tmp: Path, *args: str, sizes: str = "1MiB") -> subprocess.CompletedProcess:
    env = dict(os.environ, HOME=str(tmp), SHMBENCH_ASV_SIZES=sizes)
    return subprocess.run([sys.executable, "-m", "asv", "--config", str(_config(tmp)), *args], cwd=tmp,
                          capture_output=True, text=True, env=env, timeout=900)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A quick run of the whole grid at a tiny size, recorded against HEAD."""
    tmp = tmp_path_factory.mktemp("asv")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
    machine = _asv(tmp, "machine", "--yes", "--machine", "shmbench-ci")
    assert machine.returncode == 0, machine.stderr
    done = _asv(tmp, "run", "--python=same", "--quick", "--show-stderr", "--machine", "shmbench-ci",
                "--set-commit-hash", head.stdout.strip())
    return tmp, done


def test_asv_check_passes(tmp_path):
    done = _asv(tmp_path, "check", "--python=same")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No problems found" in done.stdout


def test_quick_run_of_the_grid_has_no_failure(recorded):
    tmp, done = recorded
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "failed" not in done.stdout.lower(), done.stdout[-5000:]
    for name in EXPECTED:
        assert name in done.stdout
    # Cells that make no sense are skipped with their reason, not failed.
    assert "serial has no workers to count or start" in done.stdout


def test_publish_lists_every_benchmark_with_its_parameters(recorded):
    tmp, done = recorded
    published = _asv(tmp, "publish")
    assert published.returncode == 0, published.stderr
    index = json.loads((tmp / "html" / "index.json").read_text())
    assert EXPECTED <= set(index["benchmarks"])
    fill = index["benchmarks"]["bench_fill.Fill.time_fill"]
    assert fill["param_names"] == ["strategy", "size", "workers", "workload"]
    assert fill["params"][0] == [repr(name) for name in shmbench.strategies()]
    assert index["benchmarks"]["bench_phases.Phases.track_total_pss"]["unit"] == "bytes"
    assert (tmp / "html" / "index.html").exists()
    graphs = list((tmp / "html" / "graphs").rglob("bench_fill.Fill.time_fill.json"))
    assert graphs and json.loads(graphs[0].read_text())
