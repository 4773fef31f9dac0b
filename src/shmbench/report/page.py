"""The parts every page of ``shmbench report --html`` is made of: its style, inline SVG, tables.

No request leaves a page: plots are inline SVG from matplotlib (text drawn as paths), the style is
a few lines of CSS.
"""
from __future__ import annotations

import io
import json
import re
from html import escape

from . import plots

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
.bad { color: #b00020; font-weight: 600; } .good { color: #1b6e20; }
#answer { background: #f6f8fa; border: 1px solid #d0d7de; padding: 0.2em 1.2em 0.6em; border-radius: 6px; }
#answer li { margin: 0.5em 0; } code { font-size: 0.95em; background: #eef; padding: 0 0.2em; }
figure { margin: 1em 0; } figure svg { max-width: 100%; height: auto; }
"""


def svg(fig) -> str:
    plt = plots.pyplot()
    buffer = io.StringIO()
    with plt.rc_context({"svg.fonttype": "path"}):
        fig.savefig(buffer, format="svg")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def page(title: str, body: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def table(headers: list[str], rows: list[list[str]], left: int = 1, cls: str = "") -> str:
    head = "".join(f"<th class=\"{'l' if i < left else ''}\">{escape(h)}</th>" for i, h in enumerate(headers))
    lines = [f"<table class=\"{cls}\"><thead><tr>{head}</tr></thead><tbody>"]
    for row in rows:
        cells = "".join(f"<td class=\"{'l' if i < left else ''}\">{cell}</td>" for i, cell in enumerate(row))
        lines.append(f"<tr>{cells}</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


def machine(machine: dict) -> str:
    rows = []
    for key, value in machine.items():
        if key.endswith("_bytes") and isinstance(value, (int, float)):
            value = f"{value / 2**30:.2f} GiB"
        elif isinstance(value, (list, dict)):
            value = json.dumps(value)
        rows.append([escape(key.replace("_bytes", "")), escape(str(value))])
    return table(["machine", ""], rows, left=2, cls="machine")


def fmt(value, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def inline(text: str) -> str:
    """Escaped text with markdown's `code` spans as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(text))
