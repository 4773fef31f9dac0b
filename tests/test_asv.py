"""The asv suite: it passes ``asv check``, a quick run has no failure, and publish lists it all."""
from __future__ import annotations

import itertools
import json
import shutil

import pytest

import shmbench
from shmbench.sizes import parse_size

from asvrun import BENCHMARKS as EXPECTED
from asvrun import REPO, asv

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


def test_nodes_cells_run_for_the_contenders_that_cross_nodes_and_count_the_bytes(asv_recorded):
    tmp, done = asv_recorded
    (first,) = [p for p in (tmp / "results").rglob("*.json") if p.name not in ("benchmarks.json", "machine.json")]
    data = json.loads(first.read_text())
    column = data["result_columns"].index("result")
    bench = json.loads((tmp / "results" / "benchmarks.json").read_text())["bench_nodes.Nodes.track_internode_bytes"]
    cells = dict(zip(itertools.product(*bench["params"]),
                     data["results"]["bench_nodes.Nodes.track_internode_bytes"][column]))
    by = {(strategy.strip("'"), int(nodes)): value for (strategy, _, _, nodes), value in cells.items()}
    nbytes = shmbench.Plan(*parse_size("1MiB")).nbytes
    assert by[("mpi", 1)] == 0 and 0 < by[("mpi", 2)] < nbytes
    assert by[("dask", 1)] == by[("dask", 2)] == nbytes  # nothing shared: every row crosses
    assert by[("shared_memory", 2)] is None or by[("shared_memory", 2)] != by[("shared_memory", 2)]  # skipped
    assert "shared_memory runs on one node" in done.stdout


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


def test_asv_report_opens_with_what_moved_between_the_last_two_commits(asv_recorded, tmp_path):
    from shmbench.report.html import from_asv

    tmp, done = asv_recorded
    results = tmp_path / "results"
    shutil.copytree(tmp / "results", results)
    (first,) = [p for p in results.rglob("*.json") if p.name not in ("benchmarks.json", "machine.json")]
    data = json.loads(first.read_text())
    assert "No cell moved" not in from_asv(results) and "Only one commit" in from_asv(results)
    # A next commit on which one cell of time_fill takes twice as long.
    column = data["result_columns"].index("result")
    cells = data["results"]["bench_fill.Fill.time_fill"][column]
    index = next(i for i, v in enumerate(cells) if isinstance(v, float) and v == v)
    cells[index] *= 2
    data["commit_hash"], data["date"] = "f" * 40, data["date"] + 60_000
    (first.parent / ("f" * 8 + "-" + first.name.split("-", 1)[1])).write_text(json.dumps(data))
    page = from_asv(results)
    gate = page[page.index('id="gate"'):page.index("</section>", page.index('id="gate"'))]
    assert gate.count("<tr>") == 2  # the header and the one cell that moved
    assert "bench_fill.Fill.time_fill" in gate and "2.000×" in gate and "slower" in gate
    assert page.index('id="gate"') < page.index('class="benchmark"')


def test_a_kernel_of_the_users_is_timed_in_every_strategy_and_dtype_asked_for(tmp_path):
    kernel = f"{REPO / 'docs' / 'examples' / 'smooth.py'}:smooth"
    assert asv(tmp_path, "machine", "--yes", "--machine", "shmbench-ci").returncode == 0
    run = ("run", "--python=same", "--quick", "--show-stderr", "--machine", "shmbench-ci",
           "--bench", r"bench_fill\.Kernel")
    done = asv(tmp_path, *run, SHMBENCH_ASV_WORKLOAD=kernel, SHMBENCH_ASV_DTYPES="float32", SHMBENCH_ASV_WORKERS="2")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "failed" not in done.stdout.lower(), done.stdout[-5000:]
    table = done.stdout[done.stdout.index("bench_fill.Kernel.time_fill"):]
    for strategy in ("serial", "shared_memory", "pickled", "book"):
        assert strategy in table
    assert "float32" in table and "float64" in table
    # Without the variable: one skipped cell that says how to ask.
    bare = asv(tmp_path, *run)
    assert bare.returncode == 0 and "SHMBENCH_ASV_WORKLOAD=module:function" in bare.stdout + bare.stderr
