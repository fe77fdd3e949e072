"""The external evaluation's sections of the report: expected vs observed, what was left out.

"Expected" is what the model's own data said: its validation split (which chose the threshold)
and, when it has one, its own test split. "Observed" is this dataset, at the same threshold.
A drop from expected to observed is the shift a new population or acquisition costs.
"""

from __future__ import annotations

from typing import Any

from pneumo.metrics.names import LABELS
from pneumo.render.markdown import table
from pneumo.render.text import number, with_interval

SHOWN = ("auroc", "accuracy", "sensitivity", "specificity")
CI_SEP = " - "
# A drop larger than this from the model's own test figure earns a caveat.
NOTABLE_DROP = 0.05


def _cell(entry: Any) -> str:
    if not isinstance(entry, dict) or entry.get("value") is None:
        return "-"
    return with_interval(entry, sep=CI_SEP)


def _column_name(own: dict[str, Any], split: str) -> str:
    n = own.get("n")
    where = f"{own.get('dataset') or 'its data'}, {split}"
    return f"Expected: {where}" + (f" (n={number(n)})" if n else "")


def expected_vs_observed(summary: dict[str, Any]) -> list[str]:
    expected: dict[str, dict[str, Any]] = summary.get("expected") or {}
    lines = ["## Expected vs observed", ""]
    lines += [
        "The model's own figures (the validation split chose its threshold, so its "
        "threshold metrics there are optimistic; its own test split is the fair expectation) "
        "beside this dataset's, all at the threshold the model carries.",
        "",
    ]
    header = ["Metric", *(_column_name(own, split) for split, own in expected.items())]
    header.append(f"Observed: this dataset (n={number(summary['n'])})")
    rows = [
        [LABELS[key], *(_cell(own.get(key)) for own in expected.values()), _cell(summary.get(key))]
        for key in SHOWN
    ]
    return [*lines, table(header, rows), ""]


def left_out(summary: dict[str, Any], listed: int | None) -> list[str]:
    left = summary.get("exclusions") or {}
    lines = ["## Images left out", ""]
    rows = [
        ["identical (same bytes) to a training or validation image", left.get("seen_identical")],
        ["a re-encoded or resized copy of one (perceptual hash)", left.get("seen_twins")],
        ["could not be decoded", left.get("unusable")],
        ["byte-identical duplicates within this dataset (first kept)", left.get("duplicates")],
    ]
    if listed is not None:
        rows.insert(0, ["images listed", listed])
    lines += [table(["", "Images"], [[k, number(v)] for k, v in rows]), ""]
    source = left.get("checked_against")
    if source:
        known = number(left.get("training_images_known"))
        lines += [f"Checked against {known} training and validation images, from {source}.", ""]
    else:
        lines += [
            "**Not checked against the model's training images**: none are known here (a "
            "package registered before training_images.json, and its dataset is not prepared "
            "on this machine). Images it trained on may be among these.",
            "",
        ]
    return lines


def external_caveats(summary: dict[str, Any]) -> list[str]:
    out = [
        "The threshold is the model's own, chosen on its validation split; it was not re-chosen "
        "on this data, so sensitivity and specificity here are what a deployment would see."
    ]
    test = (summary.get("expected") or {}).get("test") or {}
    drops = []
    for key in SHOWN:
        own, seen = (test.get(key) or {}).get("value"), (summary.get(key) or {}).get("value")
        if own is not None and seen is not None and own - seen > NOTABLE_DROP:
            drops.append(f"{LABELS[key]} {number(own)} → {number(seen)}")
    if drops:
        out.append(
            "Notably below the model's own test split: " + "; ".join(drops) + ". The model does "
            "not transfer unchanged to this population or acquisition."
        )
    return out
