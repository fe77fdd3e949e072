"""What ``pneumo monitor`` reports, computed from the records: drift window by window, the
labelled performance over time, and the data-quality counts. Numpy and pandas only.

Records are cut into consecutive windows of ``window`` images per model version (in time
order; a last, partial window of at least half the size is kept), and each window is tested
against that version's drift reference as the service tests its live window. Labels are joined
to records by (request id, index) across replicas, and the labelled predictions cut into
windows the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pneumo.monitoring.baseline import DriftReference
from pneumo.monitoring.detector import window_results
from pneumo.monitoring.ground_truth import labelled_metrics


@dataclass(frozen=True)
class Timeline:
    windows: pd.DataFrame  # version, start, end, images, p_<test>, drift_<test>
    performance: pd.DataFrame  # version, start, end, images, positives, auroc, sensitivity, …
    quality: dict[str, Any]  # counts: records, refused, by pixel mode, labels joined/unmatched
    versions: dict[str, bool] = field(default_factory=dict)  # version → has a drift reference
    alpha: float = 0.01


def _cuts(n: int, window: int) -> list[tuple[int, int]]:
    cuts = [(s, min(s + window, n)) for s in range(0, n, window)]
    if len(cuts) > 1 and cuts[-1][1] - cuts[-1][0] < window / 2:
        cuts = cuts[:-1]  # a short tail window says little
    return [c for c in cuts if c[1] - c[0] >= 2]


def window_tests(
    part: pd.DataFrame, ref: DriftReference, seed: int, permutations: int
) -> dict[str, float]:
    """The p-value of each drift test of one window of records against ``ref``
    (:func:`~pneumo.monitoring.detector.window_results`, as the service tests its live window)."""
    emb = [np.asarray(e, np.float64) for e in part["embedding"] if e is not None and len(e)]
    stats = {
        name: pd.to_numeric(part[name], errors="coerce").dropna().to_numpy(np.float64)
        for name in ref.stats
        if name in part
    }
    probabilities = part["probability"].to_numpy(np.float64)
    results = window_results(ref, emb, probabilities, stats, seed, permutations)
    return {r.name: r.p_value for r in results}


def drift_windows(
    records: pd.DataFrame, references: Mapping[str, DriftReference | None], window: int,
    alpha: float, permutations: int = 500,
) -> pd.DataFrame:  # fmt: skip
    rows = []
    for version, part in records.groupby("model_version", sort=False):
        ref = references.get(str(version))
        part = part.sort_values("time", kind="stable")
        for i, (a, b) in enumerate(_cuts(len(part), window)):
            chunk = part.iloc[a:b]
            row: dict[str, Any] = {
                "version": str(version), "start": float(chunk["time"].iloc[0]),
                "end": float(chunk["time"].iloc[-1]), "images": b - a,
            }  # fmt: skip
            if ref is not None:
                for test, p in window_tests(chunk, ref, i, permutations).items():
                    row[f"p_{test}"], row[f"drift_{test}"] = p, bool(p < alpha)
            rows.append(row)
    return pd.DataFrame(rows)


def labelled(records: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Records with their label (the last one received per image), labelled ones only."""
    if labels.empty or records.empty:
        return pd.DataFrame(columns=[*records.columns, "label"])
    last = labels.sort_values("time").drop_duplicates(["request_id", "index"], keep="last")
    joined = records.merge(last[["request_id", "index", "label"]], on=["request_id", "index"])
    return joined[~joined["refused"].astype(bool)]


def performance(joined: pd.DataFrame, thresholds: Mapping[str, float], window: int) -> pd.DataFrame:
    rows = []
    for version, part in joined.groupby("model_version", sort=False):
        part = part.sort_values("time", kind="stable")
        for a, b in _cuts(len(part), window):
            chunk = part.iloc[a:b]
            y = chunk["label"].to_numpy(np.int64)
            p = chunk["probability"].to_numpy(np.float64)
            m = labelled_metrics(y, p, thresholds.get(str(version), 0.5))
            rows.append({
                "version": str(version), "start": float(chunk["time"].iloc[0]),
                "end": float(chunk["time"].iloc[-1]), "images": len(y), "positives": m[0],
                "auroc": m[2], "sensitivity": m[3], "specificity": m[4],
            })  # fmt: skip
    return pd.DataFrame(rows)


def quality(records: pd.DataFrame, labels: pd.DataFrame, joined: pd.DataFrame) -> dict[str, Any]:
    modes: dict[str, int] = {}
    refused = 0
    if len(records):
        counts = records["src_mode"].fillna("pixels (no file)").value_counts()
        modes = {str(k): int(v) for k, v in counts.items()}
        refused = int(records["refused"].astype(bool).sum())
    return {
        "records": len(records),
        "replicas": sorted(records["replica"].unique()) if len(records) else [],
        "refused_out_of_distribution": refused, "pixel_modes": modes,
        "labels": len(labels), "labels_joined": len(joined),
    }  # fmt: skip


def build_timeline(
    records: pd.DataFrame, labels: pd.DataFrame,
    references: Mapping[str, DriftReference | None], thresholds: Mapping[str, float],
    window: int = 50, label_window: int = 50, alpha: float = 0.01, permutations: int = 500,
) -> Timeline:  # fmt: skip
    joined = labelled(records, labels)
    return Timeline(
        drift_windows(records, references, window, alpha, permutations),
        performance(joined, thresholds, label_window),
        quality(records, labels, joined),
        {str(v): references.get(str(v)) is not None for v in records.get("model_version", [])},
        alpha,
    )
