"""pytorch-grad-cam on a pneumo model: the reference the exported activation maps must match."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn


class _DenseNetWithItsReLU(nn.Module):
    """torchvision's DenseNet applies its last ReLU functionally; Grad-CAM needs it in a module
    to read the features after it (as pneumo does). Same forward pass."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.features = nn.Sequential(model.features, nn.ReLU())
        self.classifier = model.classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(pooled, 1))


def gradcam(model: nn.Module, backbone: str, images: torch.Tensor) -> np.ndarray:
    """pytorch-grad-cam's GradCAM maps (N, S, S) in [0, 1] for the logit of ``model`` (eval mode)
    on normalised ``images`` (N, 1, S, S), at the last convolutional features."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

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
