"""ROC and precision-recall curves, their areas and the confusion matrix, exactly as sklearn.

Curves and areas follow sklearn's definitions (checked to 1e-12 in the tests) so a number here
can be compared with any paper or notebook that used sklearn, without depending on it at
runtime. The areas and the confusion ratios are computed by the same weighted kernels as their
bootstrap replicates (:mod:`pneumo.metrics.resampling`), so point estimate and interval cannot
disagree. Confusion-matrix ratios are None, never NaN, when their denominator is 0, so a
summary always serialises to strict JSON.
"""

from __future__ import annotations

import math
from typing import TypedDict

import numpy as np
import numpy.typing as npt

from pneumo.metrics import resampling
from pneumo.metrics.arrays import FloatArray, labels_and_scores


class Counts(TypedDict):
    tp: int
    fp: int
    tn: int
    fn: int


class Confusion(Counts):
    threshold: float
    sensitivity: float | None
    specificity: float | None
    ppv: float | None
    npv: float | None
    accuracy: float
    f1: float | None


def _both_classes(y: npt.NDArray[np.bool_], what: str) -> None:
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == y.size:
        only = "positive" if n_pos else "negative"
        raise ValueError(f"{what} needs both classes; all {y.size} labels are {only}")


def roc_curve(
    y: npt.ArrayLike, p: npt.ArrayLike, *, drop_intermediate: bool = False
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(fpr, tpr, thresholds) over the distinct scores, highest threshold first.

    As in sklearn, the first threshold is +inf (nothing predicted positive), so the curve starts
    at (0, 0). All thresholds are kept by default because threshold selection needs them;
    ``drop_intermediate=True`` drops collinear points exactly as sklearn's default does.
    """
    labels, scores = labels_and_scores(y, p)
    _both_classes(labels, "a ROC curve")
    fps, tps, thresholds = _cumulative_counts(labels, scores)
    if drop_intermediate and fps.size > 2:
        keep = np.flatnonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])
        fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
    fps, tps = np.r_[0.0, fps], np.r_[0.0, tps]
    return fps / fps[-1], tps / tps[-1], np.r_[np.inf, thresholds]


def roc_auc(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """Area under the ROC curve; a tied positive/negative pair counts one half (Mann-Whitney)."""
    labels, scores = labels_and_scores(y, p)
    _both_classes(labels, "AUROC")
    ranked = resampling.Ranked.of(labels, scores)
    return float(resampling.ranking_metrics(ranked, np.ones((labels.size, 1)))["auroc"][0])


def pr_curve(y: npt.ArrayLike, p: npt.ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(precision, recall, thresholds) as sklearn's ``precision_recall_curve``.

    Thresholds ascend over the distinct scores; the curve ends with the point (recall 0,
    precision 1), which has no threshold.
    """
    labels, scores = labels_and_scores(y, p)
    if not labels.any():
        raise ValueError("a precision-recall curve needs at least one positive label")
    fps, tps, thresholds = _cumulative_counts(labels, scores)
    precision = tps / (tps + fps)  # tps + fps >= 1 at every threshold
    recall = tps / tps[-1]
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0], thresholds[::-1].copy()


def average_precision(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """AUPRC as the step-wise sum of precision x recall gained (no interpolation), like sklearn."""
    labels, scores = labels_and_scores(y, p)
    _both_classes(labels, "AUPRC")
    ranked = resampling.Ranked.of(labels, scores)
    return float(resampling.ranking_metrics(ranked, np.ones((labels.size, 1)))["auprc"][0])


def _cumulative_counts(
    y: npt.NDArray[np.bool_], p: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """False and true positives at each distinct score, taken as threshold, highest first."""
    order = np.argsort(-p, kind="stable")
    sorted_p, sorted_y = p[order], y[order]
    last_of_block = np.r_[np.flatnonzero(sorted_p[1:] != sorted_p[:-1]), sorted_p.size - 1]
    tps = np.cumsum(sorted_y, dtype=np.float64)[last_of_block]
    fps = 1.0 + last_of_block - tps
    return fps, tps, sorted_p[last_of_block]


def confusion_at(y: npt.ArrayLike, p: npt.ArrayLike, threshold: float) -> Confusion:
    """Counts and ratios when an image is called positive at ``p >= threshold``."""
    labels, scores = labels_and_scores(y, p)
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold}")
    predicted = scores >= threshold
    counts = confusion_counts(labels, predicted)
    ratios = resampling.threshold_metrics(labels, predicted, np.ones((labels.size, 1)))
    value = {name: _finite(column[0]) for name, column in ratios.items()}
    return Confusion(
        threshold=float(threshold),
        **counts,
        sensitivity=value["sensitivity"],
        specificity=value["specificity"],
        ppv=value["ppv"],
        npv=value["npv"],
        accuracy=float(ratios["accuracy"][0]),
        f1=value["f1"],
    )


def confusion_counts(y: npt.NDArray[np.bool_], predicted: npt.NDArray[np.bool_]) -> Counts:
    """True and false positives and negatives of boolean labels and decisions."""
    return Counts(
        tp=int(np.count_nonzero(y & predicted)),
        fp=int(np.count_nonzero(~y & predicted)),
        tn=int(np.count_nonzero(~y & ~predicted)),
        fn=int(np.count_nonzero(y & ~predicted)),
    )


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else float(value)
