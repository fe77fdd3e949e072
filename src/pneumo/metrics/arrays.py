"""Input checks shared by the evaluation modules.

A metric computed on a label column that holds 2s, or on probabilities with a NaN in them, is a
silently wrong number in a report; every public function therefore checks its arrays once, here,
and says which array is wrong.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def labels_and_scores(y: npt.ArrayLike, p: npt.ArrayLike) -> tuple[BoolArray, FloatArray]:
    """(labels as bool, scores as float64), both 1-D and the same length.

    Scores need not be probabilities for the ranking metrics, but they must be finite: a NaN
    sorts arbitrarily and would change AUROC without an error.
    """
    labels = np.asarray(y)
    scores = np.asarray(p, dtype=np.float64)
    if labels.ndim != 1 or scores.ndim != 1:
        raise ValueError(f"y and p must be 1-D, got shapes {labels.shape} and {scores.shape}")
    if labels.shape != scores.shape:
        raise ValueError(f"y and p differ in length: {labels.shape[0]} != {scores.shape[0]}")
    if labels.size == 0:
        raise ValueError("y and p are empty: nothing to evaluate")
    if labels.dtype != np.bool_:
        if not np.issubdtype(labels.dtype, np.number):
            raise ValueError(f"y must hold 0/1 labels, got dtype {labels.dtype}")
        bad = (labels != 0) & (labels != 1)
        if bad.any():
            raise ValueError(f"y must hold 0/1 labels; found {np.unique(labels[bad])[:5].tolist()}")
    if not np.isfinite(scores).all():
        raise ValueError(f"p holds {int((~np.isfinite(scores)).sum())} non-finite value(s)")
    return labels.astype(np.bool_), scores


def probabilities(y: npt.ArrayLike, p: npt.ArrayLike) -> tuple[BoolArray, FloatArray]:
    """Like :func:`labels_and_scores`, and the scores must lie in [0, 1] (calibration needs it)."""
    labels, scores = labels_and_scores(y, p)
    if scores.min() < 0.0 or scores.max() > 1.0:
        raise ValueError(
            f"p must be probabilities in [0, 1], got range [{scores.min():.4g}, {scores.max():.4g}]"
        )
    return labels, scores


def group_codes(groups: npt.ArrayLike | None, n: int) -> IntArray | None:
    """Dense 0..G-1 codes of the patient ids, or None when ids are unknown.

    A missing id (None/NaN) would silently become its own giant "patient"; refuse it instead,
    so the caller decides between dropping the ids and fixing the data.
    """
    if groups is None:
        return None
    ids = np.asarray(groups)
    if ids.shape != (n,):
        raise ValueError(f"groups must have one id per image ({n}), got shape {ids.shape}")
    if ids.dtype == object:
        missing = np.fromiter((_is_missing(v) for v in ids), dtype=np.bool_, count=n)
        if missing.any():
            raise ValueError(f"groups holds {int(missing.sum())} missing patient id(s)")
        ids = ids.astype(str)
    elif np.issubdtype(ids.dtype, np.floating) and np.isnan(ids).any():
        raise ValueError(f"groups holds {int(np.isnan(ids).sum())} missing patient id(s)")
    _, codes = np.unique(ids, return_inverse=True)
    return codes.astype(np.int64)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)
