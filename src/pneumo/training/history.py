"""The per-epoch history: its AUROC, and its figure (loss and AUROC, train and val)."""

from __future__ import annotations

from typing import Any

import numpy as np

from pneumo.metrics.curves import roc_auc
from pneumo.render.figures import figure, png


def mean_auroc(targets: np.ndarray, scores: np.ndarray) -> float | None:
    """AUROC of the target (mean over findings for multi-label); None when one class only."""
    values = [
        roc_auc(targets[:, k], scores[:, k])
        for k in range(targets.shape[1])
        if 0 < targets[:, k].sum() < len(targets)
    ]
    return float(np.mean(values)) if values else None


def history_png(history: list[dict[str, Any]], title: str) -> bytes:
    fig = figure(10, 4, dpi=110)
    epochs = [row["epoch"] + 1 for row in history]
    for ax, key, label in zip(
        fig.subplots(1, 2), ("loss", "auroc"), ("loss", "AUROC"), strict=True
    ):
        for split, style in (("train", "-o"), ("val", "-s")):
            values = [row.get(f"{split}_{key}") for row in history]
            points = [(e, v) for e, v in zip(epochs, values, strict=True) if v is not None]
            if points:
                ax.plot(*zip(*points, strict=True), style, label=split, markersize=4)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    best = max(history, key=lambda r: r.get("val_auroc") or -1.0, default=None)
    if best is not None and best.get("val_auroc") is not None:
        fig.axes[1].axvline(best["epoch"] + 1, color="grey", linestyle=":", label="best")
    fig.suptitle(title)
    fig.tight_layout()
    return png(fig)
