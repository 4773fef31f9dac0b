"""What a person reads: the table, JSON and CSV, the markdown summary and plots (``output``), one
self-contained HTML page (``html``), and asv's HTML made to work offline (``publish``)."""
from __future__ import annotations

from .output import CSV_FIELDS, SCHEMA_VERSION, document, markdown, plot, print_table, read_json, table, write_csv, write_json
from .plots import phases_figure, scaling_figure

__all__ = ["CSV_FIELDS", "SCHEMA_VERSION", "document", "markdown", "phases_figure", "plot", "print_table", "read_json",
           "scaling_figure", "table", "write_csv", "write_json"]
