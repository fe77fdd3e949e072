"""dvc.yaml: `dvc repro` runs the cycle, a second repro does nothing, a changed parameter reruns
only the stages downstream of it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def _repro(work: Path) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PNEUMO_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", "repro"], cwd=work, env=env,
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return re.findall(r"Running stage '([a-z]+)'", proc.stdout + proc.stderr)


def _write_params(work: Path, **changes: dict[str, object]) -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    small = {
        "synthetic": {"patients": 30, "image_size": 64},
        "prepare": {"image_size": 32},
        "train": {"epochs": 1, "batch_size": 16, "workers": 0},
        "evaluate": {"n_boot": 50},
    }
    for section, values in {**small, **changes}.items():
        params[section].update(values)
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _dvc(work: Path, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=work, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, (args, proc.stdout[-3000:], proc.stderr[-3000:])
    return proc.stdout


def _git(work: Path, *args: str) -> None:
    who = ["-c", "user.name=pneumo tests", "-c", "user.email=tests@127.0.0.1"]
    subprocess.run(["git", *who, *args], cwd=work, check=True, capture_output=True)


def test_repro_twice_is_a_no_op_and_a_parameter_reruns_only_downstream(tmp_path: Path) -> None:
    pytest.importorskip("dvc")
    work = tmp_path / "pipeline"
    work.mkdir()
    shutil.copy(REPO / "dvc.yaml", work / "dvc.yaml")
    shutil.copy(REPO / "pipeline.yaml", work / "pipeline.yaml")
    _write_params(work)
    _git(work, "init", "-q")
    _dvc(work, "init", "-q")

    stages = ["fetch", "prepare", "eda", "train", "evaluate", "register"]
    assert _repro(work) == stages
    for out in (
        "pipeline/train/best.pt",
        "pipeline/evaluate/metrics.json",
        "pipeline/model/model.onnx",
        "pipeline/model/card.json",
        "pipeline/eda.html",
        "dvc.lock",
    ):
        assert (work / out).is_file(), out  # fmt: skip
    assert not (work / "pipeline/train/model").exists()
    # the curated metric and the declared plots
    shown = json.loads(_dvc(work, "metrics", "show", "--json"))
    (headline,) = [
        values["data"]["pipeline/evaluate/headline.json"]["data"] for values in shown.values()
    ]
    assert set(headline) == {"auroc", "accuracy", "sensitivity", "specificity", "threshold",
                             "val_auroc"}, headline  # fmt: skip
    plots = json.loads(_dvc(work, "plots", "show", "--json"))["data"]
    for name, field in (("AUROC by epoch", "val_auroc"), ("Loss by epoch", "val_loss"),
                        ("ROC, test split", "tpr")):  # fmt: skip
        values = plots[name][0]["content"]["data"]["values"]
        assert values and all(field in row for row in values), (name, values[:2])
    _dvc(work, "plots", "show", "-o", "rendered")
    assert "ROC, test split" in (work / "rendered" / "index.html").read_text()
    _git(work, "add", "-A")
    _git(work, "commit", "-q", "-m", "first repro")

    assert _repro(work) == []

    _write_params(work, evaluate={"n_boot": 60, "threshold": "sensitivity:0.95"})
    assert _repro(work) == ["evaluate", "register"]
    diff = json.loads(_dvc(work, "metrics", "diff", "--json"))
    changed = diff["pipeline/evaluate/headline.json"]
    assert "threshold" in changed and changed["threshold"]["old"] != changed["threshold"]["new"]
    _dvc(work, "plots", "diff", "-o", "diffed")
    assert (work / "diffed" / "index.html").is_file()


def test_train_workflow_selects_dataset_and_config(tmp_path: Path) -> None:
    """.github/scripts/select-pipeline.sh (train.yml) retargets the DVC pipeline."""
    pytest.importorskip("dvc")
    for name in ("dvc.yaml", "pipeline.yaml", "params.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    (tmp_path / "configs").mkdir()
    shutil.copy(REPO / "configs" / "kermany.yaml", tmp_path / "configs" / "kermany.yaml")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    script = str(REPO / ".github" / "scripts" / "select-pipeline.sh")
    selected = {**env, "PNEUMO_DATASET": "kermany", "PNEUMO_CONFIG": "configs/kermany.yaml"}
    no_remote = subprocess.run(["bash", script], cwd=tmp_path, env=selected, capture_output=True)
    assert no_remote.returncode == 2 and b"no default DVC remote" in no_remote.stderr
    subprocess.run(
        [*dvc, "remote", "add", "-d", "store", "s3://bucket/pneumo"], cwd=tmp_path, check=True
    )
    subprocess.run(["bash", script], cwd=tmp_path, env=selected, check=True, capture_output=True)
    assert yaml.safe_load((tmp_path / "pipeline.yaml").read_text()) == {
        "dataset": "kermany", "fetch": "kermany --name kermany",
    }  # fmt: skip
    assert (tmp_path / "params.yaml").read_text() == (REPO / "configs" / "kermany.yaml").read_text()
    stages = subprocess.run(
        [*dvc, "stage", "list"], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "pneumo-work/data/kermany" in stages and "pneumo-work/prepared/kermany" in stages
    bad = {**env, "PNEUMO_DATASET": "mnist"}
    assert subprocess.run(["bash", script], cwd=tmp_path, env=bad).returncode == 2
