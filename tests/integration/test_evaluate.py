"""`pneumo evaluate` on a trained run: files written, AUROC equals scikit-learn's, and the
operating threshold comes from the validation split."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score

from pneumo.config import load_config
from pneumo.data.prepared import load_prepared
from pneumo.metrics.threshold import choose_threshold
from pneumo.models import checkpoint
from pneumo.models.backbones import build_model
from pneumo.settings import get_settings
from pneumo.stages.evaluate import evaluate
from pneumo.training.fit import train
from pneumo.training.scoring import score_splits
from tests.conftest import TINY_TRAIN, tiny_prepared


def test_evaluate_a_run(pneumo_root: Path) -> None:
    entry = tiny_prepared(patients=40)
    run = train(entry, load_config(None, TINY_TRAIN), progress=False)
    result = evaluate(run.run_id, load_config(None, ["evaluate.n_boot=200"]).evaluate)
    out = Path(result.out)
    for name in (
        "metrics.json",
        "report.md",
        "roc.png",
        "pr.png",
        "reliability.png",
        "confusion.png",
        "errors.png",
    ):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    preds = pd.read_parquet(out / "predictions.parquet")
    manifest = pd.read_parquet(pneumo_root / "prepared" / entry.name / "manifest.parquet")
    assert sorted(preds["image_id"]) == sorted(manifest.query("split == 'test'")["image_id"])
    assert (
        abs(metrics["auroc"]["value"] - roc_auc_score(preds["label"], preds["probability"])) < 1e-12
    )
    assert metrics["auroc"]["ci_low"] <= metrics["auroc"]["value"] <= metrics["auroc"]["ci_high"]

    # The threshold is the Youden point of the *validation* predictions, recomputed here.
    best = checkpoint.load(run.best)
    model = build_model("resnet18", num_outputs=1)
    model.load_state_dict(best.weights)
    settings = get_settings()
    data = load_prepared(entry, settings)
    val = score_splits(model, data, ("val",), best.meta.preprocess, settings)["val"]
    assert metrics["threshold"] == choose_threshold(val.labels, val.probabilities, "youden").value
    assert metrics["threshold_rule"]["chosen_on"] == "val"
    report = (out / "report.md").read_text()
    assert "Youden" in report and "chosen on the **val** split" in report

    # The error analysis shows the most confident mistakes at that threshold, with maps.
    errors = metrics["error_analysis"]
    wrong = preds[(preds["probability"] >= metrics["threshold"]) != (preds["label"] == 1)]
    healthy = wrong[wrong["label"] == 0].sort_values("probability", ascending=False)
    shown = [row["image_id"] for row in errors["shown"] if row["kind"] == "false positive"]
    assert shown == healthy["image_id"].head(4).tolist()
    assert errors["counts"]["false positive"] == len(healthy) == metrics["confusion"]["fp"]
    assert errors["counts"]["false negative"] == metrics["confusion"]["fn"]
    assert errors["maps"] and all(0 < r < 1 and 0 < c < 1 for r, c in
                                  (row["peak_at"] for row in errors["shown"]))  # fmt: skip
    assert "## Error analysis" in report and "![Most confident errors](errors.png)" in report


def test_evaluate_cli_with_sensitivity_rule(pneumo_root: Path) -> None:
    entry = tiny_prepared(patients=40)
    train(entry, load_config(None, [*TINY_TRAIN, "train.epochs=1"]), progress=False)
    rule = ["evaluate.threshold=sensitivity:0.9", "evaluate.n_boot=100", "--split", "val"]
    cmd = [sys.executable, "-m", "pneumo", "evaluate", "last", *rule]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    assert "AUROC" in proc.stdout and "sensitivity" in proc.stdout
    metrics = json.loads(next((pneumo_root / "runs").glob("*/eval-val/metrics.json")).read_text())
    assert metrics["threshold_rule"]["method"] == "sensitivity"
    assert metrics["threshold_rule"]["val_sensitivity"] >= 0.9
