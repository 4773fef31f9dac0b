"""Pictures of a comparison: small multiples, one colour per strategy in every figure.

One panel per workload, size and worker count (bars, not lines: a comparison has two or three
worker counts, and eleven lines over two x positions read as a tangle); error bars from the 95%
intervals; the one-shot phases stacked per strategy; memory as a multiple of the matrix.
"""
from __future__ import annotations

from collections.abc import Sequence

from ..kernels import label
from ..phases import PHASES
from ..sizes import describe
from ..strategies import REGISTRY, order

#: Every strategy keeps its colour in every figure (the CLI's PNG and the HTML report alike): the
#: registry's order (``strategies.order``) picks it.
_PALETTE = ("#4d4d4d", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
            "#bcbd22", "#7f7f7f", "#aec7e8", "#98df8a")


def colour(strategy: str) -> str:
    """The strategy's colour; one the registry does not know gets a stable one of the palette."""
    place = order(strategy)
    if place < len(REGISTRY):
        return _PALETTE[place % len(_PALETTE)]
    return _PALETTE[sum(map(ord, strategy)) % len(_PALETTE)]


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _label(r: dict, group: Sequence[dict]) -> str:
    methods = {x.get("start_method") for x in group if x["strategy"] == r["strategy"]}
    return r["strategy"] + (f" ({r['start_method']})" if len(methods) > 1 else "")


def _key(r: dict) -> tuple:
    return r["workload"], r["rows"], r["cols"], r.get("dtype") or "float64", r["workers"]


def _panels(records: Sequence[dict]) -> list[tuple[tuple, list[dict]]]:
    keys = list(dict.fromkeys(_key(r) for r in records))
    return [(key, [r for r in records if _key(r) == key]) for key in keys]


def scaling_figure(records: Sequence[dict], cores: int | None = None):
    """Per workload, size and worker count: the speed-up over serial of every strategy, with its
    interval and the ideal (the workers that can run at once); below, peak memory ÷ the matrix."""
    plt = pyplot()
    records = [r for r in records if r.get("steady_seconds") is not None]
    panels = _panels(records)
    height = max(3.0, 0.9 + 0.32 * max((len(g) for _, g in panels), default=1))
    fig, axes = plt.subplots(2, max(1, len(panels)), figsize=(5.2 * max(1, len(panels)), 2 * height), squeeze=False)
    for column, ((workload, rows, cols, dtype, workers), group) in enumerate(panels):
        top, bottom = axes[0][column], axes[1][column]
        title = f"{label(workload)}, {describe(rows, cols, dtype)}, {workers} worker{'s' if workers != 1 else ''}"
        group = sorted(group, key=lambda r: -(r.get("speedup") or 0.0))
        labels = [_label(r, group) for r in group]
        ys = range(len(group))
        values = [r.get("speedup") or 0.0 for r in group]
        low = [v - (r.get("speedup_ci") or [v, v])[0] for v, r in zip(values, group)]
        high = [(r.get("speedup_ci") or [v, v])[1] - v for v, r in zip(values, group)]
        bars = top.barh(ys, values, xerr=[low, high], capsize=3, color=[colour(r["strategy"]) for r in group])
        for bar, r in zip(bars, group):  # a figure that is not stable is drawn hatched, faded
            if r.get("stable") is False or r.get("disturbed") or not r["verified"]:
                bar.set_alpha(0.45)
                bar.set_hatch("//")
        ideal = min(workers, cores) if cores else workers
        top.axvline(ideal, color="k", ls="--", lw=1, label=f"ideal ({ideal}× serial)")
        top.set_yticks(list(ys), labels, fontsize="small")
        top.invert_yaxis()
        top.set_title(title, fontsize="medium")
        top.set_xlabel("speed-up over serial, 95% interval (higher is better)")
        top.grid(axis="x", alpha=0.3)
        from matplotlib.patches import Patch

        handles = [*top.get_legend_handles_labels()[0], Patch(facecolor="white", edgecolor="grey", hatch="//",
                                                              label="not stable")]
        top.legend(handles=handles, fontsize="small", loc="lower right")
        held = [r for r in group if r.get("pss_multiple")]
        bottom.barh(range(len(held)), [r["pss_multiple"] for r in held],
                    color=[colour(r["strategy"]) for r in held])
        bottom.axvline(1.0, color="k", lw=1, ls="--", label="one matrix")
        bottom.set_yticks(range(len(held)), [_label(r, group) for r in held], fontsize="small")
        bottom.invert_yaxis()
        bottom.set_xlabel("peak PSS of all processes ÷ matrix (lower is better)")
        bottom.grid(axis="x", alpha=0.3)
        bottom.legend(fontsize="small", loc="lower right")
    fig.tight_layout()
    return fig


def phases_figure(records: Sequence[dict]):
    """Where a one-shot run's time goes: the first pass's phases stacked, one bar per strategy,
    one panel per workload, size and worker count."""
    plt = pyplot()
    records = [r for r in records if r.get("phases") and not r.get("error")]
    panels = _panels(records)
    height = max(2.6, 0.9 + 0.32 * max((len(g) for _, g in panels), default=1))
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(5.2 * max(1, len(panels)), height), squeeze=False)
    cmap = plt.get_cmap("Set2").colors
    for column, ((workload, rows, cols, dtype, workers), group) in enumerate(panels):
        ax = axes[0][column]
        left = [0.0] * len(group)
        for index, name in enumerate(PHASES):
            widths = [r["phases"].get(name, 0.0) for r in group]
            ax.barh(range(len(group)), widths, left=left, label=name, color=cmap[index % len(cmap)])
            left = [a + b for a, b in zip(left, widths)]
        labels = [_label(r, group) for r in group]
        ax.set_yticks(range(len(group)), labels, fontsize="small")
        for tick, r in zip(ax.get_yticklabels(), group):  # the strategy's own colour on its name
            tick.set_color(colour(r["strategy"]))
        ax.invert_yaxis()
        ax.set_title(f"{label(workload)}, {describe(rows, cols, dtype)}, {workers} worker{'s' if workers != 1 else ''}",
                     fontsize="medium")
        ax.set_xlabel("seconds, first pass (stacked phases; measured once)")
        ax.grid(axis="x", alpha=0.3)
        if column == 0:
            ax.legend(ncol=4, fontsize="x-small", loc="lower right")
    fig.tight_layout()
    return fig
