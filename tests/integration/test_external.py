"""`pneumo evaluate MODEL --external DATASET`: a registered version scored torch-free and the run
behind it scored by PyTorch agree; the carried threshold is used; images the model trained on,
and re-saved copies of them, are left out and counted; the result lands on the version."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from pneumo.cli import app
from pneumo.config import EvaluateConfig, SyntheticConfig
from pneumo.data.sources import synthetic
from pneumo.errors import DataError
from pneumo.packaging.external_results import results_in
from pneumo.packaging.registry import ModelRegistry, ModelURI
from pneumo.settings import Settings
from pneumo.stages.external import evaluate_external
from tests.conftest import REPO, gradient, write_nih_dataset
from tests.integration.test_release_compat import release_package
from tests.serving_support import NO_TORCH, Registered

pytestmark = pytest.mark.slow
LABELS = "Data_Entry_2017.csv"
EXCLUDED = {"seen_identical": 2, "seen_twins": 2, "unusable": 1, "duplicates": 1}


def external_dataset(registered: Registered, dest: Path) -> Path:
    """20 new synthetic films, plus 2 byte copies and 2 resized re-saves of the model's training
    images, a truncated file and a byte duplicate of one of the new films."""
    synthetic.generate(
        str(dest),
        SyntheticConfig(
            patients=20, max_images_per_patient=1, image_size=64, prevalence=0.5, seed=7
        ),
        settings=Settings(root=str(dest.parent)),
        progress=False,
    )
    labels = pd.read_csv(dest / LABELS)
    train_labels = pd.read_csv(registered.root / "data" / "tiny" / LABELS).set_index("Image Index")
    manifest = pd.read_parquet(registered.root / "prepared" / "tiny" / "manifest.parquet")
    rows = []
    for i, path in enumerate(manifest.query("split == 'train'")["path"].head(4)):
        name = f"copy_{i}.png"
        if i < 2:
            shutil.copy(path, dest / "images" / name)
        else:
            Image.open(path).convert("L").resize((56, 56)).save(dest / "images" / name)
        rows.append({**train_labels.loc[Path(path).name].to_dict(), "Image Index": name})
    first = labels["Image Index"].iloc[0]
    shutil.copy(dest / "images" / first, dest / "images" / "again.png")
    (dest / "images" / "cut.png").write_bytes((dest / "images" / first).read_bytes()[:300])
    for name in ("again.png", "cut.png"):
        rows.append({**labels.iloc[0].to_dict(), "Image Index": name})
    extra = pd.DataFrame(rows)
    extra["Patient ID"] = range(9000, 9000 + len(extra))
    pd.concat([labels, extra], ignore_index=True).to_csv(dest / LABELS, index=False)
    return dest


def _metrics(folder: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((folder / "metrics.json").read_text())
    return document


def test_a_version_without_torch_and_its_run_agree(registered: Registered, tmp_path: Path) -> None:
    data = external_dataset(registered, tmp_path / "elsewhere")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PNEUMO_")}
    env.update(registered.env, PYTHONPATH=str(REPO / "src"))
    cmd = [sys.executable, "-c", NO_TORCH, "evaluate", "models:/pneumonia@champion",
           "--external", str(data), "evaluate.n_boot=100"]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "2 identical to and 2 re-encoded copies" in proc.stdout
    settings = Settings(root=str(registered.root))
    reg = ModelRegistry(settings)
    version = reg.resolve(ModelURI.parse("models:/pneumonia@champion"))
    card = reg.card(version)
    onnx_out = registered.root / "evaluations" / f"pneumonia-{version}" / "external-elsewhere"
    onnx = _metrics(onnx_out)
    assert onnx["threshold"] == card.operating_threshold()
    assert onnx["exclusions"] == {
        **EXCLUDED,
        "checked_against": "training_images.json of the package (tiny)",
        "training_images_known": onnx["exclusions"]["training_images_known"],
    }
    assert onnx["n"] == 20 and onnx["threshold_rule"]["carried"] is True
    expected = onnx["expected"]["test"]
    assert expected["auroc"]["value"] == card.to_dict()["metrics"]["auroc"]["value"]
    report = (onnx_out / "report.md").read_text()
    assert "## Expected vs observed" in report and "applied here unchanged" in report
    tags = results_in(reg.info(version).tags)
    assert tags["elsewhere"]["n"] == 20 and tags["elsewhere"]["excluded"]["seen_twins"] == 2

    runner = CliRunner()
    got = runner.invoke(app, ["evaluate", registered.run_id, "--external", str(data),
                              "evaluate.n_boot=0"], env=registered.env)  # fmt: skip
    assert got.exit_code == 0, got.output
    run_out = registered.root / "runs" / registered.run_id / "external-elsewhere"
    torch = _metrics(run_out)
    assert torch["threshold"] == onnx["threshold"]
    ours = {**onnx["exclusions"], "checked_against": "the manifest of 'tiny'"}
    assert torch["exclusions"] == ours
    a = pd.read_parquet(onnx_out / "predictions.parquet").set_index("image_id")
    b = pd.read_parquet(run_out / "predictions.parquet").set_index("image_id")
    assert sorted(a.index) == sorted(b.index) and len(a) == 20
    np.testing.assert_allclose(a["probability"], b.loc[a.index, "probability"], atol=1e-4)
    # Both paths show their worst errors with maps: ONNX Runtime's from the model file's outputs,
    # PyTorch's from the same cut of the network.
    for folder, document in ((onnx_out, onnx), (run_out, torch)):
        errors = document["error_analysis"]
        assert errors["maps"] and (folder / "errors.png").is_file()
        assert errors["counts"]["false positive"] == document["confusion"]["fp"]
    assert onnx["error_analysis"]["counts"] == torch["error_analysis"]["counts"]
    history = runner.invoke(app, ["promote", "--history"], env=registered.env)
    assert "external elsewhere: AUROC" in history.output, history.output


def test_an_old_package_says_it_was_not_checked_and_splits_are_chosen(tmp_path: Path) -> None:
    release_package(tmp_path / "package")
    data = tmp_path / "kermany"
    for split, count in (("train", 4), ("test", 6)):
        for i in range(count):
            cls = "PNEUMONIA" if i % 2 else "NORMAL"
            name = f"person{i}_bacteria_{i}.jpeg" if i % 2 else f"IM-{i:04d}-0001.jpeg"
            (data / split / cls).mkdir(parents=True, exist_ok=True)
            Image.fromarray(gradient(80, seed=10 * i + len(split))).save(data / split / cls / name)
    cfg = EvaluateConfig(n_boot=0)
    result = evaluate_external(str(tmp_path / "package"), str(data), cfg, split="test")
    assert result.metrics["n"] == 6
    assert result.metrics["exclusions"]["checked_against"] is None
    assert (
        "Not checked against the model's training images"
        in Path(result.files["report.md"]).read_text()
    )
    assert "NOT checked" in result.summary() and result.recorded == []
    assert (Path(result.out) / "errors.png").is_file()
    assert "no activation maps" in Path(result.files["report.md"]).read_text()
    with pytest.raises(DataError, match=r"no split 'val' \(it has: test, train\)"):
        evaluate_external(str(tmp_path / "package"), str(data), cfg, split="val")


def test_external_and_dataset_are_exclusive(tmp_path: Path) -> None:
    write_nih_dataset(tmp_path / "nih", 3)
    got = CliRunner().invoke(app, ["evaluate", "last", "--external", str(tmp_path / "nih"),
                                   "--dataset", "x"])  # fmt: skip
    assert got.exit_code != 0 and "not both" in got.output
