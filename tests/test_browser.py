"""Real-browser checks in headless Chromium: asv's HTML works offline, the report renders alone.

Pages are served from 127.0.0.1; every request elsewhere is refused and counted. Screenshots
land in the test's temporary directory.
"""
from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from asvrun import BENCHMARKS, config, env

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.slow, pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@contextmanager
def served(directory: Path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=FLAGS, viewport={"width": 1280, "height": 900})
        yield context
        context.close()


class Watched:
    """A page whose requests beyond ``allowed`` are refused and whose console errors are kept."""

    def __init__(self, context, allowed: str) -> None:
        self.page = context.new_page()
        self.outside: list[str] = []
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.route("**/*", self._route)
        self.allowed = allowed

    def _route(self, route) -> None:
        url = route.request.url
        self.requests.append(url)
        if url.startswith(self.allowed) or url.startswith("data:"):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()


def test_offline_asv_html_shows_every_benchmark_and_draws_a_graph(asv_recorded, browser, tmp_path):
    tmp, done = asv_recorded
    assert done.returncode == 0, done.stderr[-2000:]
    published = subprocess.run([sys.executable, "-m", "shmbench", "publish", "--config", str(config(tmp))],
                               capture_output=True, text=True, env=env(tmp), timeout=600)
    assert published.returncode == 0, published.stderr
    assert "served from" in published.stderr, published.stderr
    html = tmp / "html"
    assert "https://" not in "".join(
        line for line in (html / "index.html").read_text().splitlines() if "<script" in line or "<link" in line)

    with served(html) as root:
        watched = Watched(browser, root)
        page = watched.page
        page.goto(root + "index.html")
        page.wait_for_selector(".benchmark-container", timeout=30_000)
        names = page.locator(".benchmark-container").all_inner_texts()
        text = page.inner_text("body")
        for name in BENCHMARKS:
            assert name.split(".", 1)[1] in text, name
        assert len(names) >= len(BENCHMARKS)
        page.screenshot(path=str(tmp_path / "asv-grid.png"))

        page.goto(root + "index.html#bench_fill.Fill.time_fill")
        page.wait_for_selector("#main-graph canvas.flot-base", timeout=30_000)
        page.wait_for_timeout(500)
        painted = page.evaluate("""() => {
            const c = document.querySelector('#main-graph canvas.flot-base');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
            return n; }""")
        assert painted > 1000, "the graph canvas is blank"
        page.screenshot(path=str(tmp_path / "asv-graph.png"))
        assert watched.outside == [], watched.outside
        assert watched.errors == [], watched.errors
        assert "failed to load" not in page.inner_text("body")


@pytest.fixture(scope="module")
def run_json(tmp_path_factory):
    path = tmp_path_factory.mktemp("run") / "run.json"
    done = subprocess.run([sys.executable, "-m", "shmbench", "run", "--strategy", "serial", "--strategy",
                           "shared_memory", "--strategy", "pickled", "--workers", "1", "--workers", "2",
                           "--size", "256x4096", "--repeat", "1", "--json", str(path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return path


def _open_report(browser, path: Path, tmp_path: Path, shot: str):
    with served(path.parent) as root:
        watched = Watched(browser, root + path.name)
        watched.page.goto(root + path.name)
        watched.page.wait_for_load_state("load")
        watched.page.screenshot(path=str(tmp_path / shot), full_page=True)
        return watched


def test_run_report_renders_alone_with_every_table_and_plot(browser, run_json, tmp_path):
    page_path = tmp_path / "report.html"
    done = subprocess.run([sys.executable, "-m", "shmbench", "report", str(run_json), "--html", str(page_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    watched = _open_report(browser, page_path, tmp_path, "report.png")
    page = watched.page
    assert watched.requests == [watched.allowed], watched.requests  # the file itself, nothing else
    assert watched.outside == [] and watched.errors == []
    assert page.locator("table.machine").count() == 1
    # The answer comes first, and names strategies the table shows verified.
    assert page.locator("#answer").bounding_box()["y"] < page.locator("table.comparison").bounding_box()["y"]
    verified = {row.locator("td").first.inner_text() for row in page.locator("table.comparison tbody tr").all()
                if row.locator("td").last.inner_text() == "yes"}
    named = set(page.locator("#answer li code").all_inner_texts())
    assert named and named <= verified | {"pickled", "book"}, (named, verified)
    rows = page.locator("table.comparison tbody tr")
    assert rows.count() == len(json.loads(run_json.read_text())["results"]) == 5
    for figure in ("scaling", "phases"):
        svg = page.locator(f"figure.{figure} svg")
        assert svg.count() == 1 and svg.locator("path").count() > 20
        box = svg.bounding_box()
        assert box["width"] > 300 and box["height"] > 200


def test_asv_results_report_renders_alone_with_history(browser, asv_recorded, tmp_path):
    tmp, done = asv_recorded
    page_path = tmp_path / "asv-report.html"
    made = subprocess.run([sys.executable, "-m", "shmbench", "report", str(tmp / "results"), "--html",
                           str(page_path)], capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    watched = _open_report(browser, page_path, tmp_path, "asv-report.png")
    page = watched.page
    assert watched.requests == [watched.allowed] and watched.errors == []
    headings = page.locator("h2.benchmark").all_inner_texts()
    for name in BENCHMARKS:
        assert any(h.startswith(name) for h in headings), name
    assert page.locator("figure.history svg").count() == len(BENCHMARKS)
    assert page.locator("#gate").bounding_box()["y"] < page.locator("h2.benchmark").first.bounding_box()["y"]
    assert page.locator("table.history-table tbody tr").count() > 50
