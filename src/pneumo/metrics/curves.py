"""Binary-classification metrics that match scikit-learn exactly, with honest bootstrap CIs.

Curves and areas follow sklearn's definitions (checked to 1e-12 in the tests) so a number here
can be compared with any paper or notebook that used sklearn, without depending on it at
runtime. Confusion-matrix ratios are None, never NaN, when their denominator is 0, so a
summary always serialises to strict JSON.

Confidence intervals are percentile bootstraps. When patient ids are known the resampling unit
is the patient: images of one patient are correlated, and resampling them independently would
report intervals that are too narrow.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt

from pneumo.metrics import resampling
from pneumo.metrics.arrays import FloatArray, group_codes, labels_and_scores, probabilities
from pneumo.metrics.blocks import metric_block, subgroup_table
from pneumo.metrics.calibration import brier, expected_calibration_error, reliability
from pneumo.metrics.resampling import Interval, MetricFn, MetricName

log = logging.getLogger(__name__)

ALPHA = 0.05  # 95 % intervals


class Confusion(TypedDict):
    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int
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
    tp = int(np.count_nonzero(labels & predicted))
    fp = int(np.count_nonzero(~labels & predicted))
    fn = int(np.count_nonzero(labels & ~predicted))
    tn = labels.size - tp - fp - fn
    return Confusion(
        threshold=float(threshold),
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
        sensitivity=_ratio(tp, tp + fn),
        specificity=_ratio(tn, tn + fp),
        ppv=_ratio(tp, tp + fp),
        npv=_ratio(tn, tn + fn),
        accuracy=(tp + tn) / labels.size,
        f1=_ratio(2 * tp, 2 * tp + fp + fn),
    )


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def bootstrap_ci(
    y: npt.ArrayLike, p: npt.ArrayLike, metric: MetricName | MetricFn, **options: Any
) -> tuple[float | None, float | None]:
    """Percentile (1 - alpha) interval; patients are resampled when ``groups`` holds their ids.

    ``metric`` is a name ("auroc", "auprc", or a ratio at ``threshold``: "sensitivity",
    "specificity", "ppv", "npv", "accuracy", "f1"), computed for all resamples at once, or any
    ``metric(y, p)`` callable, called once per resample. ``options`` are those of
    :func:`bootstrap_interval` (groups, n_boot, seed, alpha, threshold). Resamples on which the
    metric is undefined (a single class; an empty denominator) are skipped and logged; use
    :func:`bootstrap_interval` to get that count. (None, None) when fewer than two are usable.
    """
    interval = bootstrap_interval(y, p, metric, **options)
    if interval.skipped:
        log.warning(
            "bootstrap: %d of %d resamples skipped (metric undefined on them)",
            interval.skipped,
            interval.n_boot,
        )
    return interval.low, interval.high


def bootstrap_interval(
    y: npt.ArrayLike,
    p: npt.ArrayLike,
    metric: MetricName | MetricFn,
    *,
    groups: npt.ArrayLike | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = ALPHA,
    threshold: float | None = None,
) -> Interval:
    """The bootstrap interval of ``metric`` (see :func:`bootstrap_ci`), with the number of
    resamples skipped because the metric was undefined on them."""
    labels, scores = labels_and_scores(y, p)
    codes = group_codes(groups, labels.size)
    if callable(metric):
        return resampling.bootstrap_callable(
            labels, scores, metric, codes=codes, n_boot=n_boot, seed=seed, alpha=alpha
        )
    return resampling.bootstrap(
        labels,
        scores,
        [metric],
        threshold=threshold,
        codes=codes,
        n_boot=n_boot,
        seed=seed,
        alpha=alpha,
    )[metric]


def summarize(
    y: npt.ArrayLike,
    p: npt.ArrayLike,
    threshold: float,
    *,
    groups: npt.ArrayLike | None = None,
    subgroups: Mapping[str, npt.ArrayLike] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = ALPHA,
    n_bins: int = 10,
) -> dict[str, Any]:
    """Everything the evaluation report states about one split, as strict-JSON-ready values.

    Every metric is ``{value, ci_low, ci_high}``; a value that is undefined on this split (e.g.
    AUROC with one class) is None with a ``reason``. ``n_boot=0`` skips the intervals.
    """
    labels, scores = probabilities(y, p)
    if n_boot < 0:
        raise ValueError(f"n_boot must be >= 0, got {n_boot}")
    codes = group_codes(groups, labels.size)
    n_pos = int(labels.sum())
    confusion = confusion_at(labels, scores, threshold)  # also checks the threshold
    block = metric_block(labels, scores, threshold, codes, n_boot=n_boot, seed=seed, alpha=alpha)
    out: dict[str, Any] = {
        "n": int(labels.size),
        "positives": n_pos,
        "negatives": int(labels.size - n_pos),
        "prevalence": n_pos / labels.size,
        "n_patients": None if codes is None else int(codes.max()) + 1,
        "resampling": "image" if codes is None else "patient",
        "bootstrap": {
            "n_boot": n_boot,
            "seed": seed,
            "ci_level": 1 - alpha,
            "method": "percentile",
            "unit": "image" if codes is None else "patient",
            "skipped": block.pop("skipped"),
        },
        "threshold": float(threshold),
        **block,
        "confusion": {
            "tp": confusion["tp"],
            "fp": confusion["fp"],
            "tn": confusion["tn"],
            "fn": confusion["fn"],
        },
        "ece": expected_calibration_error(labels, scores, n_bins),
        "brier": brier(labels, scores),
        "reliability": reliability(labels, scores, n_bins),
        "subgroups": {},
    }
    if subgroups:
        out["subgroups"] = subgroup_table(
            labels, scores, threshold, codes, subgroups, n_boot=n_boot, seed=seed, alpha=alpha
        )
    return out
