"""The backbones pneumo offers and where each torchvision model keeps its stem and head."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from pneumo.errors import ConfigError

BACKBONES: tuple[str, ...] = (
    "densenet121",
    "vgg16",
    "resnet18",
    "resnet50",
    "efficientnet_b0",
    "mobilenet_v3_large",
)

# ImageNet's per-channel means/stds (0.485, 0.456, 0.406) / (0.229, 0.224, 0.225), averaged:
# the statistics of the gray image that the summed stem sees as its RGB replica.
IMAGENET_GRAY_MEAN = 0.449
IMAGENET_GRAY_STD = 0.226


@dataclass(frozen=True)
class BackboneSpec:
    """Where a torchvision backbone keeps the parts pneumo replaces.

    ``stem``: the first convolution. ``head``: the final Linear, as pneumo builds it.
    ``dropout``: the parameter-free slot right before it. ``source_head``: the prefix of the
    classifier keys in torchvision's own state dicts (skipped when their shape does not fit).
    ``wrap``: a bare torchvision Linear that pneumo turns into ``Sequential(dropout, Linear)``,
    so the state-dict keys are the same with and without dropout. ``fan_in``: initialise the
    new stem as torchvision does for this family (Kaiming fan-in for DenseNet, fan-out else).
    """

    stem: str
    head: str
    dropout: str
    source_head: str
    wrap: str | None = None
    fan_in: bool = False
    # The forward pass cut where the class activation maps read it (pneumo.models.trunk):
    # ``trunk`` modules in order give the last convolutional features; ``relu``: torchvision
    # applies a functional ReLU to them (DenseNet); ``pool``: the pooling module (None:
    # global average, as DenseNet's functional pooling); ``classifier``: the Sequential from
    # the flattened pooled features to the logit, ending in ``head``.
    trunk: tuple[str, ...] = ("features",)
    relu: bool = False
    pool: str | None = "avgpool"
    classifier: str = "classifier"


RESNET_TRUNK = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")

SPECS: dict[str, BackboneSpec] = {
    "densenet121": BackboneSpec(
        "features.conv0",
        "classifier.1",
        "classifier.0",
        "classifier.",
        "classifier",
        True,
        relu=True,
        pool=None,
    ),
    "vgg16": BackboneSpec("features.0", "classifier.6", "classifier.5", "classifier.6."),
    "resnet18": BackboneSpec(
        "conv1", "fc.1", "fc.0", "fc.", "fc", trunk=RESNET_TRUNK, classifier="fc"
    ),
    "resnet50": BackboneSpec(
        "conv1", "fc.1", "fc.0", "fc.", "fc", trunk=RESNET_TRUNK, classifier="fc"
    ),
    "efficientnet_b0": BackboneSpec(
        "features.0.0", "classifier.1", "classifier.0", "classifier.1."
    ),
    "mobilenet_v3_large": BackboneSpec(
        "features.0.0", "classifier.3", "classifier.2", "classifier.3."
    ),
}


def spec(name: str) -> BackboneSpec:
    """The spec of ``name``; a ConfigError listing the valid names (and the closest) else."""
    if name in SPECS:
        return SPECS[name]
    close = difflib.get_close_matches(name, BACKBONES, n=1, cutoff=0.5)
    raise ConfigError(
        f"unknown backbone '{name}'; valid: {', '.join(BACKBONES)}",
        hint=f"did you mean '{close[0]}'?" if close else None,
    )
