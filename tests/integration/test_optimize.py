"""`pneumo optimize`: an int8 variant registered past its gate, recorded on its card and served
torch-free; a variant made to fail (calibrated on blank images) refused, nothing registered."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
import requests

from pneumo.config import OptimizeConfig
from pneumo.errors import PneumoError
from pneumo.packaging.registry import ModelRegistry
from pneumo.settings import Settings
from pneumo.stages import optimize as stage
from tests.conftest import REPO
from tests.serving_support import (
    NO_TORCH,
    Registered,
    build_registered,
    pytest_env,
    running_service,
)

pytestmark = pytest.mark.slow
CHAMPION = "models:/pneumonia@champion"


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Registered:
    """A registry of its own: optimize adds versions the shared one's tests do not expect."""
    return build_registered(tmp_path_factory.mktemp("optimize") / "root")


def test_an_int8_variant_is_registered_past_its_gate_and_served(
    own: Registered, tmp_path: Path
) -> None:
    with pytest_env(PNEUMO_ROOT=str(own.root)):
        settings = Settings()
        result = stage.optimize(CHAMPION, OptimizeConfig(n_boot=100), settings)
        reg = ModelRegistry(settings)
        info = reg.info(result.version)
        card = reg.card(result.version).to_dict()
        challenger = reg.alias("challenger")
    assert result.quantized_from == "1" and challenger == result.version
    assert info.tags["variant"] == "int8" and info.tags["quantized_from"] == "1"
    gate = card["quantization"]["gate"]
    assert gate["auroc_int8"] >= gate["auroc_float32"] - 0.005 and gate["agreement"] >= 0.99
    assert gate["speedup"] > 1.0 and gate["throughput_int8"] > gate["throughput_float32"]
    assert card["metrics"]["auroc"]["value"] == pytest.approx(gate["auroc_int8"], abs=1e-6)
    assert card["model"]["variant"] == "int8" and card["quantization"]["from_version"] == "1"
    assert card["quantization"]["calibration"]["split"] == "train"
    page = (Path(result.folder) / "card.html").read_text()
    assert "Quantisation" in page and "auroc_int8" in page and "float32" in page
    model = onnx.load(str(Path(result.folder) / "model.onnx"))
    ops = {node.op_type for node in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops  # QDQ: integer kernels at run time
    assert [o.name for o in model.graph.output] == [
        "probability",
        "embedding",
        "activations",
        "activation_weights",
    ]
    # Served like any version, torch-free: the same decisions as float32 on the test films.
    out = tmp_path / "int8.parquet"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PNEUMO_")}
    env.update(own.env, PYTHONPATH=str(REPO / "src"))
    files = sorted(own.test_images)
    cmd = [sys.executable, "-c", NO_TORCH, "predict", *files, "--model",
           f"models:/pneumonia/{result.version}", "--out", str(out), "-q"]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_parquet(out).set_index("file")
    float32 = np.array([own.test_images[f] for f in files])
    int8 = table.loc[files, "probability"].to_numpy()
    assert np.abs(int8 - float32).max() < 0.05 and table["error"].isna().all()
    assert (table["version"] == result.version).all()
    # And by the service, with its map, through the same loader (checksum and verification).
    uri = f"models:/pneumonia/{result.version}"
    with running_service(own.env, tmp_path / "serve", uri, poll_seconds="0") as service:
        ready = requests.get(f"{service.url}/readyz", timeout=10).json()
        with Path(files[0]).open("rb") as f:
            answer = requests.post(
                f"{service.url}/v1/explain", files={"file": ("x.png", f)}, timeout=60
            )
    assert ready["model"]["version"] == result.version
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["probability"] == pytest.approx(table.loc[files[0], "probability"], abs=1e-6)
    assert body["explanation"]["overlay_png"]


def test_the_gate_refuses_a_variant_calibrated_on_blank_images(
    own: Registered, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = stage._pixels

    def blank(*args: object) -> tuple[object, np.ndarray]:
        rows, pixels = real(*args)  # type: ignore[arg-type]
        return rows, np.zeros_like(pixels) if args[1] == "train" else pixels

    monkeypatch.setattr(stage, "_pixels", blank)
    with pytest_env(PNEUMO_ROOT=str(own.root)):
        settings = Settings()
        reg = ModelRegistry(settings)
        before = [v.version for v in reg.versions()]
        with pytest.raises(PneumoError, match="fails its gate") as refused:
            stage.optimize(CHAMPION, OptimizeConfig(n_boot=0), settings)
        assert [v.version for v in reg.versions()] == before
    assert "nothing was registered" in str(refused.value)
