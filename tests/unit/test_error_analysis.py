"""The error-analysis section: which mistakes are shown, in which order, and what it says."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from pneumo.explain.cam import ActivationMap
from pneumo.reports.error_analysis import (
    FALSE_NEGATIVE,
    FALSE_POSITIVE,
    analyse_errors,
    markdown,
    worst_errors,
)


def test_the_most_confident_errors_of_each_kind_in_order() -> None:
    y = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    p = np.array([0.9, 0.2, 0.95, 0.6, 0.7, 0.7, 0.1, 0.8, 0.05, 0.4])
    ids = [f"img{i}" for i in range(10)]
    cases, counts = worst_errors(y, p, 0.5, ids, shown=3)
    assert counts == {FALSE_POSITIVE: 5, FALSE_NEGATIVE: 3}
    fp = [c.image_id for c in cases if c.kind == FALSE_POSITIVE]
    fn = [c.image_id for c in cases if c.kind == FALSE_NEGATIVE]
    assert fp == ["img2", "img0", "img4"]  # 0.95, 0.9, then the first of the two 0.7s
    assert fn == ["img8", "img6", "img9"]  # 0.05, 0.1, 0.4; 0.8 is a true positive
    assert all(c.probability == p[c.index] and c.label == y[c.index] for c in cases)
    # at the threshold itself an image is called positive (as the service decides)
    edge, _ = worst_errors(np.array([0, 1]), np.array([0.5, 0.5]), 0.5, ["a", "b"])
    assert [(c.image_id, c.kind) for c in edge] == [("a", FALSE_POSITIVE)]


def _maps(pixels: np.ndarray) -> list[ActivationMap]:
    """A map peaking at each image's brightest 8x8 cell."""
    out = []
    for image in pixels:
        cells = image.reshape(4, 8, 4, 8).mean(axis=(1, 3)).astype(np.float32)
        out.append(ActivationMap(cells))
    return out


def test_the_section_shows_the_maps_peaks_and_the_figure() -> None:
    y = np.array([0, 1, 0])
    p = np.array([0.9, 0.1, 0.2])
    cases, counts = worst_errors(y, p, 0.5, ["healthy.png", "sick.png", "fine.png"])
    pixels = np.zeros((2, 32, 32), np.uint8)
    pixels[0, :8, 24:] = 255  # top right
    pixels[1, 24:, :8] = 255  # bottom left
    analysis = analyse_errors(cases, counts, pixels, 0.5, _maps)
    assert [c.image_id for c in analysis.cases] == ["healthy.png", "sick.png"]
    shown = analysis.to_dict()["shown"]
    assert shown[0]["peak_at"] == [0.125, 0.875] and shown[1]["peak_at"] == [0.875, 0.125]
    text = "\n".join(markdown(analysis))
    assert "## Error analysis" in text and "(0.12, 0.88)" in text and "(0.88, 0.12)" in text
    assert "`healthy.png`" in text and "![Most confident errors](errors.png)" in text
    figure = Image.open(io.BytesIO(analysis.figure))
    assert figure.format == "PNG" and figure.width > 300
    colours = np.asarray(figure.convert("RGB"), dtype=np.int16)
    assert (np.abs(colours[..., 0] - colours[..., 2]) > 100).any()  # a heat map is drawn


def test_a_model_without_maps_and_a_model_without_errors() -> None:
    cases, counts = worst_errors(np.array([0, 1]), np.array([0.9, 0.9]), 0.5, ["a", "b"])
    analysis = analyse_errors(cases, counts, np.zeros((1, 16, 16), np.uint8), 0.5, None)
    assert analysis.maps is None and "peak_at" not in analysis.to_dict()["shown"][0]
    assert "no activation maps" in "\n".join(markdown(analysis))
    none, counts = worst_errors(np.array([0, 1]), np.array([0.1, 0.9]), 0.5, ["a", "b"])
    clean = analyse_errors(none, counts, np.zeros((0, 16, 16), np.uint8), 0.5, _maps)
    assert clean.cases == [] and "There are no errors" in "\n".join(markdown(clean))
