"""The numpy side of the activation maps: the weighted sum, its scaling, the upsampling (against
OpenCV's, which pytorch-grad-cam uses), the overlay."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from pneumo.explain.cam import ActivationMap, activation_maps
from pneumo.explain.overlay import jet, overlay, overlay_side, png


def test_the_map_is_the_relu_of_the_weighted_sum_of_the_channels() -> None:
    rng = np.random.default_rng(0)
    acts = rng.normal(size=(3, 5, 4, 6)).astype(np.float32)
    weights = rng.normal(size=(3, 5)).astype(np.float32)
    maps = activation_maps(acts, weights)
    for n, cam in enumerate(maps):
        want = np.zeros((4, 6), np.float32)
        for c in range(5):
            want += weights[n, c] * acts[n, c]
        np.testing.assert_allclose(cam.raw, np.maximum(want, 0), rtol=1e-5, atol=1e-6)
        assert cam.raw.min() >= 0 and cam.peak == pytest.approx(float(cam.raw.max()))
    with pytest.raises(ValueError, match="do not match"):
        activation_maps(acts, weights[:, :4])


def test_scaling_keeps_the_shape_of_a_faint_map_and_zeros_a_flat_one() -> None:
    faint = ActivationMap(np.array([[0.0, 1e-12], [2e-12, 4e-12]], np.float32))
    np.testing.assert_allclose(faint.scaled, [[0, 0.25], [0.5, 1.0]], rtol=1e-5)
    flat = ActivationMap(np.zeros((3, 3), np.float32))
    assert not flat.scaled.any() and not flat.upsampled(12).any()
    assert faint.peak_at == (0.75, 0.75)  # the bottom right cell's centre


@pytest.mark.parametrize(
    ("grid", "size"), [((4, 4), 128), ((7, 7), 224), ((3, 5), 64), ((1, 1), 8)]
)
def test_upsampling_is_opencvs_bilinear(grid: tuple[int, int], size: int) -> None:
    raw = np.random.default_rng(1).random(grid).astype(np.float32)
    cam = ActivationMap(raw)
    theirs = cv2.resize(cam.scaled, (size, size), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(cam.upsampled(size), theirs, atol=2e-6)


def test_jet_runs_blue_to_red() -> None:
    ends = jet(np.array([0.0, 0.5, 1.0]))
    assert tuple(ends[0]) == (0, 0, 128) and tuple(ends[2]) == (128, 0, 0)
    assert ends[1][1] == 255  # green in the middle


def test_the_overlay_shows_the_image_where_the_map_is_cold_and_heat_where_it_is_hot() -> None:
    pixels = np.full((64, 64), 100, np.uint8)
    side = overlay_side(64)
    assert side == 256 and overlay_side(300) == 300 and overlay_side(100) == 300
    heat = np.zeros((side, side), np.float32)
    heat[:, side // 2 :] = 1.0
    rgb = overlay(pixels, heat)
    assert rgb.shape == (side, side, 3) and rgb.dtype == np.uint8
    assert (rgb[:, : side // 2] == 100).all()  # cold: the radiograph as it is
    hot = rgb[:, -1].astype(int)
    assert (hot[:, 0] > 100).all() and (hot[:, 2] < 100).all()  # hot: towards red
    decoded = np.asarray(Image.open(io.BytesIO(png(rgb))))
    np.testing.assert_array_equal(decoded, rgb)


def test_ssim_is_one_for_the_same_map_and_near_zero_for_unrelated_ones() -> None:
    from pneumo.explain.agreement import ssim

    rng = np.random.default_rng(0)
    a = rng.random((64, 64))
    noisy = np.clip(a + 0.2 * rng.standard_normal(a.shape), 0, 1)
    assert ssim(a, a) == pytest.approx(1.0)
    assert 0.6 < ssim(a, noisy) < 0.95 and ssim(a, noisy) == pytest.approx(ssim(noisy, a))
    assert abs(ssim(a, rng.random((64, 64)))) < 0.05
    assert ssim(np.zeros((16, 16)), np.zeros((16, 16))) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="equal 2-D arrays"):
        ssim(a, a[:, :32])
