"""The evaluation report's figures, drawn on bare Agg figures (see :mod:`pneumo.render.figures`).

Each figure restates its key numbers (AUROC and CI, the operating point, ECE) so that it still
makes sense when copied out of the report on its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from pneumo.metrics.arrays import BoolArray, FloatArray
from pneumo.metrics.curves import pr_curve, roc_curve
from pneumo.render import figures as plot
from pneumo.render.figures import CURVE, FONT, GREY, NEGATIVE, OPERATING, POSITIVE, TEXT
from pneumo.render.text import number, percent, with_interval

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 110


def _ci(summary: dict[str, Any], name: str) -> str:
    """The metric and its interval as the figures' legends show them, or "undefined"."""
    level = round(100 * float(summary.get("bootstrap", {}).get("ci_level", 0.95)))
    label = f"{level}% CI "
    return with_interval(summary.get(name), sep="\u2013", label=label, missing="undefined")


def _value(summary: dict[str, Any], name: str) -> float | None:
    entry = summary.get(name)
    value = entry.get("value") if isinstance(entry, dict) else entry
    return None if value is None else float(value)


def _undefined(ax: Axes, message: str) -> None:
    ax.text(
        0.5,
        0.5,
        message,
        ha="center",
        va="center",
        fontsize=FONT + 1,
        color=GREY,
        transform=ax.transAxes,
        wrap=True,
    )


def _figure(title: str) -> tuple[Figure, Axes]:
    """A square plot of two rates on [0, 1], titled."""
    fig = plot.figure(5.2, 5.0, dpi=DPI, left=0.676, right=0.208, bottom=0.6, top=0.5)
    ax = fig.add_subplot()
    plot.style(ax, "both", title)
    return fig, ax


def _operating_point(ax: Axes, x: float, y: float, label: str) -> None:
    ax.plot(
        [x], [y], "o", color=OPERATING, markersize=9, zorder=5, markeredgecolor="white", label=label
    )


def _finish(
    ax: Axes, xlabel: str, ylabel: str, legend: Literal["lower left", "lower right"]
) -> None:
    """Both axes on [0, 1] at the same scale, labelled, and the legend at ``legend``."""
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel(xlabel, fontsize=FONT + 1)
    ax.set_ylabel(ylabel, fontsize=FONT + 1)
    ax.legend(loc=legend, fontsize=FONT, frameon=True, framealpha=0.9)


def roc_figure(y: BoolArray, p: FloatArray, summary: dict[str, Any], title: str) -> Figure:
    fig, ax = _figure(f"ROC curve \u2013 {title}")
    ax.plot([0, 1], [0, 1], linestyle="--", color=GREY, linewidth=1, label="Chance (AUROC 0.5)")
    if y.all() or not y.any():
        _undefined(ax, "ROC undefined: the split has a single class")
    else:
        fpr, tpr, _ = roc_curve(y, p, drop_intermediate=True)
        ax.plot(fpr, tpr, color=CURVE, linewidth=2, label=f"AUROC {_ci(summary, 'auroc')}")
        sens, spec = _value(summary, "sensitivity"), _value(summary, "specificity")
        if sens is not None and spec is not None:
            at = f"Threshold {summary['threshold']:.3g}"
            _operating_point(ax, 1 - spec, sens, f"{at}: sens {number(sens)}, spec {number(spec)}")
    xlabel, ylabel = "False positive rate (1 - specificity)", "True positive rate (sensitivity)"
    _finish(ax, xlabel, ylabel, "lower right")
    return fig


def pr_figure(y: BoolArray, p: FloatArray, summary: dict[str, Any], title: str) -> Figure:
    fig, ax = _figure(f"Precision-recall curve \u2013 {title}")
    prevalence = float(summary["prevalence"])
    ax.axhline(
        prevalence,
        linestyle="--",
        color=GREY,
        linewidth=1,
        label=f"Prevalence {number(prevalence)} (no-skill baseline)",
    )
    if not y.any():
        _undefined(ax, "Precision-recall undefined: no positive image")
    else:
        precision, recall, _ = pr_curve(y, p)
        label = f"AUPRC {_ci(summary, 'auprc')}"
        ax.step(recall, precision, where="post", color=CURVE, linewidth=2, label=label)
        sens, ppv = _value(summary, "sensitivity"), _value(summary, "ppv")
        if sens is not None and ppv is not None:
            at = f"Threshold {summary['threshold']:.3g}"
            _operating_point(ax, sens, ppv, f"{at}: recall {number(sens)}, precision {number(ppv)}")
    _finish(ax, "Recall (sensitivity)", "Precision (PPV)", "lower left")
    return fig


