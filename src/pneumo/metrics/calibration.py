"""How far predicted probabilities are from observed frequencies.

A well-ranked model (high AUROC) can still be badly calibrated, and a clinician reading "0.8"
as "80 % likely" needs calibration. Bins are equal-width on [0, 1]; bin i holds
i/n <= p < (i+1)/n, and the last bin also holds p = 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from pneumo.metrics.arrays import FloatArray, IntArray, probabilities


def _binned(
    y: npt.ArrayLike, p: npt.ArrayLike, n_bins: int
) -> tuple[IntArray, FloatArray, FloatArray, int]:
    """(count, sum of p, number of positives) per bin, and the number of images."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    labels, scores = probabilities(y, p)
    # p * n_bins rather than searchsorted on linspace edges: linspace(0, 1, 11)[3] is
    # 0.30000000000000004, which would put p = 0.3 in the wrong bin.
    index = np.minimum((scores * n_bins).astype(np.int64), n_bins - 1)
    counts = np.bincount(index, minlength=n_bins).astype(np.int64)
    sums = np.bincount(index, weights=scores, minlength=n_bins).astype(np.float64)
    hits = np.bincount(index, weights=labels, minlength=n_bins).astype(np.float64)
    return counts, sums, hits, labels.size


def reliability(y: npt.ArrayLike, p: npt.ArrayLike, n_bins: int = 10) -> dict[str, Any]:
    """Per-bin count, mean predicted probability and observed positive rate (None if empty)."""
    counts, sums, hits, _ = _binned(y, p, n_bins)
    filled = counts > 0
    mean_p = np.divide(sums, counts, where=filled, out=np.zeros(n_bins))
    observed = np.divide(hits, counts, where=filled, out=np.zeros(n_bins))
    return {
        "n_bins": n_bins,
        "edges": [i / n_bins for i in range(n_bins + 1)],
        "counts": counts.tolist(),
        "mean_predicted": [float(v) if f else None for v, f in zip(mean_p, filled, strict=True)],
        "observed": [float(v) if f else None for v, f in zip(observed, filled, strict=True)],
    }


def expected_calibration_error(y: npt.ArrayLike, p: npt.ArrayLike, n_bins: int = 10) -> float:
    """Sum over bins of (bin share of images) x |mean predicted - observed rate|."""
    _, sums, hits, n = _binned(y, p, n_bins)
    # count * |mean_p - rate| = |sum_p - hits|: no division, empty bins contribute 0.
    return float(np.abs(sums - hits).sum() / n)


def brier(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """Mean squared difference between probability and label (0 is perfect, 0.25 is p = 0.5)."""
    labels, scores = probabilities(y, p)
    return float(np.mean((scores - labels) ** 2))
