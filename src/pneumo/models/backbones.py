"""Building a backbone: torchvision's model with a fresh ``in_chans`` stem and logit head."""

from __future__ import annotations

from typing import Literal

import torch
import torchvision  # type: ignore[import-untyped, unused-ignore]  # no py.typed
from torch import nn

from pneumo.errors import ConfigError, PneumoError
from pneumo.models.architectures import BackboneSpec, spec
from pneumo.models.weights import imagenet_state_dict, load_weights, read_state_dict
from pneumo.settings import Settings


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The stem convolution: the first ``Conv2d`` registered, for every torchvision backbone."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module
    raise PneumoError(f"{type(model).__name__} has no Conv2d layer")


def build_model(
    backbone: str,
    *,
    weights: str = "none",
    num_outputs: int = 1,
    in_chans: int = 1,
    dropout: float | None = None,
    settings: Settings | None = None,
) -> nn.Module:
    """A classifier returning logits ``(N, num_outputs)`` for images ``(N, in_chans, H, W)``.

    ``weights``: ``"none"`` (random; seed with ``torch.manual_seed`` first), ``"imagenet"``, or
    the path or ``s3://`` URL of a state dict (see :func:`load_weights`). ``dropout`` is the
    rate right before the final Linear; ``None`` keeps torchvision's default for the backbone
    (0.5 for VGG, 0.2 for EfficientNet/MobileNet, none for ResNet/DenseNet). Adaptive pooling
    in every backbone makes any input of 32 px or more work.
    """
    layout = spec(backbone)
    if num_outputs < 1 or in_chans < 1:
        raise ConfigError(f"num_outputs and in_chans must be >= 1, got {num_outputs}, {in_chans}")
    if dropout is not None and not 0.0 <= dropout < 1.0:
        raise ConfigError(f"dropout must be in [0, 1), got {dropout}")
    if not weights:
        raise ConfigError("weights is empty", hint="use none, imagenet, or a state-dict path/URL")
    model: nn.Module = torchvision.models.get_model(backbone, weights=None)
    _replace_stem(model, layout, in_chans)
    _replace_head(model, layout, num_outputs, dropout)
    if weights == "imagenet":
        source = f"ImageNet weights ({backbone})"
        load_weights(model, backbone, imagenet_state_dict(backbone), source=source)
    elif weights != "none":
        load_weights(model, backbone, read_state_dict(weights, settings), source=weights)
    return model


def _set(model: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, child = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, child, module)


def _pair(values: tuple[int, ...]) -> tuple[int, int]:
    return values[0], values[1]


def _replace_stem(model: nn.Module, backbone: BackboneSpec, in_chans: int) -> None:
    old = model.get_submodule(backbone.stem)
    assert isinstance(old, nn.Conv2d) and old is first_conv(model)
    assert isinstance(old.padding, tuple)  # torchvision stems use explicit padding
    new = nn.Conv2d(
        in_chans,
        old.out_channels,
        _pair(old.kernel_size),
        _pair(old.stride),
        _pair(old.padding),
        _pair(old.dilation),
        old.groups,
        bias=old.bias is not None,
    )
    mode: Literal["fan_in", "fan_out"] = "fan_in" if backbone.fan_in else "fan_out"
    with torch.no_grad():
        nn.init.kaiming_normal_(new.weight, mode=mode, nonlinearity="relu")
        if new.bias is not None:
            nn.init.zeros_(new.bias)
    _set(model, backbone.stem, new)


def _replace_head(
    model: nn.Module, backbone: BackboneSpec, num_outputs: int, dropout: float | None
) -> None:
    if backbone.wrap is not None:
        old = model.get_submodule(backbone.wrap)
        assert isinstance(old, nn.Linear)
        slot: nn.Module = nn.Dropout(dropout) if dropout else nn.Identity()
        _set(model, backbone.wrap, nn.Sequential(slot, nn.Linear(old.in_features, num_outputs)))
        return
    old = model.get_submodule(backbone.head)
    assert isinstance(old, nn.Linear)
    _set(model, backbone.head, nn.Linear(old.in_features, num_outputs))
    drop = model.get_submodule(backbone.dropout)
    assert isinstance(drop, nn.Dropout)
    if dropout is not None:
        drop.p = dropout
