"""Per-image intensity standardisation: the same in numpy (service, ONNX) and torch (training)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pneumo.preprocess import ImageSpec, PreprocessSpec
from pneumo.training.augment import prepare_batch


def _films(n: int = 4, size: int = 32) -> np.ndarray:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size]
    base = 60 + 80 * np.exp(-((x - size / 2) ** 2 + (y - size / 2) ** 2) / (size * 4))
    films = [np.clip(base + rng.normal(0, 10, (size, size)), 0, 255) for _ in range(n)]
    return np.stack(films).astype(np.uint8)


PER_IMAGE = PreprocessSpec(ImageSpec(32), 0.0, 1.0, "per_image")
DATASET = PreprocessSpec(ImageSpec(32), 0.4, 0.2)


def test_each_image_comes_out_with_zero_mean_and_unit_std() -> None:
    out = PER_IMAGE.normalize(_films())
    assert out.shape == (4, 1, 32, 32) and out.dtype == np.float32
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(1, 2, 3)), 1.0, atol=1e-4)


def test_exposure_and_gain_are_taken_out() -> None:
    films = _films()
    brighter = np.clip(films.astype(np.float64) * 1.3 + 20, 0, 255).round().astype(np.uint8)
    assert brighter.max() < 255  # no clipping, so the change is affine up to rounding
    same = PER_IMAGE.normalize(brighter) - PER_IMAGE.normalize(films)
    assert np.abs(same).max() < 0.05
    moved = DATASET.normalize(brighter) - DATASET.normalize(films)
    assert np.abs(moved).mean() > 0.5  # the dataset statistics do not take it out


def test_a_blank_image_stays_blank() -> None:
    out = PER_IMAGE.normalize(np.full((1, 32, 32), 7, dtype=np.uint8))
    assert np.isfinite(out).all() and np.abs(out).max() == 0.0


@pytest.mark.parametrize("spec", [PER_IMAGE, DATASET], ids=["per_image", "dataset"])
def test_training_normalises_exactly_as_the_service(spec: PreprocessSpec) -> None:
    films = _films()
    served = spec.normalize(films)
    trained = prepare_batch(torch.from_numpy(films), spec, None, None, torch.device("cpu"), False)
    np.testing.assert_allclose(trained.numpy(), served, atol=1e-5)


def test_the_spec_round_trips_and_old_cards_mean_dataset_statistics() -> None:
    assert PreprocessSpec.from_dict(PER_IMAGE.to_dict()) == PER_IMAGE
    old = {"image": {"size": 32, "resize": "pad", "max_pixels": 10}, "mean": 0.5, "std": 0.25}
    assert PreprocessSpec.from_dict(old).intensity == "dataset"
    with pytest.raises(ValueError, match="dataset or per_image"):
        PreprocessSpec.from_dict({**old, "intensity": "histogram"})
