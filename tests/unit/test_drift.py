"""The drift tests: their statistics against direct formulas and scipy, their false alarms and
power on samples with a known answer (embeddings with low-rank structure, as a network's are)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pneumo.monitoring.baseline import DriftReference, build_drift_reference
from pneumo.monitoring.drift import Projection, ks_test, mmd_test

ALPHA = 0.05


def embeddings(rng: np.random.Generator, n: int, shift: float = 0.0, d: int = 64) -> np.ndarray:
    """Points near a 4-dimensional subspace of R^d (fixed by seed 0), shifted along it."""
    basis = np.random.default_rng(0).normal(size=(4, d))
    latent = rng.normal(size=(n, 4)) + np.array([shift, 0, 0, 0])
    out: np.ndarray = latent @ basis + 3.0 + 0.1 * rng.normal(size=(n, d))
    return out


def test_ks_matches_scipy() -> None:
    rng = np.random.default_rng(1)
    for shift in (0.0, 0.2, 0.5, 1.0):
        a, b = rng.normal(size=400), rng.normal(shift, size=50)
        ours, theirs = ks_test(a, b), stats.ks_2samp(a, b, method="asymp")
        assert ours.statistic == pytest.approx(theirs.statistic, abs=1e-12)
        assert ours.p_value == pytest.approx(theirs.pvalue, abs=5e-3)
    with pytest.raises(ValueError, match="both sides"):
        ks_test(np.array([]), np.array([1.0]))


def _mmd2_direct(x: np.ndarray, y: np.ndarray, scale: float) -> float:
    def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        result: np.ndarray = np.exp(-np.sum((a[:, None] - b[None]) ** 2, axis=2) / scale)
        return result

    n, m = len(x), len(y)
    kxx, kyy = k(x, x), k(y, y)
    return float(
        (kxx.sum() - n) / (n * (n - 1)) + (kyy.sum() - m) / (m * (m - 1)) - 2 * k(x, y).mean()
    )


def test_mmd_statistic_is_the_unbiased_estimate() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(30, 3)), rng.normal(0.5, size=(20, 3))
    pooled = np.vstack([x, y])
    dist = np.sum((pooled[:, None] - pooled[None]) ** 2, axis=2)
    scale = float(np.median(dist[~np.eye(50, dtype=bool)]))
    result = mmd_test(x, y, permutations=50)
    assert result.statistic == pytest.approx(_mmd2_direct(x, y, scale), rel=1e-9)
    assert (result.n_reference, result.n_window) == (30, 20)
    assert 1 / 51 <= result.p_value <= 1.0


def _alarm_rate(shift: float, windows: int = 40) -> float:
    rng = np.random.default_rng(3)
    projection = Projection.fit(embeddings(rng, 400))  # fitted on other images (the bank)
    reference = projection(embeddings(rng, 300))
    flags = [
        mmd_test(reference, projection(embeddings(rng, 50, shift)), seed=i).drifted(ALPHA)
        for i in range(windows)
    ]
    return float(np.mean(flags))


def test_mmd_false_alarms_near_alpha_and_power_on_a_shift() -> None:
    assert _alarm_rate(0.0) <= 0.10  # alpha 0.05 over 40 windows
    assert _alarm_rate(1.0) >= 0.95


def test_projection_checks_shapes() -> None:
    rng = np.random.default_rng(4)
    projection = Projection.fit(rng.normal(size=(20, 16)), k=4)
    assert projection(rng.normal(size=(5, 16))).shape == (5, 4)
    with pytest.raises(ValueError, match="16"):
        projection(rng.normal(size=(5, 8)))
    with pytest.raises(ValueError, match="at least 2"):
        Projection.fit(rng.normal(size=(1, 16)))


def test_the_drift_reference_travels_in_reference_npz_and_old_files_have_none() -> None:
    from pneumo.packaging.reference import Reference, fit_reference

    rng = np.random.default_rng(5)
    bank, val = embeddings(rng, 120), embeddings(rng, 40)
    stats = {"mean_intensity": rng.random(40) * 255, "orig_width": np.full(40, 1024.0)}
    drift = build_drift_reference(
        bank, val, rng.random(40), stats, {"src_mode": {"L": 39, "I;16": 1}}, sample=30
    )
    assert drift.embeddings.shape == (30, 8) and len(drift.scores) == 30
    old = fit_reference(bank, val)
    back = Reference.from_bytes(Reference(**{**old.__dict__, "drift": drift}).to_bytes())
    assert back.drift is not None and back.drift.counts == {"src_mode": {"I;16": 1, "L": 39}}
    np.testing.assert_array_equal(back.drift.embeddings, drift.embeddings)
    np.testing.assert_array_equal(back.drift.stats["orig_width"], drift.stats["orig_width"])
    assert back.summary()["drift"]["tests"] == [
        "embedding_mmd", "score_ks", "mean_intensity_ks", "orig_width_ks",
    ]  # fmt: skip
    assert Reference.from_bytes(old.to_bytes()).drift is None  # written before drift references
    with pytest.raises(ValueError, match="row-aligned"):
        build_drift_reference(bank, val, rng.random(39), stats, {})


def _reference(rng: np.random.Generator) -> tuple[Projection, DriftReference]:
    bank, val = embeddings(rng, 400), embeddings(rng, 300)
    stats = {"mean_intensity": rng.normal(120, 10, 300)}
    ref = build_drift_reference(bank, val, rng.beta(2, 5, 300), stats, {})
    return ref.projection, ref


def test_the_detector_checks_every_n_images_once_its_window_is_full() -> None:
    from pneumo.monitoring.detector import DriftDetector

    rng = np.random.default_rng(6)
    projection, ref = _reference(rng)
    detector = DriftDetector(ref, window=50, every=25, alpha=0.01)

    def feed(n: int, shift: float, brighter: float) -> list[bool]:
        emb = projection(embeddings(rng, n, shift))
        return [
            detector.add(e, float(p), {"mean_intensity": float(m), "orig_width": None})
            for e, p, m in zip(
                emb, rng.beta(2, 5, n), rng.normal(120 + brighter, 10, n), strict=True
            )
        ]

    due = feed(75, 0.0, 0.0)
    assert [i for i, d in enumerate(due) if d] == [49, 74]  # full at 50, then every 25
    quiet = detector.check()
    assert quiet.images == 50 and quiet.drifted == []
    assert [r.name for r in quiet.results] == ["embedding_mmd", "score_ks", "mean_intensity_ks"]
    feed(50, 2.0, 40.0)  # another population, brighter: the whole window
    loud = detector.check()
    assert set(loud.drifted) == {"embedding_mmd", "mean_intensity_ks"}  # scores alike
    late = DriftDetector(ref, window=4, every=100, seconds=60)
    stats = {"mean_intensity": 120.0}
    assert [late.add(None, 0.5, stats, now=t) for t in (1, 2, 3, 4, 30)] == [False] * 5
    assert late.add(None, 0.5, stats, now=70)  # a minute since the last check, new images in
    assert not late.add(None, 0.5, stats, now=71)
    with pytest.raises(ValueError, match="window"):
        DriftDetector(ref, window=1)
