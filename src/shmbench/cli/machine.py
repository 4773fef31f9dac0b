"""``shmbench list`` (the strategies) and ``shmbench sysinfo`` (the machine)."""
from __future__ import annotations

import argparse

from rich.markup import escape
from rich.table import Table

from .._system import sysinfo
from ..strategies import REGISTRY

from .common import console


def cmd_list(args: argparse.Namespace) -> int:
    table = Table("strategy", "available", "workers", "shares memory", "across nodes (--nodes)", "what it is")
    for name, cls in REGISTRY.items():
        reason, traits = cls.unavailable_reason(), cls.traits
        if not traits.processes:
            workers = "none" if not traits.parallel else traits.launcher
        else:
            workers = f"processes ({traits.launcher}: {', '.join(traits.start_methods)})" if traits.start_methods \
                else f"processes ({traits.launcher})"
        role = {"reference": "the reference: every speed-up is over it. "}.get(traits.role, "")
        if traits.label:
            role = f"a baseline: {traits.label}. "
        table.add_row(name, "yes" if reason is None else f"no: {reason}", workers,
                      "yes" if traits.shares_memory else "no", traits.nodes or "one node only", role + cls.summary)
    console().print(table)
    return 0


def cmd_sysinfo(args: argparse.Namespace) -> int:
    table = Table("fact", "value", show_header=False)
    for key, value in sysinfo.machine().items():
        if key.endswith("_bytes") and value is not None:
            value = f"{value / 2**30:.2f} GiB"
        table.add_row(key.replace("_bytes", ""), escape(str(value)))
    console().print(table)
    return 0
