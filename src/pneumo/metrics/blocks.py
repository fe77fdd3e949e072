"""Metric blocks (value + CI, or None + reason) for a whole split and for each subgroup.

A subgroup table is where an evaluation most easily overstates itself: a subgroup of seven
images, or one with no positive image, still yields numbers. Here such cells carry None and a
reason instead, and every other cell carries its own bootstrap interval, so a reader sees how
little a small subgroup says.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from pneumo.metrics import resampling
from pneumo.metrics.arrays import BoolArray, FloatArray, IntArray
from pneumo.metrics.curves import confusion_counts
from pneumo.metrics.names import AT_THRESHOLD, RANKING, MetricName

# Below this many images a subgroup gets counts and point ratios only: no AUROC, no intervals.
MIN_GROUP = 10
UNKNOWN = "unknown"
_UNDEFINED = {
    "sensitivity": "no positive images",
    "specificity": "no negative images",
    "ppv": "no image is called positive at this threshold",
    "npv": "no image is called negative at this threshold",
    "accuracy": "no images",
    "f1": "no positive images and none called positive",
}


@dataclass(frozen=True)
class Split:
    """The images being summarised: labels, scores, the operating threshold, patient codes."""

    y: BoolArray
    p: FloatArray
    threshold: float
    codes: IntArray | None  # dense patient codes, or None when patients are unknown

    def where(self, mask: BoolArray) -> Split:
        """The images under ``mask``, their patients re-coded densely."""
        codes = None if self.codes is None else np.unique(self.codes[mask], return_inverse=True)[1]
        return Split(self.y[mask], self.p[mask], self.threshold, codes)


@dataclass(frozen=True)
class Boot:
    """How the intervals are drawn: resamples (0: none), seed and 1 - confidence level."""

    n_boot: int
    seed: int
    alpha: float


def metric_block(
    split: Split,
    boot: Boot,
    *,
    small_reason: str | None = None,
    ranking: tuple[MetricName, ...] = RANKING,
) -> dict[str, Any]:
    """{metric: {value, ci_low, ci_high[, reason]}} plus ``skipped``: resamples left out.

    ``small_reason`` marks a subgroup too small for AUROC and intervals; its ratios are still
    given as points so that the counts can be checked.
    """
    y, p, threshold = split.y, split.p, split.threshold
    ones = np.ones((y.size, 1))
    ranked = resampling.Ranked.of(y, p)
    values = {
        k: v[0]
        for k, v in resampling.ranking_metrics(ranked, ones, auprc="auprc" in ranking).items()
    }
    values.update(
        {k: v[0] for k, v in resampling.threshold_metrics(y, p >= threshold, ones).items()}
    )
    n_pos = int(y.sum())
    one_class = f"all {y.size} images are {'positive' if n_pos else 'negative'}"
    block: dict[str, Any] = {}
    for name in ranking + AT_THRESHOLD:
        value = float(values[name])
        reason = None
        if name in ranking and small_reason:
            reason = small_reason
        elif np.isnan(value):
            reason = one_class if name in ranking else _UNDEFINED[name]
        block[name] = {
            "value": None if reason else value,
            "ci_low": None,
            "ci_high": None,
            **({"reason": reason} if reason else {}),
        }
    wanted = [m for m in ranking + AT_THRESHOLD if block[m]["value"] is not None]
    skipped: dict[str, int] = {}
    if boot.n_boot > 0 and wanted and not small_reason:
        intervals = resampling.bootstrap(
            y, p, wanted, threshold=threshold, codes=split.codes, n_boot=boot.n_boot,
            seed=boot.seed, alpha=boot.alpha,
        )  # fmt: skip
        for metric, interval in intervals.items():
            block[metric]["ci_low"], block[metric]["ci_high"] = interval.low, interval.high
            skipped[metric] = interval.skipped
    block["skipped"] = skipped
    return block


def subgroup_table(
    split: Split,
    subgroups: Mapping[str, npt.ArrayLike],
    boot: Boot,
    orders: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """{subgroup: {value: entry}}; missing values form an "unknown" group, listed last.

    ``orders`` gives a subgroup's values in their natural order (age bands by age); the values
    of other subgroups are listed alphabetically.
    """
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for name, column in subgroups.items():
        values = _as_labels(column, split.y.size, name)
        table[name] = {}
        for value in _ordered(values, (orders or {}).get(name, ())):
            table[name][value] = _entry(split.where(values == value), boot)
    return table


def _entry(split: Split, boot: Boot) -> dict[str, Any]:
    y, codes = split.y, split.codes
    n, n_pos = int(y.size), int(y.sum())
    reason = None
    if n < MIN_GROUP:
        reason = f"only {n} images, fewer than {MIN_GROUP}: no AUROC and no intervals"
    elif n_pos in (0, n):
        reason = f"{'no' if n_pos == 0 else 'only'} positive images: AUROC undefined"
    block = metric_block(
        split,
        boot,
        small_reason=reason if n < MIN_GROUP else None,
        # AUPRC moves with prevalence, which differs between subgroups: not compared here.
        ranking=("auroc",),
    )
    return {
        "n": n,
        "positives": n_pos,
        "prevalence": n_pos / n,
        "n_patients": None if codes is None else int(codes.max()) + 1,
        "confusion": confusion_counts(y, split.p >= split.threshold),
        "reason": reason,
        **block,
    }


def _as_labels(column: npt.ArrayLike, n: int, name: str) -> npt.NDArray[np.str_]:
    values = np.asarray(column, dtype=object)
    if values.shape != (n,):
        raise ValueError(f"subgroup {name!r} has shape {values.shape}, expected ({n},)")
    missing = ("", "nan", "none", "null", "<na>")
    labels = [
        UNKNOWN
        if v is None or (isinstance(v, float) and v != v) or str(v).lower() in missing
        else str(v)
        for v in values
    ]
    return np.asarray(labels, dtype=np.str_)


def _ordered(values: npt.NDArray[np.str_], order: Sequence[str]) -> list[str]:
    """The values in ``order`` when it names them all, else alphabetically; "unknown" last."""
    present = set(np.unique(values).tolist())
    if order and present - {UNKNOWN} <= set(order):
        known = [v for v in order if v in present]
    else:
        known = sorted(present - {UNKNOWN})
    return known + ([UNKNOWN] if UNKNOWN in present else [])
