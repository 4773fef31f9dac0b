"""The asv suite: it passes ``asv check``, a quick run has no failure, and publish lists it all."""
from __future__ import annotations

import json

import pytest

import shmbench

from asvrun import BENCHMARKS as EXPECTED
from asvrun import asv

pytestmark = pytest.mark.slow


def test_asv_check_passes(tmp_path):
    done = asv(tmp_path, "check", "--python=same")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No problems found" in done.stdout


def test_quick_run_of_the_grid_has_no_failure(asv_recorded):
    tmp, done = asv_recorded
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "failed" not in done.stdout.lower(), done.stdout[-5000:]
    for name in EXPECTED:
        assert name in done.stdout
    # Cells that make no sense are skipped with their reason, not failed.
    assert "serial has no workers to count or start" in done.stdout


def test_publish_lists_every_benchmark_with_its_parameters(asv_recorded):
    tmp, done = asv_recorded
    published = asv(tmp, "publish")
    assert published.returncode == 0, published.stderr
    index = json.loads((tmp / "html" / "index.json").read_text())
    assert EXPECTED <= set(index["benchmarks"])
    fill = index["benchmarks"]["bench_fill.Fill.time_fill"]
    assert fill["param_names"] == ["strategy", "size", "workers", "workload"]
    assert sorted(fill["params"][0]) == sorted(repr(name) for name in shmbench.strategies())  # all benchmarked
    assert index["benchmarks"]["bench_phases.Phases.track_total_pss"]["unit"] == "bytes"
    assert (tmp / "html" / "index.html").exists()
    graphs = list((tmp / "html" / "graphs").rglob("bench_fill.Fill.time_fill.json"))
    assert graphs and json.loads(graphs[0].read_text())
