"""Checkpoints that describe themselves, written atomically.

A *model* checkpoint (``best.pt``) holds what evaluation, export and serving need and nothing
they must trust blindly: weights, the model config, the preprocessing spec, class names, the
data manifest hash, the validation threshold and library versions; it loads with
``torch.load(weights_only=True)``. A *resume* checkpoint (``last.pt``) adds the optimizer,
scheduler, RNG states, position in the epoch and history, so a killed run continues where it
stopped.
"""

from __future__ import annotations

import io
import platform
from typing import Any

import numpy as np
import torch
import torchvision

from pneumo import __version__, storage
from pneumo.errors import PneumoError
from pneumo.settings import Settings

FORMAT = "pneumo-checkpoint/1"


def versions() -> dict[str, str]:
    return {
        "pneumo": __version__,
        "torch": str(torch.__version__),
        "torchvision": str(torchvision.__version__),
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def save(payload: dict[str, Any], url: str, settings: Settings | None = None) -> None:
    buf = io.BytesIO()
    torch.save({"format": FORMAT, **payload}, buf)
    storage.write_bytes(url, buf.getvalue(), settings)


def load(url: str, settings: Settings | None = None, *, trusted: bool = False) -> dict[str, Any]:
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
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise PneumoError(f"{url} is not a pneumo checkpoint (format {FORMAT} expected)")
    return obj


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
