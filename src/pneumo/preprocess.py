"""The preprocessing spec: the ONE definition of how a file becomes a model input.

``file bytes → decode (gray, resized square uint8) → x/255 → (x - mean) / std``, where decode is
:func:`pneumo.data.decode.image.decode`. With ``intensity="per_image"`` each image is first
standardised by its own mean and standard deviation (mean and std are then 0 and 1): what an
exposure, a display curve's offset or another detector's gain does to a film is taken out
before the model sees it.

`prepare` applies the first step once and caches its output; training adds augmentation on top
of the cached pixels and then normalises with this spec; evaluation and the inference service
apply exactly the same steps. The spec is saved in every checkpoint and model card, so serving
never guesses (the seed tutorial trained on pixels/255 and served raw pixels: impossible here).
This module imports neither torch nor MLflow, so the service can use it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

ResizeMode = Literal["pad", "stretch", "crop"]
Intensity = Literal["dataset", "per_image"]
FLAT = 1e-3  # the smallest per-image std divided by (x/255 units): a blank image stays blank


@dataclass(frozen=True)
class ImageSpec:
    """How a source file becomes a cached array; saved with the cache and with every model."""

    size: int = 256
    resize: ResizeMode = "pad"
    max_pixels: int = 178_956_970

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PreprocessSpec:
    image: ImageSpec
    mean: float  # of x/255, over the training images (or ImageNet's, for pretrained weights)
    std: float
    intensity: Intensity = "dataset"  # "per_image": each image standardised first

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": asdict(self.image), "mean": self.mean, "std": self.std, "scale": 1 / 255,
            "intensity": self.intensity,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessSpec:
        raw = data.get("intensity") or "dataset"  # absent before release 0.2
        modes: dict[str, Intensity] = {"dataset": "dataset", "per_image": "per_image"}
        if raw not in modes:
            raise ValueError(f"preprocessing intensity {raw!r}: dataset or per_image")
        image = ImageSpec(**data["image"])
        return cls(image, float(data["mean"]), float(data["std"]), modes[raw])

    def normalize(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W) or (H, W) → float32 (N, 1, H, W), normalised."""
        batch = pixels[None] if pixels.ndim == 2 else pixels
        scaled = batch.astype(np.float32)[:, None] / np.float32(255.0)
        if self.intensity == "per_image":
            centre = scaled.mean(axis=(2, 3), keepdims=True)
            spread = np.maximum(scaled.std(axis=(2, 3), keepdims=True), np.float32(FLAT))
            scaled = (scaled - centre) / spread
        out: np.ndarray = (scaled - np.float32(self.mean)) / np.float32(self.std)
        return out


def pooled_stats(means: np.ndarray, stds: np.ndarray) -> tuple[float, float]:
    """Mean and std of x/255 over a set of images from their per-image 0-255 mean and std.

    Exact for equal-sized images: total variance = mean of variances + variance of means.
    """
    mean = float(np.mean(means))
    var = float(np.mean(stds.astype(np.float64) ** 2) + np.var(means))
    return mean / 255.0, max(var, 1e-6) ** 0.5 / 255.0
