"""What decoding a file will cost in memory, read from its header before any pixel is.

A small file can claim a huge image (a 284-byte BLP claiming 83 million RGBA pixels), and the
pixel count alone does not say the cost: an RGBA or 16-bit image takes many bytes a pixel on
its way to 8-bit gray. :func:`decoded_bytes` estimates the peak bytes the decode of
:mod:`pneumo.data.decode.image` allocates for a file, so a service can refuse what could
never fit and make concurrent decodes wait for each other instead of exhausting memory.

The bytes a pixel costs (``BYTES_PER_PIXEL``) count the decoded image, the copies made on the
way to gray (alpha compositing over black, the int64 arithmetic of 16-bit scaling) and the gray
result; they are upper bounds of :func:`~pneumo.data.decode.image.decode`'s own steps. DICOM
counts every frame pydicom decodes, at its bits allocated, plus the same gray path.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

# Pillow mode → peak bytes a pixel while decoding to 8-bit gray (see the module's docstring).
BYTES_PER_PIXEL = {
    "1": 2, "L": 2, "P": 6, "LA": 4, "PA": 10, "La": 4,
    "RGB": 5, "YCbCr": 5, "LAB": 5, "HSV": 5,
    "RGBA": 14, "RGBa": 14, "RGBX": 14, "CMYK": 9,
    "I;16": 20, "I;16L": 20, "I;16B": 20, "I;16N": 20, "I": 26, "F": 26,
}  # fmt: skip
UNKNOWN_MODE_BYTES = 26  # the largest above: a mode not listed is costed as the worst known
DICOM_GRAY_PATH = 17  # int64 scaling and the 8-bit result, a pixel of the first frame


def pillow_bytes(width: int, height: int, mode: str) -> int:
    """Peak bytes of decoding a ``width`` x ``height`` image of Pillow ``mode`` to gray."""
    return width * height * BYTES_PER_PIXEL.get(mode, UNKNOWN_MODE_BYTES)


def dicom_bytes(ds: Dataset) -> int:
    """Peak bytes of decoding the pixels of the DICOM header ``ds`` (every frame, as pydicom
    decodes them) and the first frame's way to gray."""
    try:
        rows, columns = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
        frames = max(1, int(ds.get("NumberOfFrames", 1) or 1))
        samples = max(1, int(ds.get("SamplesPerPixel", 1) or 1))
        sample_bytes = max(1, math.ceil(int(ds.get("BitsAllocated", 8) or 8) / 8))
    except (TypeError, ValueError):
        return 0  # the decode refuses such a header before allocating
    pixels = rows * columns
    return pixels * frames * samples * sample_bytes + pixels * DICOM_GRAY_PATH
