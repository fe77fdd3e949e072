"""The pointing game (Zhang et al., 2016): does a map's maximum fall inside the annotated box?

Boxes are given on the original radiograph (NIH's ``BBox_List_2017.csv``: x, y, width, height in
the 1024-px originals) and mapped onto the model's input exactly as the decoder fits an image to
its square (``pneumo.data.decode.image``: pad, crop or stretch). The location prior
to compare with is the best fixed point: the one input pixel inside the most boxes, i.e. a map
that always points at the same place, chosen with hindsight on the very boxes it is scored on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pneumo.preprocess import ImageSpec


@dataclass(frozen=True)
class Box:
    """A box on the model's input, in pixels: rows [top, bottom), columns [left, right)."""

    top: float
    left: float
    bottom: float
    right: float

    def holds(self, row: float, col: float) -> bool:
        return self.top <= row < self.bottom and self.left <= col < self.right


def box_on_input(
    x: float, y: float, w: float, h: float, width: int, height: int, spec: ImageSpec
) -> Box:
    """The box (x, y, w, h) of a ``width`` x ``height`` original on the model's input square."""
    size = spec.size
    if spec.resize == "stretch" or width == height:
        sx, sy, dx, dy = size / width, size / height, 0.0, 0.0
    else:
        scale = size / (min(width, height) if spec.resize == "crop" else max(width, height))
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        sx, sy = new_w / width, new_h / height
        if spec.resize == "crop":
            dx, dy = -float((new_w - size) // 2), -float((new_h - size) // 2)
        else:
            dx, dy = float((size - new_w) // 2), float((size - new_h) // 2)
    top, left = max(0.0, y * sy + dy), max(0.0, x * sx + dx)
    bottom, right = min(float(size), (y + h) * sy + dy), min(float(size), (x + w) * sx + dx)
    return Box(top, left, bottom, right)


def peak_pixel(heat: np.ndarray) -> tuple[float, float]:
    """The centre (row, column) of the map's highest pixel (the first, in reading order)."""
    r, c = np.unravel_index(int(np.argmax(heat)), heat.shape)
    return float(r) + 0.5, float(c) + 0.5


def hits(heat: np.ndarray, box: Box) -> bool:
    """Whether the maximum of ``heat`` (the map upsampled to the model's input) is in ``box``."""
    return box.holds(*peak_pixel(heat))


def best_fixed_point(boxes: list[Box], size: int) -> tuple[int, tuple[float, float]]:
    """(how many boxes, the point): the input pixel centre inside the most boxes."""
    counts = np.zeros((size, size), dtype=np.int64)
    centres = np.arange(size) + 0.5
    for box in boxes:
        rows = (centres >= box.top) & (centres < box.bottom)
        cols = (centres >= box.left) & (centres < box.right)
        counts += np.outer(rows, cols)
    r, c = np.unravel_index(int(np.argmax(counts)), counts.shape)
    return int(counts[r, c]), (float(r) + 0.5, float(c) + 0.5)
