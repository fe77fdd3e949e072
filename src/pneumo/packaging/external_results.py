"""External results kept on a registered version: what it scored on data it never saw.

`pneumo evaluate MODEL --external DATASET` records a compact summary on the version as the tag
``external/<dataset>[-<split>]`` (JSON), beside the report files it logs to the version's run,
so `pneumo promote --history` and `pneumo report` show them without the report folder. This
module imports neither torch nor MLflow.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

TAG_PREFIX = "external/"
SHOWN = ("auroc", "accuracy", "sensitivity", "specificity")


def _triple(entry: Any) -> list[float | None] | None:
    if not isinstance(entry, dict) or entry.get("value") is None:
        return None
    return [entry.get("value"), entry.get("ci_low"), entry.get("ci_high")]


def result_record(metrics: dict[str, Any], dataset: str, split: str, report: str) -> dict[str, Any]:
    """The tag's document: the headline figures with their intervals, and what was left out."""
    return {
        "dataset": dataset,
        "split": split,
        "n": metrics.get("n"),
        "positives": metrics.get("positives"),
        "threshold": metrics.get("threshold"),
        **{key: _triple(metrics.get(key)) for key in SHOWN},
        "excluded": metrics.get("exclusions", {}),
        "evaluated": datetime.now(UTC).isoformat(timespec="seconds"),
        "report": report,
    }


def tag_of(label: str, record: dict[str, Any]) -> tuple[str, str]:
    return f"{TAG_PREFIX}{label}", json.dumps(record, sort_keys=True, separators=(",", ":"))


def results_in(tags: dict[str, str]) -> dict[str, dict[str, Any]]:
    """{label: record} of a version's tags, in label order; unreadable tags are skipped."""
    out: dict[str, dict[str, Any]] = {}
    for key in sorted(k for k in tags if k.startswith(TAG_PREFIX)):
        try:
            record = json.loads(tags[key])
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            out[key.removeprefix(TAG_PREFIX)] = record
    return out


def one_line(label: str, record: dict[str, Any]) -> str:
    """``kermany-test: AUROC 0.965 (0.951-0.978), accuracy 0.825, … (n=618)``."""
    parts = []
    for key in SHOWN:
        triple = record.get(key)
        if not triple or triple[0] is None:
            continue
        low, high = triple[1], triple[2]
        ci = f" ({low:.3f}-{high:.3f})" if low is not None and high is not None else ""
        parts.append(f"{'AUROC' if key == 'auroc' else key} {triple[0]:.3f}{ci}")
    n = record.get("n")
    return f"{label}: " + ", ".join(parts) + (f" (n={n:,})" if isinstance(n, int) else "")


ROW_HEADER = ["model", "external data", "images", "AUROC", "accuracy", "sensitivity", "specificity",
              "left out (seen in training)"]  # fmt: skip


def _cell(triple: Any) -> str:
    if not triple or triple[0] is None:
        return "-"
    low, high = triple[1], triple[2]
    return f"{triple[0]:.3f}" + (f" ({low:.3f}-{high:.3f})" if low is not None else "")


def result_rows(owner: str, results: dict[str, dict[str, Any]]) -> list[list[str]]:
    """One table row per external result of ``owner`` (a model's label)."""
    rows = []
    for label, record in results.items():
        left = record.get("excluded") or {}
        seen = (left.get("seen_identical") or 0) + (left.get("seen_twins") or 0)
        checked = f"{seen:,}" if left.get("checked_against") else "not checked"
        n = record.get("n")
        rows.append([
            owner, label, f"{n:,}" if isinstance(n, int) else "-",
            *(_cell(record.get(k)) for k in SHOWN), checked,
        ])  # fmt: skip
    return rows
