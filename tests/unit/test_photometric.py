"""Photometric augmentation: off by default, in range, seeded, and a JPEG simulation that
matches libjpeg's own grayscale output."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pytest
import torch
from PIL import Image

from pneumo.config import AugmentConfig
from pneumo.data.sources.synthetic import render_image
from pneumo.training.photometric import blur, gamma, jpeg, noise, photometric


def films(n: int = 4, size: int = 64) -> torch.Tensor:
    pixels = [render_image(np.random.default_rng(s), size, s % 2 == 0, "PA") for s in range(n)]
    return torch.from_numpy(np.stack(pixels)).float().unsqueeze(1) / 255.0


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_the_defaults_change_nothing() -> None:
    x = films()
    assert torch.equal(photometric(x, AugmentConfig(), seeded()), x)


@pytest.mark.parametrize(
    "transform, strength", [(gamma, 0.3), (noise, 0.03), (blur, 1.5), (jpeg, 30)]
)
def test_each_transform_stays_in_range_is_seeded_and_respects_its_share(
    transform: Callable[..., torch.Tensor], strength: float
) -> None:
    x = films()
    out = transform(x, strength, 1.0, seeded(1))
    assert out.shape == x.shape and float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert (out - x).abs().amax(dim=(1, 2, 3)).min() > 0  # every image was changed
    assert torch.equal(out, transform(x, strength, 1.0, seeded(1)))
    assert torch.equal(transform(x, strength, 0.0, seeded(1)), x)


def test_the_jpeg_simulation_matches_libjpeg() -> None:
    """Within a quarter of what compression itself changes (libjpeg rounds in integers)."""
    x = films(n=2, size=96)
    original = x[:, 0].numpy() * 255
    for quality in (40, 75, 90):
        ours = jpeg(x, quality, 1.0, seeded(), highest_quality=quality).numpy()[:, 0] * 255
        theirs = []
        for image in original.round().astype(np.uint8):
            buf = io.BytesIO()
            Image.fromarray(image).save(buf, format="JPEG", quality=quality)
            theirs.append(np.asarray(Image.open(buf), np.float64))
        libjpeg = np.stack(theirs)
        compression = np.abs(libjpeg - original).mean()
        assert compression > 0.3  # the quality is low enough to matter
        assert np.abs(ours - libjpeg).mean() < 0.25 * compression, quality
