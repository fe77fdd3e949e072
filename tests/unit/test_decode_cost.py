"""The decode cost read from headers: what a file will take before a pixel is decoded."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from pneumo.data.decode.cost import BYTES_PER_PIXEL, DICOM_GRAY_PATH
from pneumo.data.decode.header import decoded_bytes
from tests.conftest import dicom_bytes, rgba_png


def test_a_small_file_claiming_a_huge_image_is_costed_from_its_header() -> None:
    claim = rgba_png(1, 83_886_338, rows=1)
    assert len(claim) < 1000
    assert decoded_bytes(claim) == 83_886_338 * BYTES_PER_PIXEL["RGBA"]


def test_gray_and_sixteen_bit_files_cost_their_mode() -> None:
    gray = io.BytesIO()
    Image.fromarray(np.zeros((30, 40), dtype=np.uint8)).save(gray, format="PNG")
    assert decoded_bytes(gray.getvalue()) == 1200 * BYTES_PER_PIXEL["L"]
    deep = io.BytesIO()
    Image.fromarray(np.zeros((30, 40), dtype=np.uint16)).save(deep, format="PNG")
    assert decoded_bytes(deep.getvalue()) == 1200 * BYTES_PER_PIXEL["I;16"]


def test_dicom_counts_bits_allocated_and_the_gray_path() -> None:
    data = dicom_bytes(np.zeros((20, 30), dtype=np.uint16), bits=12)
    assert decoded_bytes(data) == 600 * 2 + 600 * DICOM_GRAY_PATH


def test_what_has_no_readable_header_costs_nothing() -> None:
    assert decoded_bytes(b"") == 0
    assert decoded_bytes(b"not an image at all") == 0
