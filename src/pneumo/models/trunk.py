"""A backbone's forward pass cut at its last convolutional features, with exact Grad-CAM weights.

:class:`Split` runs a pneumo model as torchvision does (in eval mode) but keeps what the class
activation maps need: the last convolutional features ``A`` (N, C, h, w), after their
activation, and Grad-CAM's channel weights ``alpha`` (N, C), the spatial mean of
d logit / d A (Selvaraju et al., 2017). ``alpha`` is computed by the chain rule written as forward
operations on the classifier's own weights, so it exports to ONNX (no autograd in the graph,
no copy of the weights) and is exact for every head:

- a pooled linear head (ResNet, DenseNet, EfficientNet): d logit / d pooled = w, and
  Grad-CAM is CAM (Zhou et al., 2016);
- VGG16's three Linear layers with ReLUs and MobileNetV3's two with a Hardswish: the gradient
  of a piecewise linear (ReLU) or piecewise quadratic (Hardswish) function at this input,
  layer by layer; dropout is the identity in eval mode.

The adaptive average pooling between ``A`` and the head averages each output cell over a bin
of ``A``'s cells, so the spatial mean of d logit / d A is the sum of d logit / d pooled over the
output cells divided by h * w, whatever the bins. The map itself, ReLU(sum_k alpha_k A_k), is
computed in numpy by :mod:`pneumo.explain` at serving time.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from pneumo.errors import PneumoError
from pneumo.models.architectures import spec

_PASS = (nn.Dropout, nn.Identity)  # identity in eval mode


class Split(nn.Module):
    """``model`` (a pneumo backbone, in eval mode) as (logit, embedding, activations, alpha)."""

    def __init__(self, model: nn.Module, backbone: str) -> None:
        super().__init__()
        layout = spec(backbone)
        self.trunk = nn.Sequential(*(model.get_submodule(path) for path in layout.trunk))
        self.relu = layout.relu
        self.pool: nn.Module = (
            model.get_submodule(layout.pool) if layout.pool else nn.AdaptiveAvgPool2d(1)
        )
        classifier = model.get_submodule(layout.classifier)
        layers = list(classifier.children()) if isinstance(classifier, nn.Sequential) else []
        if not layers or not isinstance(layers[-1], nn.Linear) or layers[-1].out_features != 1:
            raise PneumoError(
                f"{backbone}: {layout.classifier} is not a Sequential ending in a 1-output Linear"
            )
        for layer in layers[:-1]:
            if not isinstance(layer, (nn.Linear, nn.ReLU, nn.Hardswish, *_PASS)):
                raise PneumoError(
                    f"{backbone}: no exact Grad-CAM through a {type(layer).__name__} layer"
                )
        self.body = nn.ModuleList(layers[:-1])
        self.head = layers[-1]

    def forward(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalised images (N, 1, S, S) → logit (N, 1), embedding (N, D) (the input of the
        final Linear), activations (N, C, h, w) and Grad-CAM's channel weights (N, C)."""
        maps = self.trunk(x)
        if self.relu:
            maps = functional.relu(maps)
        pooled = self.pool(maps)
        h = torch.flatten(pooled, 1)
        before: list[torch.Tensor] = []  # the inputs of the activation layers, in order
        for layer in self.body:
            if isinstance(layer, (nn.ReLU, nn.Hardswish)):
                before.append(h)
            if not isinstance(layer, _PASS):
                h = layer(h)
        logit = self.head(h)
        grad = self.head.weight.expand(h.shape[0], -1)  # d logit / d embedding
        for layer in reversed(self.body):
            if isinstance(layer, nn.Linear):
                grad = grad @ layer.weight
            elif isinstance(layer, nn.ReLU):
                grad = grad * (before.pop() > 0).to(grad.dtype)
            elif isinstance(layer, nn.Hardswish):
                grad = grad * _hardswish_slope(before.pop())
        cells = grad.reshape(grad.shape[0], pooled.shape[1], -1).sum(dim=2)
        alpha = cells / float(maps.shape[2] * maps.shape[3])
        return logit, h, maps, alpha


def _hardswish_slope(x: torch.Tensor) -> torch.Tensor:
    """d hardswish / dx as torch's backward has it: 0 below -3, x/3 + 1/2 up to 3, 1 above."""
    inside = x / 3.0 + 0.5
    return torch.where(x < -3.0, torch.zeros_like(x), torch.where(x <= 3.0, inside, 1.0))


def check_split(split: Split, model: nn.Module, size: int) -> None:
    """Refuse a split that does not reproduce ``model``'s logits (a torchvision change)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1, size, size, generator=generator)
    with torch.inference_mode():
        want = model(x)
        got = split(x)[0]
    if not torch.allclose(want, got, rtol=1e-4, atol=1e-4):
        worst = float((want - got).abs().max())
        raise PneumoError(
            f"the model cut at its last convolution differs from the model (max |Δlogit| "
            f"{worst:.2e}); torchvision's forward pass changed?"
        )
