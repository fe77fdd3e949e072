"""`/v1/explain` from a torch-free `pneumo serve` on a model trained on real radiographs: its maps
equal pytorch-grad-cam's on the PyTorch checkpoint (NIH PNGs and Kermany JPEGs), the page shows
the overlay, and the maps fail the randomisation check as they must (they depend on the weights).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import requests
import torch
from PIL import Image

from pneumo.explain.agreement import ssim
from pneumo.explain.cam import ActivationMap, activation_maps
from pneumo.models import checkpoint
from pneumo.models.backbones import build_model
from pneumo.models.trunk import Split
from pneumo.preprocess import PreprocessSpec
from pneumo.serving.inputs import prepare_upload
from tests.browser import chromium_path, upload_in_browser
from tests.cam_support import NIH_SIZE, gradcam, pearson, train_on_nih_sample
from tests.conftest import REPO
from tests.serving_support import running_service

pytestmark = pytest.mark.slow


@dataclass
class Explaining:
    url: str
    model: torch.nn.Module
    spec: PreprocessSpec
    films: list[Path]


@pytest.fixture(scope="module")
def explaining(
    tmp_path_factory: pytest.TempPathFactory, real_data_module: Path
) -> Iterator[Explaining]:
    root = tmp_path_factory.mktemp("explain") / "root"
    run = train_on_nih_sample(root, real_data_module)
    ckpt = checkpoint.load(str(root / "runs" / run / "best.pt"), trusted=True)
    model = checkpoint.restore_model(ckpt).eval()
    nih = sorted((real_data_module / "nih-sample" / "images").glob("*.png"))[-4:]
    kermany = sorted((real_data_module / "kermany-224").rglob("*.jpeg"))[:4]
    # An NIH model finds children's films out of its distribution: score them anyway here.
    env = {"PNEUMO_ROOT": str(root)}
    workdir = tmp_path_factory.mktemp("explain-serve") / "cwd"
    with running_service(env, workdir, input_ood_threshold="2") as service:
        yield Explaining(service.url, model, ckpt.meta.preprocess, nih + kermany)


@pytest.fixture(scope="module")
def real_data_module() -> Path:
    import os

    path = Path(os.environ.get("PNEUMO_TEST_DATA", REPO.parent / "shared" / "data"))
    if not (path / "nih-sample").is_dir() or not (path / "kermany-224").is_dir():
        pytest.skip(f"real data not found at {path} (set PNEUMO_TEST_DATA)")
    return path


def _post(url: str, path: Path) -> requests.Response:
    with path.open("rb") as f:
        return requests.post(url, files={"file": (path.name, f)}, timeout=60)


def test_explain_maps_equal_pytorch_grad_cam_on_real_films(explaining: Explaining) -> None:
    for film in explaining.films:
        answer = _post(f"{explaining.url}/v1/explain", film)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        plain = _post(f"{explaining.url}/v1/predict", film).json()
        assert "explanation" not in plain  # the default path carries no map
        assert body["probability"] == pytest.approx(plain["probability"], abs=1e-6)
        shown = body["explanation"]
        grid = np.asarray(shown["grid"], np.float32)
        assert grid.shape == (4, 4) and grid.min() >= 0 and grid.max() == pytest.approx(1.0)
        pixels = prepare_upload(film.read_bytes(), explaining.spec, film.name)
        images = torch.from_numpy(explaining.spec.normalize(pixels))
        theirs = gradcam(explaining.model, "resnet18", images)[0]
        ours = ActivationMap(grid).upsampled(NIH_SIZE)
        assert pearson(ours, theirs) >= 0.999, film.name
        overlay = Image.open(io.BytesIO(base64.b64decode(shown["overlay_png"])))
        assert overlay.format == "PNG" and overlay.size == (256, 256) and overlay.mode == "RGB"
        assert shown["overlay_size"] == 256 and len(shown["peak_at"]) == 2


def test_predict_with_explain_true_carries_the_same_map(explaining: Explaining) -> None:
    film = explaining.films[0]
    with_map = _post(f"{explaining.url}/v1/predict?explain=true", film).json()
    explained = _post(f"{explaining.url}/v1/explain", film).json()
    assert with_map["explanation"]["grid"] == explained["explanation"]["grid"]
    assert with_map["probability"] == explained["probability"]
    # overlay=false: the same map as numbers, no picture (a client that draws its own)
    for route in ("/v1/explain?overlay=false", "/v1/predict?explain=true&overlay=false"):
        bare = _post(f"{explaining.url}{route}", film).json()
        assert bare["explanation"]["grid"] == explained["explanation"]["grid"], route
        assert bare["explanation"]["overlay_png"] is None and bare["explanation"]["peak_at"]


def test_a_broken_upload_to_explain_is_a_clear_415(explaining: Explaining, tmp_path: Path) -> None:
    fake = tmp_path / "notes.png"
    fake.write_bytes(b"not an image at all")
    answer = _post(f"{explaining.url}/v1/explain", fake)
    assert answer.status_code == 415, answer.text
    assert "notes.png" in answer.json()["detail"] or "file" in answer.json()["detail"]


def test_maps_of_the_trained_model_differ_from_a_reinitialised_ones(
    explaining: Explaining,
) -> None:
    # Adebayo et al. (2018): a map that stays when the weights are randomised explains nothing.
    def maps(model: torch.nn.Module) -> list[np.ndarray]:
        split = Split(model.eval(), "resnet18").eval()
        with torch.inference_mode():
            _, _, acts, weights = split(images)
        return [cam.upsampled(NIH_SIZE) for cam in activation_maps(acts.numpy(), weights.numpy())]

    pixels = np.concatenate(
        [prepare_upload(f.read_bytes(), explaining.spec, f.name) for f in explaining.films]
    )
    images = torch.from_numpy(explaining.spec.normalize(pixels))
    torch.manual_seed(1)
    random = build_model("resnet18")
    similarity = [ssim(a, b) for a, b in zip(maps(explaining.model), maps(random), strict=True)]
    assert float(np.mean(similarity)) < 0.5, similarity


@pytest.mark.skipif(chromium_path() is None, reason="Chromium is not installed")
def test_the_page_shows_the_overlay(explaining: Explaining) -> None:
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    screenshot = REPO / "test-output" / "screenshots" / "web-page-activation-map.png"
    result = upload_in_browser(explaining.url, explaining.films[0], screenshot, explain=True)
    assert result["state"] == "done" and result["error"] == "", result
    assert result["overlay"] == "256"
    with Image.open(screenshot) as shot:
        rgb = np.asarray(shot.convert("RGB")).astype(int)
    # the jet colours of the map are on the page (the rest of it is gray, white and blue)
    warm = (rgb[..., 0] > 180) & (rgb[..., 2] < 90) & (rgb[..., 1] < 200)
    assert warm.sum() > 500
