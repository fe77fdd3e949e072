"""Batch augmentation and normalisation on the training device (the GPU when there is one).

Doing this on the device keeps the loader's work to a memory copy of uint8 pixels, so a GPU is
not left waiting on CPU-side image transforms. One random affine per image (rotation, shift,
zoom) is applied with a single `grid_sample`, then brightness and contrast, then the photometric
transforms of :mod:`pneumo.training.photometric` that the config turns on; what each models is
documented in :class:`pneumo.config.AugmentConfig`. Randomness comes from a generator seeded per
step, so a resumed run augments exactly as an uninterrupted one would.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812

from pneumo.config import AugmentConfig
from pneumo.preprocess import FLAT, PreprocessSpec
from pneumo.training.photometric import photometric


def augment(x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Random affine + brightness/contrast, then the photometric transforms ``cfg`` turns on,
    on a float batch (N, 1, H, W) in [0, 1]."""
    n = x.shape[0]

    def uniform(half_width: float) -> torch.Tensor:
        r = torch.rand(n, generator=generator, device=generator.device)
        return ((r * 2 - 1) * half_width).to(x.device)

    angle = uniform(math.radians(cfg.rotation_deg))
    zoom = 1.0 + uniform(cfg.scale)
    shift_x, shift_y = uniform(cfg.translate * 2), uniform(cfg.translate * 2)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack(
        [torch.stack([cos, -sin, shift_x], 1), torch.stack([sin, cos, shift_y], 1)], 1
    ).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    contrast = (1.0 + uniform(cfg.contrast)).view(n, 1, 1, 1)
    brightness = uniform(cfg.brightness).view(n, 1, 1, 1)
    mean = x.mean(dim=(2, 3), keepdim=True)
    x = ((x - mean) * contrast + mean + brightness).clamp(0.0, 1.0)
    return photometric(x, cfg, generator)


def prepare_batch(
    pixels: torch.Tensor,
    spec: PreprocessSpec,
    cfg: AugmentConfig | None,
    generator: torch.Generator | None,
    device: torch.device,
    channels_last: bool,
) -> torch.Tensor:
    """uint8 batch from the loader → normalised (optionally augmented) input on ``device``."""
    x = pixels.to(device, non_blocking=True).unsqueeze(1).float() / 255.0
    if cfg is not None and cfg.enabled and generator is not None:
        x = augment(x, cfg, generator)
    if spec.intensity == "per_image":  # as PreprocessSpec.normalize does it, after augmenting
        centre = x.mean(dim=(2, 3), keepdim=True)
        spread = x.std(dim=(2, 3), keepdim=True, correction=0).clamp_min(FLAT)
        x = (x - centre) / spread
    x = (x - spec.mean) / spec.std
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x
