"""`pneumo monitor`'s arithmetic: windows in time order per version, labels joined by request
id and index (the last label wins, refused images left out), performance per labelled window."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pneumo.metrics.curves import roc_auc
from pneumo.monitoring.timeline import build_timeline


def frames(n: int = 30) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    records = pd.DataFrame({
        "time": np.arange(n, dtype=float)[::-1], "model_version": ["1"] * 20 + ["2"] * (n - 20),
        "request_id": [f"r{i}" for i in range(n)], "index": 0, "probability": rng.random(n),
        "refused": [i == 3 for i in range(n)], "embedding": [None] * n, "src_mode": "L",
        "mean_intensity": rng.normal(120, 5, n), "replica": "a",
    })  # fmt: skip
    labels = pd.DataFrame({
        "time": [1.0] * 12 + [2.0], "request_id": [f"r{i}" for i in range(12)] + ["r0"],
        "index": 0, "label": [i % 2 for i in range(12)] + [1],
    })  # fmt: skip
    return records, labels


def test_windows_labels_and_quality() -> None:
    records, labels = frames()
    t = build_timeline(records, labels, {"1": None, "2": None}, {"1": 0.5}, window=8,
                       label_window=20)  # fmt: skip
    # version 1: 20 records -> 8, 8 and a tail of 4 (kept: half a window); version 2: 10 -> 8
    assert list(zip(t.windows["version"], t.windows["images"], strict=True)) == [
        ("1", 8), ("1", 8), ("1", 4), ("2", 8),
    ]  # fmt: skip
    first = t.windows[t.windows["version"] == "1"]
    assert list(first["start"]) == [10.0, 18.0, 26.0]  # time order (records came newest first)
    perf = t.performance.iloc[0]
    joined = [i for i in range(12) if i != 3]  # r3 was refused: no answer, no label counted
    y = [1 if i == 0 else i % 2 for i in joined]  # r0's last label is 1
    p = records.set_index("request_id").loc[[f"r{i}" for i in joined], "probability"]
    assert perf["images"] == 11 and perf["auroc"] == pytest.approx(roc_auc(y, p.to_numpy()))
    assert t.quality["labels"] == 13 and t.quality["labels_joined"] == 11
    assert t.quality["refused_out_of_distribution"] == 1 and t.quality["pixel_modes"] == {"L": 30}
