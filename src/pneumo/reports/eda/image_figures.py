"""Figures of the images themselves: original sizes, cached intensities, sample images."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from pneumo.render import figures as plot
from pneumo.reports.eda.label_figures import CLASS_COLOURS, class_histograms
from pneumo.reports.eda.stats import FloatArray

SAMPLE_MAX_SIDE = 512  # the figure shows ~300 px of the image; decimate before drawing


def _edges(values: FloatArray, bins: int = 40) -> FloatArray:
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, bins + 1)


def size_histograms(width: FloatArray, height: FloatArray) -> str:
    """Original width and height (left) and aspect ratio width / height (right)."""
    fig = plot.figure(9.0, 3.2, left=0.85, bottom=0.55, top=0.1, wspace=0.3)
    left, right = fig.subplots(1, 2, width_ratios=(3, 2))
    sizes = np.concatenate([width[~np.isnan(width)], height[~np.isnan(height)]])
    bins = _edges(sizes)
    for values, name, colour in (
        (width, "width", plot.PALETTE[0]),
        (height, "height", plot.PALETTE[1]),
    ):
        kept = values[~np.isnan(values)]
        counts, _ = np.histogram(kept, bins=bins)
        left.stairs(counts, bins, color=colour, linewidth=1.6, label=f"{name} (n={kept.size:,})")
        left.stairs(counts, bins, color=colour, alpha=0.15, fill=True)
    left.set_xlabel("pixels", fontsize=plot.FONT)
    left.set_ylabel("images", fontsize=plot.FONT)
    left.legend(frameon=False, fontsize=8)
    plot.thousands(left.xaxis)
    both = ~(np.isnan(width) | np.isnan(height)) & (height > 0)
    ratio = width[both] / height[both]
    if ratio.size:
        counts, edges = np.histogram(ratio, bins=_edges(ratio, 30))
        right.stairs(counts, edges, color=plot.PALETTE[2], fill=True, alpha=0.7)
    right.set_xlabel("aspect ratio (width / height)", fontsize=plot.FONT)
    for ax in (left, right):
        plot.thousands(ax.yaxis)
        plot.style(ax)
    return plot.data_uri(fig)


def intensity_histograms(mean: dict[str, FloatArray], std: dict[str, FloatArray]) -> str:
    fig = plot.figure(9.0, 3.2, left=0.75, bottom=0.55, top=0.1, wspace=0.22)
    axes = fig.subplots(1, 2)
    for ax, values, name in ((axes[0], mean, "mean"), (axes[1], std, "standard deviation")):
        pooled = np.concatenate([v for v in values.values() if v.size] or [np.zeros(1)])
        class_histograms(ax, values, _edges(pooled))
        ax.set_xlabel(f"per-image {name} of pixel intensity (0-255)", fontsize=plot.FONT)
        plot.style(ax)
    axes[0].set_ylabel("density", fontsize=plot.FONT)
    axes[0].legend(frameon=False, fontsize=8)
    return plot.data_uri(fig)


def sample_with_histogram(image: npt.NDArray[np.generic], label: str) -> str:
    """The image (left) beside the histogram of its standardized intensities (right), as in the
    seed tutorial's EDA."""
    raw = np.asarray(image)
    pixels = raw.astype(np.float32)
    if pixels.ndim == 3:
        pixels = pixels.mean(axis=-1)
    step = max(1, math.ceil(max(pixels.shape) / SAMPLE_MAX_SIDE))
    fig = plot.figure(9.0, 3.2, left=0.1, right=0.25, bottom=0.55, top=0.15, wspace=0.15)
    left, right = fig.subplots(1, 2, width_ratios=(1, 1.6))
    vmax = 255.0 if raw.dtype == np.uint8 else max(float(pixels.max()), 1.0)
    shown = pixels[::step, ::step]
    left.imshow(shown, cmap="gray", vmin=0, vmax=vmax, interpolation="antialiased")
    left.set_axis_off()
    std = float(pixels.std())
    z = (pixels - float(pixels.mean())) / (std if std > 0 else 1.0)
    counts, edges = np.histogram(z, bins=64)
    colour = CLASS_COLOURS.get(label, plot.LIGHT_GREY)
    right.stairs(counts / max(z.size, 1), edges, fill=True, color=colour, alpha=0.8)
    right.set_xlabel("standardized intensity: (pixel - mean) / std", fontsize=plot.FONT)
    right.set_ylabel("share of pixels", fontsize=plot.FONT)
    plot.style(right)
    return plot.data_uri(fig)
