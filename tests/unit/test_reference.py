"""The out-of-distribution reference: what it refuses, and that it travels intact."""

from __future__ import annotations

import numpy as np
import pytest

from pneumo.packaging.reference import Reference, fit_reference


def _cluster(rng: np.random.Generator, n: int, centre: np.ndarray) -> np.ndarray:
    # ReLU-pooled features are non-negative: a cluster around a positive centre
    return np.abs(centre + 0.15 * rng.standard_normal((n, centre.size))).astype(np.float32)


def test_refuses_about_the_quantile_of_like_images_and_all_unlike_ones() -> None:
    rng = np.random.default_rng(0)
    centre = rng.uniform(0.5, 1.5, 64)
    other = rng.uniform(0.5, 1.5, 64)
    ref = fit_reference(_cluster(rng, 3000, centre), _cluster(rng, 1000, centre), quantile=0.95)
    assert len(ref.bank) == 2000 and ref.bank.dtype == np.float16
    like = ref.scores(_cluster(rng, 2000, centre))
    unlike = ref.scores(_cluster(rng, 500, other))
    assert 0.02 < float(np.mean(like > ref.threshold)) < 0.09
    assert float(np.mean(unlike > ref.threshold)) == 1.0
    # the score is a cosine distance: the scale of an embedding does not matter
    sample = _cluster(rng, 5, centre)
    np.testing.assert_allclose(ref.scores(sample), ref.scores(7 * sample), atol=1e-6)


def test_round_trip_and_shape_check() -> None:
    rng = np.random.default_rng(1)
    centre = rng.uniform(0.5, 1.5, 16)
    ref = fit_reference(_cluster(rng, 100, centre), _cluster(rng, 50, centre), k=5)
    back = Reference.from_bytes(ref.to_bytes())
    probe = _cluster(rng, 10, centre)
    np.testing.assert_array_equal(back.scores(probe), ref.scores(probe))
    assert back.summary() == ref.summary() and ref.summary()["k"] == 5
    with pytest.raises(ValueError, match="8 features, the reference 16"):
        ref.scores(probe[:, :8])
    with pytest.raises(ValueError, match="training and validation"):
        fit_reference(probe[:0], probe)
