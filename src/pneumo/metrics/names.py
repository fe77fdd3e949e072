"""The metrics pneumo reports, named once: their keys, their order and how people read them."""

from __future__ import annotations

from typing import Literal

RankingMetric = Literal["auroc", "auprc"]
ThresholdMetric = Literal["sensitivity", "specificity", "ppv", "npv", "accuracy", "f1"]
MetricName = Literal[RankingMetric, ThresholdMetric]

RANKING: tuple[RankingMetric, ...] = ("auroc", "auprc")
# At the operating threshold, in the order reports list them.
AT_THRESHOLD: tuple[ThresholdMetric, ...] = (
    "sensitivity",
    "specificity",
    "ppv",
    "npv",
    "accuracy",
    "f1",
)
METRICS: tuple[MetricName, ...] = (*RANKING, *AT_THRESHOLD)
# What a model card carries (and a comparison or a promotion compares), in the card's order.
CARD_METRICS: tuple[MetricName, ...] = (
    "auroc",
    "auprc",
    "accuracy",
    "sensitivity",
    "specificity",
    "ppv",
    "npv",
)
# Logged to the MLflow run after an evaluation, as "<split>_<name>".
LOGGED: tuple[str, ...] = (*CARD_METRICS, "ece")

LABELS: dict[str, str] = {
    "auroc": "AUROC",
    "auprc": "AUPRC (average precision)",
    "sensitivity": "Sensitivity (recall)",
    "specificity": "Specificity",
    "ppv": "PPV (precision)",
    "npv": "NPV",
    "accuracy": "Accuracy",
    "f1": "F1",
}


def short_label(name: str) -> str:
    """The metric as a table row header: "AUROC", "PPV", "ECE"."""
    return name.upper()
