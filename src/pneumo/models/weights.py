"""Initial weights for a built backbone: reading state dicts and fitting them to the model.

A state dict may be torchvision's (3-channel stem, 1000-class head), pneumo's own (any head),
or a checkpoint wrapping either under ``"model"``/``"state_dict"``, with DDP (``module.``) or
``torch.compile`` (``_orig_mod.``) prefixes. What legitimately differs is adapted: the stem is
converted to the model's input channels and a classifier of another shape is left fresh.
Anything else that does not match means the file is for another architecture; loading half of
it silently would train a broken model, so that is an error naming keys and the backbone.
"""

from __future__ import annotations

import difflib
import io
import logging
import math
import re
from collections.abc import Mapping
from pathlib import Path

import torch
import torchvision  # type: ignore[import-untyped, unused-ignore]  # no py.typed
from torch import nn

from pneumo import storage
from pneumo.errors import PneumoError
from pneumo.models.architectures import BACKBONES, spec
from pneumo.settings import Settings

log = logging.getLogger(__name__)

# torchvision's published DenseNet files predate module names without dots ("norm.1" for
# "norm1"); torchvision renames them on load, and so must we.
_OLD_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DistributedDataParallel, torch.compile


def load_weights(
    model: nn.Module, name: str, state: Mapping[str, object], *, source: str = "state dict"
) -> None:
    """Copy ``state`` into ``model`` (a ``name`` from ``build_model``), adapting stem and head."""
    backbone = spec(name)
    source_sd = normalise(state, source)
    target = model.state_dict()
    stem_key = f"{backbone.stem}.weight"
    own_head = f"{backbone.head}."
    loaded: dict[str, torch.Tensor] = {}
    skipped: list[str] = []
    unexpected: list[str] = []
    mismatched: list[str] = []
    for key, tensor in source_sd.items():
        in_head = key.startswith((backbone.source_head, own_head))
        if key not in target:
            (skipped if in_head else unexpected).append(key)
        elif key == stem_key and tensor.shape != target[key].shape:
            loaded[key] = adapt_stem(tensor, target[key], source)
        elif tensor.shape != target[key].shape:
            if in_head:
                skipped.append(key)
            else:
                mismatched.append(key)
        else:
            loaded[key] = tensor
    # BatchNorm's step counter is absent from files older than PyTorch 0.4 (torchvision's
    # DenseNet weights); it only matters for momentum=None, so the model keeps its own.
    missing = [
        k
        for k in target
        if k not in loaded
        and k not in mismatched
        and not k.startswith(own_head)
        and not k.endswith(".num_batches_tracked")
    ]
    if missing or unexpected or mismatched:
        problems = (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            (
                "shape mismatches",
                [
                    f"{k} {tuple(source_sd[k].shape)} vs {tuple(target[k].shape)}"
                    for k in mismatched
                ],
            ),
        )
        raise PneumoError(
            f"{source} does not fit {name}: "
            + "; ".join(
                f"{len(keys)} {what} ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})"
                for what, keys in problems
                if keys
            ),
            hint=_backbone_hint(source_sd, name),
        )
    model.load_state_dict(loaded, strict=False)
    fresh = [k for k in target if k.startswith(own_head) and k not in loaded]
    log.info(
        "loaded %d tensors from %s into %s%s",
        len(loaded),
        source,
        name,
        f"; the head ({', '.join(fresh)}) is new, the file's ({', '.join(skipped)}) did not fit"
        if fresh
        else "",
    )


def adapt_stem(weight: torch.Tensor, target: torch.Tensor, source: str) -> torch.Tensor:
    """Stem weights converted to the model's input channels, preserving the response.

    To 1 channel: summed over the input channels, exactly the response to the gray image
    replicated on them. To ``c`` channels: tiled and scaled by ``have / c`` (timm's rule), so a
    replicated input still gives the same response.
    """
    out, want, *kernel = target.shape
    if weight.dim() != 4 or weight.shape[0] != out or list(weight.shape[2:]) != kernel:
        raise PneumoError(
            f"{source}: first convolution has shape {tuple(weight.shape)}, "
            f"the model needs {tuple(target.shape)}"
        )
    have = weight.shape[1]
    w = weight.to(torch.float64)
    if want == 1:
        adapted = w.sum(dim=1, keepdim=True)
    else:
        adapted = w.repeat(1, math.ceil(want / have), 1, 1)[:, :want] * (have / want)
    return adapted.to(weight.dtype)


