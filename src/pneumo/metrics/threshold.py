"""The operating threshold, chosen on the validation split and then frozen.

Choosing the threshold on the split being reported would tune it to that split's noise and
overstate sensitivity and specificity; the caller chooses it here on validation predictions and
applies it unchanged to the test split. Candidate thresholds are the validation scores
themselves (an image is positive when ``p >= threshold``), as in sklearn's ``roc_curve``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from pneumo.metrics.curves import roc_curve

Method = Literal["youden", "sensitivity"]
METHODS: tuple[str, ...] = get_args(Method)
DEFAULT_TARGET = 0.9
# Tolerance on the sensitivity target: 9/10 must count as meeting 0.9 despite rounding.
_EPS = 1e-12
_RULE = re.compile(r"^\s*(youden|sensitivity)\s*(?::\s*([0-9]*\.?[0-9]+)\s*(%?)\s*)?$", re.I)


@dataclass(frozen=True)
class Threshold:
    """A threshold and what it achieved on the validation split it was chosen on."""

    value: float
    method: Method
    target: float | None  # the sensitivity target; None for Youden
    val_sensitivity: float
    val_specificity: float
    n_val: int = 0

    def describe(self) -> str:
        """One line for a report, e.g. "Youden's J on validation (sensitivity 0.91 / ...)"."""
        how = (
            "Youden's J (max sensitivity + specificity - 1)"
            if self.method == "youden"
            else f"highest threshold with sensitivity >= {self.target:.2f}"
        )
        return (
            f"{how} on the validation split (n={self.n_val}): "
            f"val sensitivity {self.val_sensitivity:.3f} / specificity {self.val_specificity:.3f}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "chosen_on": "val"}


def choose_threshold(
    y_val: npt.ArrayLike,
    p_val: npt.ArrayLike,
    method: Method = "youden",
    target: float | None = DEFAULT_TARGET,
) -> Threshold:
    """The threshold given by ``method`` on validation labels and scores.

    "youden" maximises sensitivity + specificity - 1; among equal maxima the highest threshold
    wins (fewest false positives for the same J). "sensitivity" takes the highest threshold whose
    validation sensitivity is at least ``target`` (0.9 when None), i.e. the best specificity
    that keeps the sensitivity promise.
    """
    if method not in METHODS:
        raise ValueError(f"unknown threshold method {method!r}; use one of {', '.join(METHODS)}")
    labels = np.asarray(y_val)
    n_pos = int(np.count_nonzero(labels)) if labels.ndim == 1 else -1
    if labels.ndim == 1 and labels.size and n_pos in (0, labels.size):
        raise ValueError(
            f"cannot choose a threshold: all {labels.size} validation labels are "
            f"{'positive' if n_pos else 'negative'}; the validation split needs both classes"
        )
    fpr, tpr, thresholds = roc_curve(y_val, p_val)
    # Skip the leading +inf: "call nothing positive" is not a usable operating point.
    fpr, tpr, thresholds = fpr[1:], tpr[1:], thresholds[1:]
    if method == "youden":
        index = int(np.argmax(tpr - fpr))
        chosen_target = None
    else:
        chosen_target = DEFAULT_TARGET if target is None else float(target)
        if not 0.0 < chosen_target <= 1.0:
            raise ValueError(f"sensitivity target must lie in (0, 1], got {chosen_target}")
        # tpr rises as the threshold falls, and the last threshold reaches tpr = 1.
        index = int(np.argmax(tpr >= chosen_target - _EPS))
    return Threshold(
        value=float(thresholds[index]),
        method=method,
        target=chosen_target,
        val_sensitivity=float(tpr[index]),
        val_specificity=float(1.0 - fpr[index]),
        n_val=int(labels.size),
    )


def parse_threshold_rule(rule: str) -> tuple[Method, float | None]:
    """("youden", None) or ("sensitivity", target) from a config string.

    Accepts "youden", "sensitivity" (target 0.9), "sensitivity:0.90" and "sensitivity:90%".
    """
    match = _RULE.match(rule) if isinstance(rule, str) else None
    if match is None:
        raise ValueError(
            f"bad threshold rule {rule!r}: use 'youden' or 'sensitivity:<target>', "
            "e.g. 'sensitivity:0.90'"
        )
    method = match.group(1).lower()
    if method == "youden":
        if match.group(2) is not None:
            raise ValueError(f"bad threshold rule {rule!r}: 'youden' takes no target")
        return "youden", None
    if match.group(2) is None:
        return "sensitivity", DEFAULT_TARGET
    target = float(match.group(2)) / (100.0 if match.group(3) else 1.0)
    if not 0.0 < target <= 1.0:
        raise ValueError(
            f"bad threshold rule {rule!r}: the sensitivity target must lie in (0, 1], "
            "e.g. 'sensitivity:0.90' or 'sensitivity:90%'"
        )
    return "sensitivity", target
