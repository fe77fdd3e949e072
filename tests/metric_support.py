"""Bootstrap intervals of one metric at a time, for the tests.

The library computes every interval of a report at once (:func:`pneumo.metrics.resampling.
bootstrap`); these wrappers take one metric, by name or as any ``metric(y, p)`` callable (the
slow path, one call per resample), so the tests can check the vectorised kernels against
sklearn on each materialised resample.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from pneumo.metrics import resampling
from pneumo.metrics.arrays import BoolArray, FloatArray, IntArray, group_codes, labels_and_scores
from pneumo.metrics.names import MetricName
from pneumo.metrics.resampling import Interval

log = logging.getLogger(__name__)

MetricFn = Callable[[BoolArray, FloatArray], float | None]
ALPHA = 0.05


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
        return bootstrap_callable(
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


def bootstrap_callable(
    y: BoolArray,
    p: FloatArray,
    metric: MetricFn,
    *,
    codes: IntArray | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> Interval:
    """The slow path for an arbitrary ``metric(y, p)``: one call per resample.

    Resamples with a single class are skipped (most metrics of interest need both), as are
    those where the metric returns None or NaN.
    """
    resampling.check_bootstrap_args(n_boot, alpha)
    index = np.arange(y.size)
    values: list[float] = []
    for weights in resampling.resample_weights(y.size, codes, n_boot, seed):
        for column in weights.T:
            take = np.repeat(index, column.astype(np.int64))
            ys = y[take]
            if ys.all() or not ys.any():
                values.append(np.nan)
                continue
            value = metric(ys, p[take])
            values.append(np.nan if value is None else float(value))
    name = getattr(metric, "__name__", "metric")
    return resampling.interval_of(np.asarray(values, dtype=np.float64), n_boot, alpha, name)
