"""Layering rules: the data half and the service-side modules never import torch or MLflow,
and importing pneumo does no work (no folders, no files)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

LIGHT = [
    "pneumo.cli",
    "pneumo.data.preparation",
    "pneumo.data.sources.remote",
    "pneumo.data.sources.synthetic",
    "pneumo.stages.eda",
    "pneumo.stages.fetch",
    "pneumo.stages.predict",
    "pneumo.stages.prepare",
    "pneumo.stages.promote",
    "pneumo.stages.report",
    "pneumo.preprocess",
    "pneumo.metrics.curves",
    "pneumo.metrics.summary",
    "pneumo.metrics.threshold",
    "pneumo.reports.evaluation",
    "pneumo.packaging.modelcard",
    "pneumo.packaging.package",
    "pneumo.packaging.registry",
    "pneumo.packaging.promotion",
    "pneumo.models.meta",
    "pneumo.serving.app",
    "pneumo.serving.main",
    "pneumo.serving.routes",
    "pneumo.serving.source",
]


def test_light_modules_import_neither_torch_nor_mlflow(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in LIGHT)
        + "heavy = sorted(m for m in ('torch', 'torchvision', 'mlflow') if m in sys.modules)\n"
        + "print(','.join(heavy))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""
    assert list(tmp_path.iterdir()) == [], "importing pneumo must not create files"
