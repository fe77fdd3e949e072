"""Checkpoints that describe themselves, written atomically.

A *model* checkpoint (``best.pt``) holds what evaluation, export and serving need and nothing
they must trust blindly: weights and the :class:`~pneumo.models.meta.CheckpointMeta` (model
arguments, preprocessing spec, class names, data manifest hash, validation threshold, library
versions); it loads with ``torch.load(weights_only=True)``. A *resume* checkpoint (``last.pt``)
adds the optimizer, scheduler, RNG states, position in the epoch and history, so a killed run
continues where it stopped.
"""

from __future__ import annotations

import io
import platform
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torchvision

from pneumo import __version__, storage
from pneumo.errors import PneumoError
from pneumo.models.backbones import build_model
from pneumo.models.meta import CheckpointMeta
from pneumo.settings import Settings

RESUME_KEYS = ("optimizer", "scheduler", "state", "rng")
OPTIONAL_RESUME_KEYS = ("average",)  # train.ema_decay's weight average


@dataclass(frozen=True)
class Checkpoint:
    meta: CheckpointMeta
    weights: dict[str, torch.Tensor]
    # last.pt only: {"optimizer", "scheduler", "state", "rng"}; None in best.pt
    resume: dict[str, Any] | None = None


def versions() -> dict[str, str]:
    return {
        "pneumo": __version__,
        "torch": str(torch.__version__),
        "torchvision": str(torchvision.__version__),
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def save(ckpt: Checkpoint, url: str, settings: Settings | None = None) -> None:
    payload = {**ckpt.meta.to_payload(), "model": ckpt.weights, **(ckpt.resume or {})}
    buf = io.BytesIO()
    torch.save(payload, buf)
    storage.write_bytes(url, buf.getvalue(), settings)


def load(url: str, settings: Settings | None = None, *, trusted: bool = False) -> Checkpoint:
    """Read a checkpoint; ``trusted`` allows the pickled optimizer/RNG state of ``last.pt``."""
    try:
        data = storage.read_bytes(url, settings)
    except FileNotFoundError:
        raise PneumoError(f"checkpoint not found: {url}") from None
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=not trusted)
    except Exception as exc:
        raise PneumoError(
            f"{url} is not a readable pneumo checkpoint: {exc}",
            hint="pass a best.pt written by `pneumo train`, or a run id",
        ) from None
    if not isinstance(obj, dict) or not isinstance(obj.get("model"), dict):
        raise PneumoError(f"{url} is not a pneumo checkpoint (no weights)")
    meta = CheckpointMeta.from_payload(obj, url)
    resume = None
    if all(k in obj for k in RESUME_KEYS):
        resume = {k: obj[k] for k in (*RESUME_KEYS, *OPTIONAL_RESUME_KEYS) if k in obj}
    return Checkpoint(meta, obj["model"], resume)


def restore_model(ckpt: Checkpoint) -> torch.nn.Module:
    """The checkpoint's network, rebuilt from its own arguments and loaded with its weights."""
    model = build_model(**ckpt.meta.model.kwargs(), weights="none")
    model.load_state_dict(ckpt.weights)
    return model


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
