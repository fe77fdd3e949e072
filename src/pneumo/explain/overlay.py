"""A map drawn over the radiograph the model saw: a PNG, for people."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

MIN_SIDE = 256  # overlays of small model inputs are drawn at least this big
OPACITY = 0.55  # of the heat colour where the map is 1 (0 where it is 0: the image shows)


def jet(values: np.ndarray) -> np.ndarray:
    """The 'jet' colour map (blue → cyan → yellow → red) of values in [0, 1]: uint8 (..., 3)."""
    x = np.clip(values, 0.0, 1.0)[..., None]
    centres = np.array([3.0, 2.0, 1.0], dtype=np.float32)  # red, green, blue
    rgb = np.clip(1.5 - np.abs(4.0 * x - centres), 0.0, 1.0)
    return np.asarray(np.round(rgb * 255.0), dtype=np.uint8)


def overlay_side(size: int) -> int:
    """The side of an overlay of a ``size`` px model input: a whole multiple, >= MIN_SIDE."""
    return size * max(1, -(-MIN_SIDE // size))


def overlay(pixels: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """uint8 RGB (D, D, 3): the grayscale model input ``pixels`` (S, S) with ``heat`` (D, D)
    in [0, 1] blended over it, more opaque where the map is higher."""
    side = heat.shape[0]
    gray = Image.fromarray(np.asarray(pixels, dtype=np.uint8)).resize(
        (side, side), Image.Resampling.BILINEAR
    )
    base = np.repeat(np.asarray(gray, dtype=np.float32)[..., None], 3, axis=2)
    alpha = (OPACITY * heat)[..., None]
    mixed = (1.0 - alpha) * base + alpha * jet(heat).astype(np.float32)
    return np.asarray(np.round(mixed), dtype=np.uint8)


def png(rgb: np.ndarray) -> bytes:
    """An RGB array as PNG bytes."""
    out = io.BytesIO()
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(out, format="PNG", optimize=False)
    return out.getvalue()