def reliability_figure(y: BoolArray, p: FloatArray, summary: dict[str, Any], title: str) -> Figure:
    fig = plot.figure(
        5.2, 6.8, dpi=DPI, left=0.676, right=0.208, bottom=0.544, top=1.156, hspace=0.16
    )
    grid = fig.add_gridspec(2, 1, height_ratios=[3, 1.3])
    ax = fig.add_subplot(grid[0])
    hist = fig.add_subplot(grid[1], sharex=ax)
    plot.style(ax, "both")
    plot.style(hist, "both")
    scores = f"ECE {number(summary['ece'])} \u00b7 Brier {number(summary['brier'])}"
    fig.suptitle(
        f"Calibration \u2013 {title}\n{scores}"
        f" ({summary['reliability']['n_bins']} equal-width bins)",
        x=0.13,
        y=0.985,
        ha="left",
        va="top",
        fontsize=FONT + 2,
        color=TEXT,
        linespacing=1.5,
    )
    bins = summary["reliability"]
    ax.plot([0, 1], [0, 1], linestyle="--", color=GREY, linewidth=1, label="Perfect calibration")
    filled = [i for i, c in enumerate(bins["counts"]) if c > 0]
    counts = np.asarray([bins["counts"][i] for i in filled], dtype=np.float64)
    mean_p = np.asarray([bins["mean_predicted"][i] for i in filled], dtype=np.float64)
    observed = np.asarray([bins["observed"][i] for i in filled], dtype=np.float64)
    low, high = _wilson(observed, counts)
    ax.errorbar(
        mean_p,
        observed,
        # Clipped: at an observed rate of exactly 0 or 1, rounding can make a bound cross it.
        yerr=[np.clip(observed - low, 0, None), np.clip(high - observed, 0, None)],
        fmt="none",
        ecolor=CURVE,
        elinewidth=1,
        capsize=3,
        alpha=0.6,
        zorder=3,
    )
    ax.plot(mean_p, observed, color=CURVE, linewidth=1.5, zorder=3)
    ax.scatter(
        mean_p,
        observed,
        s=20 + 180 * np.sqrt(counts / len(p)),
        color=CURVE,
        edgecolors="white",
        zorder=4,
        label="Observed rate per bin (95% Wilson interval; area ~ images)",
    )
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("Observed pneumonia rate", fontsize=FONT + 1)
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), fontsize=FONT, frameon=False)
    ax.tick_params(labelbottom=False)
    edges = np.linspace(0.0, 1.0, 2 * int(bins["n_bins"]) + 1)
    hist.hist(
        [p[~y], p[y]],
        bins=edges.tolist(),
        stacked=True,
        color=[NEGATIVE, POSITIVE],
        label=["No pneumonia", "Pneumonia"],
    )
    hist.axvline(
        float(summary["threshold"]),
        color=OPERATING,
        linewidth=1.5,
        label=f"Threshold {summary['threshold']:.3g}",
    )
    hist.set_xlim(-0.01, 1.01)
    hist.set_xlabel("Predicted probability", fontsize=FONT + 1)
    hist.set_ylabel("Images", fontsize=FONT + 1)
    plot.thousands(hist.yaxis)
    hist.legend(
        loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize=FONT - 1, ncols=3, frameon=False
    )
    return fig


def _wilson(rate: FloatArray, n: FloatArray, z: float = 1.96) -> tuple[FloatArray, FloatArray]:
    """Wilson score interval of a binomial rate: sensible at 0, 1 and small n."""
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def confusion_figure(summary: dict[str, Any], title: str) -> Figure:
    fig = plot.figure(5.2, 4.4, dpi=DPI, left=1.404, right=0.26, bottom=0.704, top=0.616)
    ax = fig.add_subplot()
    c = summary["confusion"]
    counts = np.array([[c["tn"], c["fp"]], [c["fn"], c["tp"]]], dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, where=totals > 0, out=np.zeros_like(counts))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    names = [["TN", "FP"], ["FN", "TP"]]
    rows = ["negatives", "positives"]
    for i in range(2):
        for j in range(2):
            colour = "white" if share[i, j] > 0.55 else TEXT
            ax.text(
                j,
                i,
                f"{names[i][j]}\n{number(int(counts[i, j]))}\n"
                f"{percent(share[i, j], 1, unit='%')} of {rows[i]}",
                ha="center",
                va="center",
                fontsize=FONT + 1,
                color=colour,
            )
    ax.set_xticks([0, 1], ["No pneumonia", "Pneumonia"], fontsize=FONT)
    ax.set_yticks([0, 1], ["No pneumonia", "Pneumonia"], fontsize=FONT)
    ax.set_xlabel("Predicted", fontsize=FONT + 1)
    ax.set_ylabel("Actual", fontsize=FONT + 1)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(
        f"Confusion matrix at threshold {summary['threshold']:.3g}\n{title}",
        fontsize=FONT + 2,
        color=TEXT,
    )
    return fig
