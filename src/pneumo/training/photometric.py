"""Photometric augmentation on the training device: what another scanner or another archive does
to the same radiograph.

Each transform models a difference between sites that the geometric ones do not: detector
response and display curve (gamma), detector and quantum noise (Gaussian noise), detector
resolution and resampling (Gaussian blur), and lossy archiving (JPEG quantisation, simulated on
the device: the image cut into 8x8 blocks, each block's 2-D DCT divided by the standard JPEG
luminance table scaled to a random quality, rounded, and transformed back, which is what
libjpeg does to a grayscale image apart from its integer arithmetic). Each is applied to a
random share of the batch, with a random strength; a setting of 0 turns it off. Randomness
comes from the step's generator, as for the geometric transforms.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812

from pneumo.config import AugmentConfig

# ITU-T T.81 Annex K, table K.1: the luminance quantisation table at quality 50.
_LUMINANCE = (
    (16, 11, 10, 16, 24, 40, 51, 61), (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56), (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77), (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101), (72, 92, 95, 98, 112, 100, 103, 99),
)  # fmt: skip
BLOCK = 8


def _rand(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=generator.device).to(device)


def _chosen(n: int, share: float, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """(n, 1, 1, 1) mask: 1 for the images a transform applies to."""
    return (_rand(n, generator, device) < share).float().view(n, 1, 1, 1)


def gamma(
    x: torch.Tensor, strength: float, share: float, generator: torch.Generator
) -> torch.Tensor:
    """x ** g, with log g uniform in +/- log(1 + strength)."""
    n = x.shape[0]
    log_g = (_rand(n, generator, x.device) * 2 - 1) * math.log1p(strength)
    g = torch.exp(log_g * _chosen(n, share, generator, x.device).view(n)).view(n, 1, 1, 1)
    return x.clamp_min(0.0) ** g


def noise(
    x: torch.Tensor, strength: float, share: float, generator: torch.Generator
) -> torch.Tensor:
    """Gaussian noise of standard deviation uniform in [0, strength] (fraction of the range)."""
    n = x.shape[0]
    sd = _rand(n, generator, x.device).view(n, 1, 1, 1) * strength
    sd = sd * _chosen(n, share, generator, x.device)
    draw = torch.randn(x.shape, generator=generator, device=generator.device).to(x.device)
    return (x + draw.to(x.dtype) * sd).clamp(0.0, 1.0)


def _gaussian_kernel(sigma: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    radius = max(1, math.ceil(2.5 * sigma))
    t = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    return k / k.sum()


def blur(
    x: torch.Tensor, strength: float, share: float, generator: torch.Generator
) -> torch.Tensor:
    """A Gaussian blur of sigma ``strength`` pixels, blended in with a random weight per image
    (so the effective blur ranges from none to the full one)."""
    n = x.shape[0]
    k = _gaussian_kernel(strength, x.device, x.dtype)
    pad = len(k) // 2
    blurred = F.conv2d(F.pad(x, (pad, pad, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    blurred = F.conv2d(F.pad(blurred, (0, 0, pad, pad), mode="replicate"), k.view(1, 1, -1, 1))
    weight = _rand(n, generator, x.device).view(n, 1, 1, 1)
    weight = weight * _chosen(n, share, generator, x.device)
    return x + (blurred - x) * weight


def _dct_matrix(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    k = torch.arange(BLOCK, device=device, dtype=torch.float64)
    m = torch.cos(math.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * BLOCK)) * math.sqrt(2 / BLOCK)
    m[0] /= math.sqrt(2.0)
    return m.to(dtype)


def quality_table(quality: torch.Tensor) -> torch.Tensor:
    """(n,) JPEG qualities (1..100) → (n, 8, 8) quantisation tables, scaled as libjpeg does."""
    base = torch.tensor(_LUMINANCE, dtype=quality.dtype, device=quality.device)
    q = quality.clamp(1, 100)
    scale = torch.where(q < 50, 5000 / q, 200 - 2 * q).view(-1, 1, 1)
    return torch.floor((base * scale + 50) / 100).clamp(1, 255)


def jpeg(
    x: torch.Tensor,
    lowest_quality: int,
    share: float,
    generator: torch.Generator,
    highest_quality: int = 95,
) -> torch.Tensor:
    """JPEG quantisation at a quality uniform in [lowest, highest] for a share of the batch."""
    n, _, h, w = x.shape
    span = highest_quality - lowest_quality
    quality = lowest_quality + _rand(n, generator, x.device) * span
    chosen = _chosen(n, share, generator, x.device)
    ph, pw = (-h) % BLOCK, (-w) % BLOCK
    padded = F.pad(x, (0, pw, 0, ph), mode="replicate") * 255.0 - 128.0
    hb, wb = padded.shape[2] // BLOCK, padded.shape[3] // BLOCK
    blocks = padded.view(n, hb, BLOCK, wb, BLOCK).permute(0, 1, 3, 2, 4)  # n, hb, wb, 8, 8
    d = _dct_matrix(x.device, x.dtype)
    table = quality_table(quality).to(x.dtype).view(n, 1, 1, BLOCK, BLOCK)
    coefficients = d @ blocks @ d.T
    restored = d.T @ (torch.round(coefficients / table) * table) @ d
    image = restored.permute(0, 1, 3, 2, 4).reshape(n, 1, hb * BLOCK, wb * BLOCK)
    compressed = ((image + 128.0) / 255.0)[:, :, :h, :w].clamp(0.0, 1.0)
    return x + (compressed - x) * chosen


def photometric(x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """The photometric transforms ``cfg`` turns on, in acquisition order: the detector's
    resolution and noise, its response curve, then the archive's compression."""
    share = cfg.photometric_share
    if cfg.blur_sigma > 0:
        x = blur(x, cfg.blur_sigma, share, generator)
    if cfg.noise > 0:
        x = noise(x, cfg.noise, share, generator)
    if cfg.gamma > 0:
        x = gamma(x, cfg.gamma, share, generator)
    if cfg.jpeg_quality > 0:
        x = jpeg(x, cfg.jpeg_quality, share, generator)
    return x
