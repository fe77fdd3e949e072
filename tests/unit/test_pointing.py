"""The pointing game's geometry against the real decoder, its hit rule and the location prior."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pneumo.data.decode.image import decode
from pneumo.explain.pointing import Box, best_fixed_point, box_on_input, hits, peak_pixel
from pneumo.preprocess import ImageSpec


@pytest.mark.parametrize("resize", ["pad", "crop", "stretch"])
@pytest.mark.parametrize("shape", [(600, 400), (400, 600), (512, 512)])
def test_a_box_lands_where_the_decoder_puts_its_pixels(resize: str, shape: tuple[int, int]) -> None:
    width, height = shape
    x, y, w, h = 150, 120, 100, 140  # a bright rectangle on the original
    original = np.zeros((height, width), np.uint8)
    original[y : y + h, x : x + w] = 255
    buffer = io.BytesIO()
    Image.fromarray(original).save(buffer, format="PNG")
    spec = ImageSpec(size=64, resize=resize)  # type: ignore[arg-type]
    pixels = decode(buffer.getvalue(), spec).pixels
    box = box_on_input(x, y, w, h, width, height, spec)
    rows, cols = np.nonzero(pixels > 127)  # the rectangle after resampling
    assert rows.min() + 0.5 == pytest.approx(box.top, abs=1.0)
    assert rows.max() + 0.5 == pytest.approx(box.bottom, abs=1.0)
    assert cols.min() + 0.5 == pytest.approx(box.left, abs=1.0)
    assert cols.max() + 0.5 == pytest.approx(box.right, abs=1.0)


def test_a_map_hits_when_its_maximum_is_inside_the_box() -> None:
    heat = np.zeros((32, 32), np.float32)
    heat[20, 5] = 1.0
    assert peak_pixel(heat) == (20.5, 5.5)
    assert hits(heat, Box(18, 2, 24, 8)) and not hits(heat, Box(0, 0, 20, 32))


def test_the_best_fixed_point_is_inside_the_most_boxes() -> None:
    boxes = [Box(0, 0, 10, 10), Box(5, 5, 15, 15), Box(8, 8, 12, 12), Box(20, 20, 30, 30)]
    count, (row, col) = best_fixed_point(boxes, 32)
    assert count == 3 and 8 <= row < 10 and 8 <= col < 10
    assert best_fixed_point([], 8)[0] == 0
