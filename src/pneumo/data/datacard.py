"""The data card: what a prepared dataset holds, per split, in numbers (JSON)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from pneumo import __version__
from pneumo.data import schema

MANIFEST_KEY_COLUMNS = (schema.IMAGE_ID, schema.SPLIT, schema.LABEL)


def manifest_hash(frame: pd.DataFrame) -> str:
    """A stable hash of what a model trained on this manifest saw (ids, splits, labels, content)."""
    cols = [c for c in (*MANIFEST_KEY_COLUMNS, schema.CONTENT_HASH) if c in frame]
    text = frame[cols].sort_values(schema.IMAGE_ID).to_csv(index=False, lineterminator="\n")
    return hashlib.sha256(text.encode()).hexdigest()


def _counts(frame: pd.DataFrame, column: str) -> dict[str, dict[str, int]]:
    values = frame[column].astype("object").where(frame[column].notna(), "unknown")
    table = pd.crosstab(frame[schema.SPLIT], values)
    return {
        str(split): {str(k): int(v) for k, v in row.items() if v} for split, row in table.iterrows()
    }


def _age_bands(frame: pd.DataFrame) -> pd.Series:
    bins = [-1] + [hi for _, _, hi in schema.AGE_BANDS]
    labels = [name for name, _, _ in schema.AGE_BANDS]
    bands = pd.cut(frame[schema.AGE], bins=bins, labels=labels).astype("object")
    return bands.where(bands.notna(), "unknown")


def build_card(
    frame: pd.DataFrame,
    *,
    dataset: dict[str, Any],
    mode: str,
    split_method: str,
    patient_grouped: bool,
    problems: dict[str, Any],
    notes: list[str],
    config: dict[str, Any],
    listed: int,
    undersampled: int = 0,
    near_duplicates: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``listed`` counts the images the source lists; ``totals.images`` those that are usable."""
    has_patients = bool(frame[schema.PATIENT_ID].notna().any())
    splits: dict[str, dict[str, Any]] = {}
    for split in schema.SPLITS:
        part = frame[frame[schema.SPLIT] == split]
        positives = int(part[schema.LABEL].sum())
        splits[split] = {
            "images": len(part),
            "patients": int(part[schema.PATIENT_ID].nunique()) if has_patients else None,
            "pneumonia": positives,
            "prevalence": round(positives / len(part), 4) if len(part) else None,
        }
    with_age = frame.assign(**{"age_band": _age_bands(frame)}) if schema.AGE in frame else frame
    findings_known = frame[list(schema.FINDINGS)].notna().all(axis=None)
    return {
        "dataset": dataset.get("name"),
        "source": dataset.get("source"),
        "layout": dataset.get("layout"),
        "location": dataset.get("location"),
        "mode": mode,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "pneumo_version": __version__,
        "manifest_hash": manifest_hash(frame),
        "totals": {
            "listed": listed,
            "quarantined": listed - len(frame) - undersampled,
            **({"undersampled_out": undersampled} if undersampled else {}),
            "images": len(frame),
            "patients": int(frame[schema.PATIENT_ID].nunique()) if has_patients else None,
            "pneumonia": int(frame[schema.LABEL].sum()),
        },
        "patient_grouped": patient_grouped,
        "split_method": split_method,
        "splits": splits,
        "by_label": _counts(
            frame.assign(lbl=frame[schema.LABEL].map({0: "normal", 1: "pneumonia"})), "lbl"
        ),
        "by_sex": _counts(frame, schema.SEX) if schema.SEX in frame else {},
        "by_view": _counts(frame, schema.VIEW) if schema.VIEW in frame else {},
        "by_age_band": _counts(with_age, "age_band") if "age_band" in with_age else {},
        "findings": ({f: int(frame[f].sum()) for f in schema.FINDINGS} if findings_known else None),
        "problems": problems,
        **({"near_duplicates": near_duplicates} if near_duplicates is not None else {}),
        "notes": notes,
        "config": config,
    }