def normalise(state: Mapping[str, object], source: str) -> dict[str, torch.Tensor]:
    """Unwrap checkpoints, check it holds tensors, strip DDP/compile prefixes, rename old keys."""
    obj: object = state
    for _ in range(3):  # {"model": ...}, {"state_dict": ...}, nested at most a few deep
        if isinstance(obj, Mapping):
            inner = next((obj[k] for k in ("model", "state_dict") if k in obj), None)
            if isinstance(inner, Mapping):
                obj = inner
                continue
        break
    if not isinstance(obj, Mapping) or not obj:
        raise PneumoError(f"{source} is not a state dict (got an empty {type(obj).__name__})")
    bad = [str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise PneumoError(
            f"{source} is not a state dict: {', '.join(bad[:3])} are not tensors",
            hint="pass a file saved with torch.save(model.state_dict()), or a pneumo best.pt",
        )
    out: dict[str, torch.Tensor] = {}
    for key, tensor in obj.items():
        k = str(key)
        while k.startswith(_WRAPPER_PREFIXES):
            k = k.split(".", 1)[1]
        match = _OLD_DENSENET_KEY.match(k)
        out[match.group(1) + match.group(2) if match else k] = tensor
    return out


def read_state_dict(url: str, settings: Settings | None = None) -> dict[str, object]:
    """A tensors-only (``weights_only``) torch file from a local path or an object-store URL."""
    try:
        if storage.is_remote(url):  # one GET: torch.load seeks around inside the zip
            data = io.BytesIO(storage.read_bytes(url, settings))
            obj = torch.load(data, map_location="cpu", weights_only=True)
        else:
            with storage.open_read(url, settings) as fh:
                obj = torch.load(fh, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        close = difflib.get_close_matches(url, ("none", "imagenet"), n=1, cutoff=0.6)
        raise PneumoError(
            f"weights file not found: {url}",
            hint=f"did you mean '{close[0]}'?"
            if close
            else "weights is none, imagenet, or the path/s3:// URL of a state dict",
        ) from None
    except Exception as exc:  # torch.load's errors are many and untyped (zip, pickle, storage)
        raise PneumoError(
            f"could not read weights from {url}: {exc}",
            hint="pass a tensors-only file (torch.save(model.state_dict())) or a pneumo best.pt",
        ) from None
    if not isinstance(obj, dict):
        raise PneumoError(f"{url} is not a state dict (it holds a {type(obj).__name__})")
    return obj


def imagenet_state_dict(name: str) -> dict[str, object]:
    """torchvision's default ImageNet weights: from $TORCH_HOME's cache, else downloaded."""
    entry = torchvision.models.get_model_weights(name).DEFAULT
    try:
        state: dict[str, object] = entry.get_state_dict(progress=True, check_hash=True)
    except Exception as exc:  # URLError offline, HTTPError, hash mismatch, a corrupt cache file
        filename = entry.url.rsplit("/", 1)[-1]
        cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
        if cached.exists():
            raise PneumoError(
                f"could not load the cached ImageNet weights for {name}, {cached}: {exc}",
                hint="delete the file so it is downloaded again",
            ) from None
        raise PneumoError(
            f"could not download ImageNet weights for {name} from {entry.url} "
            f"(not in the cache {cached.parent}): {exc}",
            hint="run once with network access so torch caches the file in $TORCH_HOME, copy "
            f"{filename} into {cached.parent}, or set weights to the local path or s3:// URL "
            "of a state dict",
        ) from None
    return state


def _backbone_hint(state: Mapping[str, torch.Tensor], name: str) -> str:
    """Which backbone the keys look like, from key sets of models built on the meta device."""
    keys = set(state)
    best, score = "", 0.0
    for other in BACKBONES:
        with torch.device("meta"):  # no memory, no initialisation cost
            theirs = set(torchvision.models.get_model(other, weights=None).state_dict())
        overlap = len(keys & theirs) / max(len(keys | theirs), 1)
        if overlap > score:
            best, score = other, overlap
    if best and best != name and score > 0.8:
        return f"these look like {best} weights: use train.backbone={best}, or other weights"
    return f"pass weights saved from a {name} (torchvision or pneumo), or weights=imagenet"
