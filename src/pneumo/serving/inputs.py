"""Uploads → model input, with every failure turned into a 4xx that says what was wrong.

The bytes are decoded in memory by :func:`pneumo.data.decode.image.decode` (the same function
`prepare` cached the training images with) and normalised by the model's own
:class:`~pneumo.preprocess.PreprocessSpec`. Nothing is written to disk, and the client's file
name is never used for anything.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from pneumo.data.decode.cost import decoded_bytes
from pneumo.data.decode.failures import ImageDecodeError
from pneumo.data.decode.image import decode
from pneumo.preprocess import PreprocessSpec

# ImageDecodeError.kind → (HTTP status, error code)
STATUS_BY_KIND = {
    "empty": (422, "empty_file"),
    "unsupported": (415, "unsupported_media_type"),
    "corrupt": (422, "invalid_image"),
    "too_large": (422, "image_too_large"),
}


class ApiError(Exception):
    """Answered as ``{"error": code, "detail": detail}`` with ``status``."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


def decode_cost(data: bytes, budget: int, label: str) -> int:
    """The bytes decoding ``data`` will take (from its header); :class:`ApiError` if more than
    the whole ``budget``."""
    need = decoded_bytes(data)
    if need > budget:
        raise ApiError(
            422,
            "image_too_large",
            f"{label}: decoding this image would take {need / 2**20:,.0f} MB, more than the "
            f"service's decode budget of {budget / 2**20:,.0f} MB",
        )
    return need


def prepare_upload(
    data: bytes, spec: PreprocessSpec, label: str, max_pixels: int | None = None
) -> np.ndarray:
    """File bytes → float32 (1, 1, S, S); raises :class:`ApiError` naming ``label``.

    ``max_pixels`` lowers the model's own pixel limit (the service's policy)."""
    image = spec.image
    if max_pixels is not None and max_pixels < image.max_pixels:
        image = replace(image, max_pixels=max_pixels)
    try:
        pixels = decode(data, image).pixels
    except ImageDecodeError as exc:
        status, code = STATUS_BY_KIND.get(getattr(exc, "kind", "corrupt"), (422, "invalid_image"))
        hint = " Send a PNG, JPEG or DICOM chest radiograph." if status == 415 else ""
        raise ApiError(status, code, f"{label}: {exc.reason}.{hint}") from None
    return spec.normalize(pixels)
