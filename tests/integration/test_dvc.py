"""dvc.yaml: `dvc repro` runs the cycle, a second repro does nothing, a changed parameter reruns
only the stages downstream of it."""

from __future__ import annotations

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


def test_repro_twice_is_a_no_op_and_a_parameter_reruns_only_downstream(tmp_path: Path) -> None:
    pytest.importorskip("dvc")
    work = tmp_path / "pipeline"
    work.mkdir()
    shutil.copy(REPO / "dvc.yaml", work / "dvc.yaml")
    _write_params(work)
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=work, check=True)

    stages = ["fetch", "prepare", "eda", "train", "evaluate", "register"]
    assert _repro(work) == stages
    for out in (
        "pipeline/train/best.pt",
        "pipeline/evaluate/metrics.json",
        "pipeline/model/model.onnx",
        "pipeline/model/card.json",
        "pipeline/eda.html",
    ):
        assert (work / out).is_file(), out  # fmt: skip
    assert not (work / "pipeline/train/model").exists()

    assert _repro(work) == []

    small_boot = {"n_boot": 60}
    _write_params(work, evaluate=small_boot)  # type: ignore[arg-type]
    assert _repro(work) == ["evaluate", "register"]
