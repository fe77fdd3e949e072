"""Figures of the labels and metadata: composition by class, age, findings, splits.

Each function takes already-aggregated numbers (see :mod:`pneumo.reports.eda.stats`), so
drawing never scans the manifest, and returns a ``data:image/png;base64,...`` URI. The figure,
its house style and its PNG come from :mod:`pneumo.render.figures`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from pneumo.render import figures as plot
from pneumo.reports.eda.stats import (
    CLASSES,
    NEGATIVE,
    POSITIVE,
    UNKNOWN,
    Composition,
    FloatArray,
    IntArray,
    SplitRow,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

CLASS_COLOURS = {POSITIVE: plot.POSITIVE, NEGATIVE: plot.NEGATIVE}


def _compact(n: float) -> str:
    if n >= 10_000:
        return f"{n / 1000:.0f}k"
    if n >= 1000:
        return f"{n / 1000:.1f}k"
    return f"{n:.0f}"


def composition_by_class(table: Composition, what: str) -> str:
    """One 100 % stacked horizontal bar per class: the share of each value of ``what``.

    Shares, not counts, because Pneumonia is rare (about 1 % in NIH): raw counts would hide the
    positive class. Counts go in the labels.
    """
    fig = plot.figure(9.0, 2.7, left=1.25, bottom=0.95, top=0.1, right=0.3)
    ax = fig.add_subplot()
    totals = table.counts.sum(axis=0)
    colours = [
        plot.LIGHT_GREY if v == UNKNOWN else plot.PALETTE[i % len(plot.PALETTE)]
        for i, v in enumerate(table.values)
    ]
    for row, total in enumerate(totals):
        shares = table.counts[:, row] / total if total else np.zeros(len(table.values))
        starts = np.concatenate([[0.0], np.cumsum(shares)[:-1]])
        ax.barh(row, shares, left=starts, color=colours, edgecolor="white", height=0.6)
        for value, share, start, count in zip(
            table.values, shares, starts, table.counts[:, row], strict=True
        ):
            if share >= 0.07:
                ax.text(
                    start + share / 2,
                    row,
                    f"{value}\n{share:.0%} ({count:,})",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white",
                    fontweight="bold",
                )
    labels = [f"{c}\n(n={t:,})" for c, t in zip(table.classes, totals, strict=True)]
    ax.set_yticks(range(len(totals)), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(lambda x, _pos: f"{x:.0%}")
    ax.set_xlabel(f"share of images in the class, by {what}", fontsize=plot.FONT)
    ax.legend(
        [plot.patch(c) for c in colours],
        list(table.values),
        loc="upper center",
        ncols=len(colours),
        bbox_to_anchor=(0.5, -0.32),
        frameon=False,
        fontsize=8,
    )
    plot.style(ax, "x")
    return plot.data_uri(fig)


def class_histograms(
    ax: Axes, values: dict[str, FloatArray], bins: FloatArray, label: str = "{cls} (n={n:,})"
) -> None:
    """Density step histograms, one per class, on shared bin edges."""
    for cls in CLASSES:
        data = values.get(cls)
        if data is None or data.size == 0:
            continue
        density, _ = np.histogram(data, bins=bins, density=True)
        colour = CLASS_COLOURS[cls]
        text = label.format(cls=cls, n=data.size, mean=data.mean())
        ax.stairs(density, bins, color=colour, linewidth=1.6, label=text)
        ax.stairs(density, bins, color=colour, alpha=0.15, fill=True)


def age_histogram(ages: dict[str, FloatArray]) -> str:
    top = max((float(a.max()) for a in ages.values() if a.size), default=100.0)
    bins = np.arange(0.0, max(100.0, math.ceil(top / 5) * 5) + 5, 5.0)
    fig = plot.figure(9.0, 3.4)
    ax = fig.add_subplot()
    class_histograms(ax, ages, bins, "{cls} (n={n:,}, mean {mean:.1f} y)")
    ax.set_xlabel("age (years, 5-year bins)", fontsize=plot.FONT)
    ax.set_ylabel("share of the class per year", fontsize=plot.FONT)
    ax.legend(frameon=False, fontsize=plot.FONT)
    plot.style(ax)
    return plot.data_uri(fig)


def findings_bar(names: tuple[str, ...], counts: IntArray, no_finding: int) -> str:
    order = np.argsort(counts, kind="stable")[::-1]
    labels = ["No Finding"] + [names[i] for i in order]
    values = [no_finding] + [int(counts[i]) for i in order]
    colours = [plot.LIGHT_GREY] + [
        CLASS_COLOURS[POSITIVE] if names[i] == POSITIVE else plot.PALETTE[0] for i in order
    ]
    fig = plot.figure(9.0, 0.28 * len(labels) + 0.8, left=1.45, bottom=0.55, top=0.1)
    ax = fig.add_subplot()
    ax.barh(range(len(labels)), values, color=colours, height=0.7)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_ylim(len(labels) - 0.5, -0.5)
    top = max(values) or 1
    for y, v in enumerate(values):
        ax.text(v + top * 0.005, y, f"{v:,}", va="center", fontsize=8, color=plot.TEXT)
    ax.set_xlim(0, top * 1.12)
    ax.set_xlabel("images", fontsize=plot.FONT)
    plot.thousands(ax.xaxis)
    plot.style(ax, "x")
    return plot.data_uri(fig)


def cooccurrence_heatmap(names: tuple[str, ...], matrix: IntArray) -> str:
    """Counts of images carrying both findings, on a log colour scale (the diagonal dominates)."""
    from matplotlib import colormaps
    from matplotlib.colors import LogNorm

    n = len(names)
    side = 0.42 * n  # inches of heatmap
    left, bottom, bar = 1.45, 1.35, 1.4
    width, height = left + side + bar, bottom + side + 0.15
    fig = plot.figure(width, height)
    ax = fig.add_axes((left / width, bottom / height, side / width, side / height))
    cax = fig.add_axes(((left + side + 0.3) / width, bottom / height, 0.18 / width, side / height))
    vmax = max(float(matrix.max()), 2.0)
    cmap = colormaps["viridis"].with_extremes(bad="#f4f4f4")
    masked = np.ma.masked_less_equal(matrix.astype(np.float64), 0)
    image = ax.imshow(masked, cmap=cmap, norm=LogNorm(vmin=1, vmax=vmax), aspect="auto")
    dark_below = math.sqrt(vmax)  # viridis is dark in the lower half of the log scale
    for (i, j), v in np.ndenumerate(matrix):
        colour = "#999999" if v == 0 else ("black" if v >= dark_below else "white")
        ax.text(j, i, _compact(int(v)), ha="center", va="center", fontsize=7, color=colour)
    ax.set_xticks(range(n), names, rotation=45, ha="right", rotation_mode="anchor", fontsize=8)
    ax.set_yticks(range(n), names, fontsize=8)
    ax.tick_params(length=0)
    for tick in [*ax.get_xticklabels(), *ax.get_yticklabels()]:
        if tick.get_text() == POSITIVE:
            tick.set_color(CLASS_COLOURS[POSITIVE])
            tick.set_fontweight("bold")
    colourbar = fig.colorbar(image, cax=cax)
    colourbar.set_label("images with both findings (log scale)", fontsize=plot.FONT)
    colourbar.ax.yaxis.set_major_formatter(lambda v, _pos: f"{v:,.0f}")
    colourbar.ax.tick_params(labelsize=8)
    return plot.data_uri(fig)


def prevalence_by_split(rows: list[SplitRow]) -> str:
    fig = plot.figure(9.0, 3.2, bottom=0.45, top=0.1)
    ax = fig.add_subplot()
    x = np.arange(len(rows))
    prevalence = [100 * r.prevalence for r in rows]
    ax.bar(x, prevalence, color=CLASS_COLOURS[POSITIVE], width=0.55)
    top = max(prevalence, default=1.0) or 1.0
    for i, r in enumerate(rows):
        ax.text(
            i,
            prevalence[i] + top * 0.03,
            f"{prevalence[i]:.2f} %\n{r.pneumonia:,} / {r.images:,}",
            ha="center",
            va="bottom",
            fontsize=plot.FONT,
            color=plot.TEXT,
        )
    ax.set_xticks(x, [r.name for r in rows])
    ax.set_ylim(0, top * 1.35)
    ax.set_ylabel("Pneumonia prevalence (%)", fontsize=plot.FONT)
    plot.style(ax)
    return plot.data_uri(fig)
