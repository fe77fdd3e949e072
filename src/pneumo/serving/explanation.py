"""The activation map of a scored image, as the API returns it."""

from __future__ import annotations

import base64

import numpy as np

from pneumo.explain.cam import ActivationMap
from pneumo.explain.overlay import overlay, overlay_side, png
from pneumo.serving.api_errors import ApiError
from pneumo.serving.model import LoadedModel
from pneumo.serving.schemas import Explanation

GRID_DIGITS = 4


def require_maps(model: LoadedModel) -> None:
    """A 409 naming the version when its model.onnx has no activation outputs."""
    if not model.explains:
        raise ApiError(
            409,
            "no_activation_maps",
            f"model {model.name} version {model.version} was registered before activation "
            "maps: no explanation for it (register its run again to get them)",
        )


def explanation(cam: ActivationMap, pixels: np.ndarray, drawn: bool = True) -> Explanation:
    """The body for ``cam`` of the image ``pixels`` (uint8 (S, S), as the model saw it); the
    overlay only when ``drawn`` (a client that draws its own takes the grid alone)."""
    side = overlay_side(int(pixels.shape[-1]))
    picture = png(overlay(pixels, cam.upsampled(side))) if drawn else None
    grid = np.round(cam.scaled.astype(np.float64), GRID_DIGITS)
    return Explanation(
        grid=grid.tolist(),
        peak=cam.peak,
        peak_at=list(cam.peak_at),
        overlay_png=base64.b64encode(picture).decode("ascii") if picture is not None else None,
        overlay_size=side,
    )
