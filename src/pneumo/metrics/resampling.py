"""Vectorised bootstrap: every metric of a resample computed from per-image weights.

A bootstrap resample of images (or of patients, taking all their images) is the same data with
each image counted ``w`` times. Every metric here is therefore written once, as a function of a
weight matrix of shape (images, resamples), and the point estimate is the all-ones column. That
buys two things: a resample never materialises copies of the data (1000 resamples of 22k images
cost a few matrix products and prefix sums), and the sklearn-checked point estimate and the
bootstrap replicates come from the same code, so they cannot disagree.

Ranking metrics sort the scores once. Within a block of tied scores a positive counts as half
ranked above each tied negative (AUROC) and the whole block is one threshold (AUPRC), exactly
as sklearn's ``roc_auc_score`` and ``average_precision_score`` treat ties.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from pneumo.metrics.arrays import BoolArray, FloatArray, IntArray
from pneumo.metrics.names import AT_THRESHOLD, METRICS, RANKING, MetricName

log = logging.getLogger(__name__)

# Weight matrices are built in chunks of about this many cells (8 bytes each): large enough for
# numpy to run at full speed, small enough that the working set stays near 100 MB.
_CHUNK_CELLS = 2_000_000


@dataclass(frozen=True)
class Ranked:
    """The scores sorted once (descending), with the blocks of tied scores marked."""

    order: IntArray  # image indices by descending score
    starts: IntArray  # first sorted position of each block of equal scores
    positive: FloatArray  # labels in sorted order, as 0.0/1.0 weights
    presorted: bool  # scores already descending: weights need no reordering

    @classmethod
    def of(cls, y: BoolArray, p: FloatArray) -> Ranked:
        presorted = bool(np.all(p[1:] <= p[:-1]))
        order = np.arange(p.size) if presorted else np.argsort(-p, kind="stable")
        sorted_p = p[order]
        starts = np.flatnonzero(np.r_[True, sorted_p[1:] != sorted_p[:-1]])
        positive = y[order].astype(np.float64)
        return cls(order.astype(np.int64), starts.astype(np.int64), positive, presorted)


def ranking_metrics(
    ranked: Ranked, weights: FloatArray, *, auprc: bool = True
) -> dict[str, FloatArray]:
    """AUROC (and AUPRC) of each weight column; NaN where a column lacks one of the classes."""
    w = weights if ranked.presorted else weights[ranked.order]
    pos = w * ranked.positive[:, None]
    tot = w
    if ranked.starts.size < ranked.order.size:  # ties: one block per distinct score
        pos = np.add.reduceat(pos, ranked.starts, axis=0)
        tot = np.add.reduceat(w, ranked.starts, axis=0)
    neg = tot - pos
    # Sums of integer-valued floats are exact, so AUROC is exact up to the final division.
    tp = np.cumsum(pos, axis=0)  # positives scored at or above each block
    n_pos, n_neg = tp[-1], neg.sum(axis=0)
    pairs = n_pos * n_neg
    both = pairs > 0
    # A negative is outranked by every positive of an earlier block and half of its tied ones.
    wins = (neg * (tp - 0.5 * pos)).sum(axis=0)
    out = {"auroc": np.divide(wins, pairs, where=both, out=_nans(pairs))}
    if auprc:
        # Step-wise AP: each block adds its share of recall at the precision reached after it.
        seen = np.cumsum(tot, axis=0)
        precision = np.divide(tp, seen, where=seen > 0, out=np.zeros_like(tp))
        area = (pos * precision).sum(axis=0)
        out["auprc"] = np.divide(area, n_pos, where=both, out=_nans(n_pos))
    return out


def threshold_metrics(
    y: BoolArray, predicted: BoolArray, weights: FloatArray
) -> dict[str, FloatArray]:
    """Confusion-matrix ratios of each weight column; NaN where a ratio's denominator is 0."""
    tp = weights[y & predicted].sum(axis=0)
    fp = weights[~y & predicted].sum(axis=0)
    fn = weights[y & ~predicted].sum(axis=0)
    tn = weights.sum(axis=0) - tp - fp - fn
    return {
        "accuracy": _ratio(tp + tn, tp + tn + fp + fn),
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "ppv": _ratio(tp, tp + fp),
        "npv": _ratio(tn, tn + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
    }


def _ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    return np.divide(num, den, where=den > 0, out=_nans(den))


def _nans(like: FloatArray) -> FloatArray:
    return np.full(like.shape, np.nan)


def resample_weights(
    n: int, codes: IntArray | None, n_boot: int, seed: int
) -> Iterator[FloatArray]:
    """Chunks of bootstrap weights, shape (n, chunk): how often each image is drawn.

    With patient ``codes``, patients are drawn with replacement and each draw brings all of that
    patient's images (a cluster bootstrap); otherwise images are drawn. The chunks depend only
    on (n, codes, n_boot, seed), so a seed reproduces the intervals exactly.
    """
    rng = np.random.default_rng(seed)
    units = n if codes is None else int(codes.max()) + 1
    chunk = max(1, min(n_boot, _CHUNK_CELLS // max(n, units)))
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        draws = rng.integers(0, units, size=(b, units))
        # Cell (unit, column) of a (units, b) matrix, counted with one bincount.
        flat = (draws * b + np.arange(b)[:, None]).ravel()
        counts = np.bincount(flat, minlength=units * b).reshape(units, b).astype(np.float64)
        yield counts if codes is None else counts[codes]
        done += b


@dataclass(frozen=True)
class Interval:
    """A percentile bootstrap interval and how many resamples could not be used.

    ``skipped`` counts resamples on which the metric is undefined (e.g. no positive image for
    sensitivity, a single class for AUROC); they are left out rather than counted as 0 or 1.
    ``low``/``high`` are None when fewer than two resamples were usable.
    """

    low: float | None
    high: float | None
    n_boot: int
    skipped: int


def bootstrap(
    y: BoolArray,
    p: FloatArray,
    metrics: Sequence[MetricName],
    *,
    threshold: float | None = None,
    codes: IntArray | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, Interval]:
    """Intervals for several named metrics, all computed on the same resamples."""
    check_bootstrap_args(n_boot, alpha)
    wanted_ranking = [m for m in metrics if m in RANKING]
    wanted_threshold = [m for m in metrics if m in AT_THRESHOLD]
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {', '.join(METRICS)}")
    if wanted_threshold and (threshold is None or not np.isfinite(threshold)):
        raise ValueError(f"{', '.join(wanted_threshold)} need a finite threshold, got {threshold}")
    if wanted_ranking:
        # Work in score order throughout, so no resample's weights need reordering.
        order = np.argsort(-p, kind="stable")
        y, p = y[order], p[order]
        codes = None if codes is None else codes[order]
    ranked = Ranked.of(y, p) if wanted_ranking else None
    predicted = p >= threshold if threshold is not None else None
    parts: dict[str, list[FloatArray]] = {m: [] for m in metrics}
    # a bar for a person at a terminal (disable=None: off when stderr is not one)
    with tqdm(total=n_boot, desc=f"bootstrap ({y.size} images)", unit="resample", leave=False,
              disable=None) as bar:  # fmt: skip
        for weights in resample_weights(y.size, codes, n_boot, seed):
            values: dict[str, FloatArray] = {}
            if ranked is not None:
                values.update(ranking_metrics(ranked, weights, auprc="auprc" in metrics))
            if predicted is not None and wanted_threshold:
                values.update(threshold_metrics(y, predicted, weights))
            for m in metrics:
                parts[m].append(values[m])
            bar.update(weights.shape[1])
    return {m: interval_of(np.concatenate(parts[m]), n_boot, alpha, m) for m in metrics}


def interval_of(values: FloatArray, n_boot: int, alpha: float, name: str) -> Interval:
    usable = values[~np.isnan(values)]
    skipped = n_boot - usable.size
    if skipped:
        log.info(
            "bootstrap %s: skipped %d of %d resamples (metric undefined)", name, skipped, n_boot
        )
    if usable.size < 2:
        return Interval(None, None, n_boot, skipped)
    low, high = np.quantile(usable, [alpha / 2, 1 - alpha / 2])
    return Interval(float(low), float(high), n_boot, skipped)


def check_bootstrap_args(n_boot: int, alpha: float) -> None:
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
