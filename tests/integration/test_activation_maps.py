"""The activation maps model.onnx gives, computed in numpy, against pytorch-grad-cam on the
PyTorch model, for every backbone, on real NIH PNGs and Kermany JPEGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pneumo.data.decode.image import decode
from pneumo.explain.cam import activation_maps
from pneumo.models.architectures import BACKBONES, spec
from pneumo.models.backbones import build_model
from pneumo.onnx_runtime import onnxruntime
from pneumo.packaging.export import export_onnx
from pneumo.packaging.signature import OUTPUTS, ModelInput
from pneumo.preprocess import ImageSpec, PreprocessSpec
from tests.cam_support import gradcam, pearson

HEAVY = {"vgg16", "resnet50", "densenet121"}
SIZE = 128  # a 4 x 4 grid of features for every backbone


def _films(real_data: Path) -> list[Path]:
    nih = sorted((real_data / "nih-sample" / "images").glob("*.png"))[:3]
    kermany = sorted((real_data / "kermany-224").rglob("*.jpeg"))[:3]
    return nih + kermany


@pytest.mark.parametrize(
    "backbone", [pytest.param(b, marks=pytest.mark.slow) if b in HEAVY else b for b in BACKBONES]
)
def test_onnx_maps_equal_pytorch_grad_cams(backbone: str, real_data: Path) -> None:
    torch.manual_seed(0)
    model = build_model(backbone).eval()
    with torch.no_grad():  # a random head may switch every region off; make some count
        head = model.get_submodule(spec(backbone).head)
        assert isinstance(head, torch.nn.Linear)
        head.weight.abs_()
    image_spec = PreprocessSpec(ImageSpec(size=SIZE), mean=0.45, std=0.25)
    films = _films(real_data)
    pixels = np.stack([decode(p.read_bytes(), image_spec.image).pixels for p in films])

    onnx = export_onnx(model, image_spec, 18, backbone)
    session = onnxruntime().InferenceSession(onnx, providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == list(OUTPUTS)
    probability, _, acts, weights = session.run(None, ModelInput.of(session, image_spec)(pixels))
    ours = [cam.upsampled(SIZE) for cam in activation_maps(acts, weights)]
    theirs = gradcam(model, backbone, torch.from_numpy(image_spec.normalize(pixels)))
    with torch.no_grad():
        want = torch.sigmoid(model(torch.from_numpy(image_spec.normalize(pixels)))).numpy()
    np.testing.assert_allclose(probability, want, atol=1e-4)
    for film, mine, ref in zip(films, ours, theirs, strict=True):
        assert mine.max() > 0.95 and np.ptp(ref) > 0, film.name  # a map, not a flat one
        assert pearson(mine, ref) >= 0.999, film.name
