"""Backbones: shapes, the exact RGB→gray stem conversion, and every way weights are loaded.

No pretrained weights can be downloaded here, so each test makes its own small state dicts from
randomly initialised torchvision models.
"""

from __future__ import annotations

import urllib.error
from pathlib import Path
from typing import Any

import pytest
import torch
import torchvision  # type: ignore[import-untyped, unused-ignore]  # no py.typed
from torch import nn

from pneumo.errors import ConfigError, PneumoError
from pneumo.models.architectures import BACKBONES, IMAGENET_GRAY_MEAN, IMAGENET_GRAY_STD
from pneumo.models.backbones import build_model, first_conv


def count_parameters(model: nn.Module) -> int:
    """All parameters (trainable or not): the size people quote for a backbone."""
    return sum(p.numel() for p in model.parameters())


HEAVY = {"vgg16", "resnet50", "densenet121"}
# The module holding each torchvision backbone's classifier; set to Identity on both sides it
# exposes the pooled features, which must agree exactly.
CLASSIFIER = {"resnet18": "fc", "efficientnet_b0": "classifier", "densenet121": "classifier"}


def _logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        out: torch.Tensor = model(x)
    return out


def _features(model: nn.Module, head: str, x: torch.Tensor) -> torch.Tensor:
    setattr(model, head, nn.Identity())
    return _logits(model, x)


def _torchvision(name: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model: nn.Module = torchvision.models.get_model(name, weights=None)
    # Random BN running stats, so the comparison also covers the buffers.
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            assert module.running_mean is not None and module.running_var is not None
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return model


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in BACKBONES]
)
def test_every_backbone_gives_logits_for_gray_input(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name)
    assert first_conv(model).in_channels == 1
    assert _logits(model, torch.randn(2, 1, 64, 64)).shape == (2, 1)


def test_outputs_channels_sizes_and_dropout() -> None:
    torch.manual_seed(0)
    model = build_model("mobilenet_v3_large", num_outputs=14, in_chans=3, dropout=0.3)
    assert first_conv(model).in_channels == 3
    assert _logits(model, torch.randn(2, 3, 64, 64)).shape == (2, 14)
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert dropouts[-1].p == 0.3
    gray = build_model("efficientnet_b0")
    for size in [(32, 32), (48, 80)]:
        assert _logits(gray, torch.randn(1, 1, *size)).shape == (1, 1)


def test_dropout_does_not_change_state_dict_keys() -> None:
    """A checkpoint trained with dropout must load into the model evaluation builds."""
    with_dropout = build_model("resnet18", dropout=0.5)
    assert isinstance(with_dropout.get_submodule("fc.0"), nn.Dropout)
    plain = build_model("resnet18")
    plain.load_state_dict(with_dropout.state_dict())  # strict


def test_count_parameters_and_gray_stats() -> None:
    model = build_model("resnet18", num_outputs=1)
    # torchvision's resnet18 has 11,689,512: minus 2/3 of the 64*3*7*7 stem, minus the
    # 1000-class head (512*1000+1000), plus ours (512+1).
    assert count_parameters(model) == 11_689_512 - 64 * 2 * 49 - 513_000 + 513
    assert abs(IMAGENET_GRAY_MEAN - (0.485 + 0.456 + 0.406) / 3) < 5e-4
    assert abs(IMAGENET_GRAY_STD - (0.229 + 0.224 + 0.225) / 3) < 5e-4


@pytest.mark.parametrize(
    "name", ["resnet18", "efficientnet_b0", pytest.param("densenet121", marks=pytest.mark.slow)]
)
def test_rgb_weights_summed_to_gray_are_exact(name: str, tmp_path: Path) -> None:
    reference = _torchvision(name)
    state = reference.state_dict()
    if name == "densenet121":  # like torchvision's published file: old "norm.1" key names and
        state = {  # no BatchNorm step counters (they predate PyTorch 0.4)
            k.replace(".norm1.", ".norm.1.").replace(".conv2.", ".conv.2."): v
            for k, v in state.items()
            if not k.endswith("num_batches_tracked")
        }
        assert any(".norm.1." in k for k in state)
    path = tmp_path / f"{name}.pth"
    torch.save(state, path)

    model = build_model(name, weights=str(path))
    stem = first_conv(model)
    assert stem.in_channels == 1
    assert torch.allclose(stem.weight, first_conv(reference).weight.sum(dim=1, keepdim=True))

    x = torch.randn(2, 1, 64, 64)
    ours = _features(model, CLASSIFIER[name], x)
    theirs = _features(reference, CLASSIFIER[name], x.repeat(1, 3, 1, 1))
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: sd,
        lambda sd: {f"module.{k}": v for k, v in sd.items()},
        lambda sd: {"model": sd, "epoch": 3},
        lambda sd: {"state_dict": {f"_orig_mod.{k}": v for k, v in sd.items()}},
    ],
    ids=["plain", "ddp", "checkpoint", "compiled"],
)
def test_own_state_dict_round_trips(wrap: Any, tmp_path: Path) -> None:
    torch.manual_seed(1)
    original = build_model("efficientnet_b0", num_outputs=3)
    path = tmp_path / "weights.pt"
    torch.save(wrap(original.state_dict()), path)
    torch.manual_seed(2)
    loaded = build_model("efficientnet_b0", num_outputs=3, weights=str(path))
    for (key, a), b in zip(
        original.state_dict().items(), loaded.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), key
    x = torch.randn(1, 1, 32, 32)
    assert torch.equal(_logits(original, x), _logits(loaded, x))


