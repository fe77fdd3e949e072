"""pytorch-grad-cam on a pneumo model: the reference the exported activation maps must match."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn


class _DenseNetWithItsReLU(nn.Module):
    """torchvision's DenseNet applies its last ReLU functionally; Grad-CAM needs it in a module
    to read the features after it (as pneumo does). Same forward pass."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.features = nn.Sequential(model.get_submodule("features"), nn.ReLU())
        self.classifier = model.get_submodule("classifier")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        logits: torch.Tensor = self.classifier(torch.flatten(pooled, 1))
        return logits


def gradcam(model: nn.Module, backbone: str, images: torch.Tensor) -> np.ndarray:
    """pytorch-grad-cam's GradCAM maps (N, S, S) in [0, 1] for the logit of ``model`` (eval mode)
    on normalised ``images`` (N, 1, S, S), at the last convolutional features."""
    from pytorch_grad_cam import GradCAM  # type: ignore[import-untyped]
    from pytorch_grad_cam.utils.model_targets import (  # type: ignore[import-untyped]
        ClassifierOutputTarget,
    )

    target: Any = model
    if backbone.startswith("resnet"):
        layer = model.layer4
    elif backbone == "densenet121":
        target = _DenseNetWithItsReLU(model).eval()
        layer = target.features
    else:
        layer = model.features
    with GradCAM(model=target, target_layers=[layer]) as cam:
        maps = cam(input_tensor=images, targets=[ClassifierOutputTarget(0)] * len(images))
    return np.asarray(maps, dtype=np.float64)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


NIH_RECIPE = [
    "train.backbone=resnet18", "train.epochs=8", "train.lr=0.001", "train.workers=0",
    "train.checkpoint_every=1000",
]  # fmt: skip
NIH_SIZE = 128  # a 4 x 4 grid of features from ResNet-18


def train_on_nih_sample(root: Path, data: Path) -> str:
    """The NIH sample (300 real radiographs) prepared at 128 px, a ResNet-18 trained on it from
    scratch (8 epochs, about a minute on two cores), registered and promoted champion in
    ``root``; returns the run id."""
    env = {**os.environ, "PNEUMO_ROOT": str(root)}

    def pneumo(*args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "pneumo", *args], env=env, capture_output=True, text=True,
            timeout=900,
        )  # fmt: skip
        assert proc.returncode == 0, f"pneumo {' '.join(args)}:\n{proc.stderr[-3000:]}"
        return proc.stdout

    pneumo("fetch", "local", str(data / "nih-sample"))
    pneumo("prepare", "-d", "nih-sample", f"prepare.image_size={NIH_SIZE}")
    pneumo("train", "-d", "nih-sample", "--quiet", *NIH_RECIPE)
    runs = sorted((root / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
    pneumo("register", runs[-1].name)
    pneumo("promote", "--reason", "activation-map tests")
    return runs[-1].name
