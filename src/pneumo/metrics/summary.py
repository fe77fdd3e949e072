"""Everything an evaluation report states about one split, as strict-JSON-ready values.

Confidence intervals are percentile bootstraps. When patient ids are known the resampling unit
is the patient: images of one patient are correlated, and resampling them independently would
report intervals that are too narrow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy.typing as npt

from pneumo.metrics.arrays import group_codes, probabilities
from pneumo.metrics.blocks import Boot, Split, metric_block, subgroup_table
from pneumo.metrics.calibration import brier, expected_calibration_error, reliability
from pneumo.metrics.curves import confusion_at, confusion_counts

ALPHA = 0.05  # 95 % intervals


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
    orders: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Everything the evaluation report states about one split, as strict-JSON-ready values.

    Every metric is ``{value, ci_low, ci_high}``; a value that is undefined on this split (e.g.
    AUROC with one class) is None with a ``reason``. ``n_boot=0`` skips the intervals.
    ``orders`` lists a subgroup's values in their natural order (see
    :func:`~pneumo.metrics.blocks.subgroup_table`).
    """
    labels, scores = probabilities(y, p)
    if n_boot < 0:
        raise ValueError(f"n_boot must be >= 0, got {n_boot}")
    codes = group_codes(groups, labels.size)
    n_pos = int(labels.sum())
    confusion_at(labels, scores, threshold)  # checks the threshold
    split, boot = Split(labels, scores, float(threshold), codes), Boot(n_boot, seed, alpha)
    block = metric_block(split, boot)
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
        "confusion": confusion_counts(labels, scores >= threshold),
        "ece": expected_calibration_error(labels, scores, n_bins),
        "brier": brier(labels, scores),
        "reliability": reliability(labels, scores, n_bins),
        "subgroups": {},
    }
    if subgroups:
        out["subgroups"] = subgroup_table(split, subgroups, boot, orders)
    return out
