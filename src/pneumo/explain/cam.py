"""Grad-CAM maps from the exported activations and channel weights, and their upsampling.

The model file gives, per image, the last convolutional features ``A`` (C, h, w) and Grad-CAM's
channel weights ``alpha`` (C,) (:mod:`pneumo.models.trunk` says how they are exact for every
head). The map is ReLU(sum_c alpha_c A_c) on the (h, w) grid of the features; for display it is
scaled to [0, 1] (its minimum to 0, its maximum to 1, as pytorch-grad-cam does) and upsampled
bilinearly with half-pixel centres (OpenCV's and Pillow's convention) to the model's input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class ActivationMap:
    """One image's Grad-CAM map on the features' grid, before any scaling."""

    raw: np.ndarray  # float32 (h, w), ReLU(sum_c alpha_c A_c)

    @property
    def peak(self) -> float:
        return float(self.raw.max()) if self.raw.size else 0.0

    @property
    def scaled(self) -> np.ndarray:
        """The map in [0, 1] (minimum to 0, maximum to 1, as pytorch-grad-cam shows it, without
        its 1e-7 floor, so a faint map keeps its shape): all zeros when the map is flat."""
        low = self.raw - self.raw.min()
        top = float(low.max()) if low.size else 0.0
        return np.asarray(low / top if top > 0 else low, dtype=np.float32)

    def upsampled(self, size: int) -> np.ndarray:
        """The scaled map at ``size`` x ``size``, in [0, 1].

        Interpolated along rows, then columns, by indexing and weighting: no matrix product,
        so no BLAS call, whose worker threads would keep spinning on the cores after it and slow
        the next ONNX Runtime call (measured: 9 ms on DenseNet-121 at 256 px, 2 cores)."""
        grid = self.scaled
        low, high, frac = _bilinear(grid.shape[0], size)
        rows = grid[low] * (1.0 - frac)[:, None] + grid[high] * frac[:, None]  # (size, w)
        low, high, frac = _bilinear(grid.shape[1], size)
        out = rows[:, low] * (1.0 - frac) + rows[:, high] * frac
        return np.asarray(np.clip(out, 0.0, 1.0), dtype=np.float32)

    @property
    def peak_at(self) -> tuple[float, float]:
        """(row, column) of the map's maximum, as fractions of the image (cell centres)."""
        h, w = self.raw.shape
        r, c = np.unravel_index(int(np.argmax(self.raw)), self.raw.shape)
        return (float(r) + 0.5) / h, (float(c) + 0.5) / w


Explain = Callable[[np.ndarray], list["ActivationMap"]]  # uint8 (N, S, S) -> one map each


def activation_maps(activations: np.ndarray, weights: np.ndarray) -> list[ActivationMap]:
    """Maps of a batch: ``activations`` (N, C, h, w) and ``weights`` (N, C) from model.onnx."""
    acts = np.asarray(activations, dtype=np.float32)
    alpha = np.asarray(weights, dtype=np.float32)
    if acts.ndim != 4 or alpha.shape != acts.shape[:2]:
        raise ValueError(f"activations {acts.shape} and weights {alpha.shape} do not match")
    cams = np.maximum(np.einsum("nc,nchw->nhw", alpha, acts), 0.0)
    return [ActivationMap(cam.astype(np.float32)) for cam in cams]


@lru_cache(maxsize=32)
def _bilinear(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """1-D linear interpolation with half-pixel centres, edges clamped: output pixel i is
    ``(1 - frac[i]) * x[low[i]] + frac[i] * x[high[i]]``, sampling the input at
    (i + 0.5) * n_in / n_out - 0.5."""
    where = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    where = np.clip(where, 0.0, n_in - 1)
    low = np.floor(where).astype(np.intp)
    high = np.minimum(low + 1, n_in - 1)
    frac = (where - low).astype(np.float32)
    for array in (low, high, frac):
        array.setflags(write=False)
    return low, high, frac