def test_head_of_another_size_is_left_fresh(tmp_path: Path) -> None:
    """Fine-tuning a 14-finding model into a binary one keeps the backbone, not the head."""
    torch.manual_seed(1)
    multilabel = build_model("resnet18", num_outputs=14)
    path = tmp_path / "multi.pt"
    torch.save(multilabel.state_dict(), path)
    binary = build_model("resnet18", num_outputs=1, weights=str(path))
    theirs, ours = multilabel.state_dict(), binary.state_dict()
    assert torch.equal(ours["layer4.1.conv2.weight"], theirs["layer4.1.conv2.weight"])
    assert ours["fc.1.weight"].shape == (1, 512)
    assert not torch.equal(ours["fc.1.bias"], theirs["fc.1.bias"][:1])


def test_state_dict_of_another_backbone_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r50.pt"
    torch.save(_torchvision("resnet50").state_dict(), path)
    with pytest.raises(PneumoError) as err:
        build_model("resnet18", weights=str(path))
    message = str(err.value)
    assert "does not fit resnet18" in message
    assert str(path) in message
    assert "unexpected keys" in message and "layer1.0.conv3.weight" in message
    assert "look like resnet50" in message  # the hint


def test_unreadable_and_missing_files(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(PneumoError, match=r"garbage\.pt"):
        build_model("resnet18", weights=str(garbage))
    not_tensors = tmp_path / "list.pt"
    torch.save({"model": {"conv1.weight": [1, 2]}}, not_tensors)
    with pytest.raises(PneumoError, match=r"list\.pt is not a state dict"):
        build_model("resnet18", weights=str(not_tensors))
    with pytest.raises(PneumoError, match="not found") as err:
        build_model("resnet18", weights="imagnet")
    assert "did you mean 'imagenet'" in str(err.value)


def _point_torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert Path(torch.hub.get_dir()) == home / "hub"
    return home / "hub" / "checkpoints"


def test_imagenet_offline_says_how_to_provide_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real cache lookup runs; only the network transfer is replaced by its offline error.

    ``torch.hub.load_state_dict_from_url`` looks in $TORCH_HOME and, on a miss, calls
    ``torch.hub.download_url_to_file``, which raises this URLError (from urllib) without a
    network. The download cannot run here, so the test simulates exactly that failure.
    """
    cache = _point_torch_home(tmp_path, monkeypatch)
    calls: list[tuple[str, str]] = []

    def offline(url: str, dst: str, *args: object, **kwargs: object) -> None:
        calls.append((url, dst))
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(PneumoError) as err:
        build_model("resnet18", weights="imagenet")
    url = torchvision.models.ResNet18_Weights.DEFAULT.url
    assert calls == [(url, str(cache / url.rsplit("/", 1)[1]))]
    message = str(err.value)
    assert "could not download ImageNet weights for resnet18" in message and url in message
    assert "TORCH_HOME" in message and "s3:// URL of a state dict" in message


def test_imagenet_from_the_torch_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file already in $TORCH_HOME (cached by an earlier online run) is used without a network."""
    cache = _point_torch_home(tmp_path, monkeypatch)
    cache.mkdir(parents=True)
    url = torchvision.models.ResNet18_Weights.DEFAULT.url
    reference = _torchvision("resnet18")
    torch.save(reference.state_dict(), cache / url.rsplit("/", 1)[1])
    model = build_model("resnet18", weights="imagenet")
    torch.testing.assert_close(
        first_conv(model).weight, first_conv(reference).weight.sum(dim=1, keepdim=True)
    )
    (cache / url.rsplit("/", 1)[1]).write_bytes(b"truncated")
    with pytest.raises(PneumoError, match="could not load the cached ImageNet weights") as err:
        build_model("resnet18", weights="imagenet")
    assert err.value.hint == "delete the file so it is downloaded again"


def test_unknown_backbone_suggests_a_name() -> None:
    with pytest.raises(ConfigError) as err:
        build_model("resnet5")
    message = str(err.value)
    assert "unknown backbone 'resnet5'" in message and "densenet121" in message
    assert "did you mean 'resnet50'" in message
    with pytest.raises(ConfigError, match="dropout"):
        build_model("resnet18", dropout=1.0)
