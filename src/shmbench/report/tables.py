"""The tables of results in the README and docs/, rendered from committed JSON.

Each table sits in its page between [cog](https://nedbatchelder.com/code/cog/) markers that call
one of these functions; ``shmbench tables`` writes them again, ``shmbench tables --check`` (and a
test) fails when a committed table differs from what its JSON renders, so none goes stale.
"""
from __future__ import annotations

import glob
import os
from collections.abc import Sequence

from ..sizes import describe
from ..strategies import REFERENCE, REGISTRY, peer_for
from .answer import answers
from .output import markdown, read_json

#: The pages that hold generated tables, relative to the project's root.
PAGES = ("README.md", "docs/*.md")


def _speedup(r: dict | None) -> str:
    if r is None:
        return "–"
    if r.get("error"):
        return "failed"
    if r.get("speedup") is None:
        return "–"
    text = f"{r['speedup']:.2f}×"
    if r["strategy"] == REFERENCE:
        return text + " (the reference)"
    if r.get("speedup_ci"):
        low, high = r["speedup_ci"]
        text += f" ({low:.2f}–{high:.2f})"
    if r.get("disturbed"):
        return text + ", disturbed"
    if not r.get("stable"):
        text += ", unstable"
    if r.get("behind"):
        text += ", behind"
    return text


def _records(path: str) -> list[dict]:
    return read_json(path)["results"]


def run_line(path: str) -> str:
    """When and how the run was made, and what it took."""
    doc = read_json(path)
    run = doc.get("run") or {}
    machine = doc["machine"]
    sizes = sorted({describe(r["rows"], r["cols"], r.get("dtype") or "float64") for r in doc["results"]})
    took = f", {run['seconds']:.0f} s" if run.get("seconds") else ""
    command = f"`{run['command']}`" if run.get("command") else "a comparison"
    return (f"{command} on {doc.get('created', 'an unknown date')[:10]}{took}: "
            f"{machine.get('cpu_model')}, {machine.get('usable_cores') or machine.get('logical_cores')} usable cores, "
            f"Python {machine.get('python')}, numpy {machine.get('numpy')}; {', '.join(sizes)}.\n")


def headlines(path: str) -> str:
    """Each answer's one short line, as a list."""
    return "".join(f"- **{a.title}:** {a.headline}\n" for a in answers(_records(path)))


def results(path: str, workload: str = "random") -> str:
    """One row per strategy ``shmbench list`` knows: its speed-up over serial at each worker count
    of the run (95% interval), and the memory all its processes held at the most workers."""
    records = [r for r in _records(path) if r["workload"] == workload]
    counts = sorted({r["workers"] for r in records})
    most = counts[-1] if counts else 1
    header = ("| strategy | shares memory | " + " | ".join(f"{w} worker{'s' if w > 1 else ''}: speed-up (95% CI)"
                                                         for w in counts)
              + f" | memory × matrix ({most} workers) | verified |")
    lines = [header, "|---|---|" + "--:|" * len(counts) + "--:|---|"]
    for name, cls in REGISTRY.items():
        mine = {r["workers"]: r for r in records if r["strategy"] == name}
        widest = mine.get(most) or (mine[max(mine)] if mine else None)
        if not mine:
            cells = ["not in this run"] * len(counts)
        else:
            cells = [_speedup(mine.get(w)) for w in counts]
        memory = f"{widest['pss_multiple']:.2f}" if widest and widest.get("pss_multiple") else "–"
        verified = "–" if not mine else "yes" if all(r.get("verified") for r in mine.values()) else "no"
        lines.append(f"| `{name}` | {'yes' if cls.traits.shares_memory else 'no'} | " + " | ".join(cells)
                     + f" | {memory} | {verified} |")
    return "\n".join(lines) + "\n"


def peers(path: str) -> str:
    """Each engine contender's warm time beside its peer's (the engine's documented way), per size."""
    records = _records(path)

    def size(r: dict) -> tuple:
        return r["rows"], r["cols"], r.get("dtype") or "float64"

    sizes = list(dict.fromkeys(size(r) for r in records))
    by = {(r["strategy"], size(r)): r for r in records}
    contenders = [r["strategy"] for r in records if r["strategy"] in REGISTRY and peer_for(r["strategy"])]
    header = "| contender | " + " | ".join(f"{describe(*s)}: warm s | its peer | ratio" for s in sizes) + " |"
    lines = [header, "|---|" + "--:|--:|--:|" * len(sizes)]
    for name in dict.fromkeys(contenders):
        cells: list[str] = []
        for each in sizes:
            mine, peer = by.get((name, each)), by.get((peer_for(name), each))
            if not (mine and peer and mine.get("warm_seconds") and peer.get("warm_seconds")):
                cells += ["–", "–", "–"]
                continue
            cells += [f"{mine['warm_seconds']:.3f}", f"{peer['warm_seconds']:.3f}",
                      f"{mine['warm_seconds'] / peer['warm_seconds']:.2f}"]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def cells(path: str, columns: Sequence[str] = ("workers", "nodes", "warm", "speedup", "internode", "bytes",
                                               "memory")) -> str:
    """Every record of a run, one row each, with the columns asked for."""
    heads = {"workers": "workers", "nodes": "nodes", "warm": "warm s (95% CI)", "speedup": "speed-up (95% CI)",
             "internode": "`internode`, first pass", "bytes": "bytes between nodes", "memory": "PSS × matrix",
             "dtype": "dtype", "engine_bytes": "the engine's figure, B", "wire": "on the link, B"}

    def cell(r: dict, column: str) -> str:
        if column == "warm":
            if r.get("warm_seconds") is None:
                return r.get("error") or "–"
            low, high = r.get("warm_ci") or (r["warm_seconds"], r["warm_seconds"])
            return f"{r['warm_seconds']:.3f} ({low:.3f}–{high:.3f})"
        if column == "speedup":
            return _speedup(r)
        if column == "internode":
            return f"{r['phases'].get('internode', 0.0):.2f} s"
        if column in ("bytes", "engine_bytes"):  # in MiB, or to the byte beside the link's figure
            moved = r.get("internode_bytes") or 0
            how = (r.get("internode_bytes_how") or "measured").split(":")[0]  # measured or computed
            if not moved:
                return "0"
            return f"{moved / 2**20:.0f} MiB ({how})" if column == "bytes" else f"{moved:,} ({how})"
        if column == "wire":  # read from this host's links: only where some workers ran elsewhere
            return "–" if r.get("internode_wire_bytes") is None else f"{r['internode_wire_bytes']:,}"
        if column == "memory":
            return f"{r['pss_multiple']:.2f}" if r.get("pss_multiple") else "–"
        return str(r.get(column) or "–")

    lines = ["| strategy | " + " | ".join(heads[c] for c in columns) + " |", "|---|" + "--:|" * len(columns)]
    for r in _records(path):
        lines.append(f"| `{r['strategy']}` | " + " | ".join(cell(r, c) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def report(path: str) -> str:
    """The whole markdown report of a run, as ``shmbench report`` writes it."""
    return markdown(read_json(path))


def pages(root: str = ".") -> list[str]:
    """The pages under ``root`` that hold generated tables."""
    found: list[str] = []
    for pattern in PAGES:
        for page in sorted(glob.glob(os.path.join(root, pattern))):
            with open(page) as stream:
                if "[[[cog" in stream.read():
                    found.append(page)
    return found
