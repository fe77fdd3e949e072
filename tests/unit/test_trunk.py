"""The model cut at its last convolution: the same logits, and Grad-CAM weights equal to
autograd's spatial mean of d logit / d activations, for every backbone's head."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pneumo.errors import PneumoError
from pneumo.models.architectures import BACKBONES
from pneumo.models.backbones import build_model
from pneumo.models.trunk import Split, check_split

HEAVY = {"vgg16", "resnet50", "densenet121"}


@pytest.mark.parametrize(
    "backbone", [pytest.param(b, marks=pytest.mark.slow) if b in HEAVY else b for b in BACKBONES]
)
def test_alpha_is_autograds_mean_gradient(backbone: str) -> None:
    torch.manual_seed(0)
    model = build_model(backbone).eval()
    split = Split(model, backbone).eval()
    check_split(split, model, 64)
    x = torch.randn(3, 1, 64, 64)
    logit, embedding, maps, alpha = split(x)
    torch.testing.assert_close(logit, model(x), rtol=1e-5, atol=1e-5)
    # autograd through the same layers, the activations kept as a leaf
    features = split.trunk(x)
    leaf = (torch.relu(features) if split.relu else features).detach().requires_grad_(True)
    h = torch.flatten(split.pool(leaf), 1)
    for layer in split.body:
        h = layer(h)
    split.head(h).sum().backward()
    assert leaf.grad is not None
    torch.testing.assert_close(alpha, leaf.grad.mean(dim=(2, 3)), rtol=1e-4, atol=1e-9)
    torch.testing.assert_close(maps, leaf.detach())
    assert embedding.shape == (3, split.head.in_features)


def test_a_head_without_an_exact_gradient_is_refused() -> None:
    model = build_model("resnet18")
    model.fc = nn.Sequential(nn.Linear(512, 8), nn.Sigmoid(), nn.Linear(8, 1))
    with pytest.raises(PneumoError, match="no exact Grad-CAM through a Sigmoid"):
        Split(model, "resnet18")


def test_a_split_that_disagrees_with_the_model_is_refused() -> None:
    model = build_model("resnet18").eval()
    split = Split(model, "resnet18")
    split.pool = nn.AdaptiveMaxPool2d(1)  # not what ResNet's forward does: the logits move
    with pytest.raises(PneumoError, match="differs from the model"):
        check_split(split, model, 64)
