"""``shmbench report --html``: one self-contained HTML file, from a run's JSON (``run_page``) or
from asv's results (``asv_page``), made of the parts in ``page``."""
from __future__ import annotations

from pathlib import Path

from . import output as report
from .._system.outputs import atomic
from .asv_page import from_asv
from .run_page import from_run

__all__ = ["from_asv", "from_run", "write"]


def write(source: str, output: str) -> None:
    """Write the page for ``source``: a run's JSON file or an asv results directory."""
    page = from_asv(source) if Path(source).is_dir() else from_run(report.read_json(source))
    with atomic(output) as stream:
        stream.write(page)
