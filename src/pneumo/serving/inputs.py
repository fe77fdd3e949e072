"""Uploads → model input, with every failure turned into a 4xx that says what was wrong.

Two steps, both in a worker thread: :func:`inspect_upload` reads the header (no pixel decoded)
and applies the input policy and the decode budget; :func:`prepare_upload` decodes the bytes in
memory with :func:`pneumo.data.decode.image.decode` (the same function `prepare` cached the
training images with) at the model's own image spec and applies the policy's colour rule; the
model's graph normalises the pixels. Nothing is written to disk, and the client's file
name is never used for anything. What only the operator should read (a decoder plugin to
install) goes to the log, never to the client.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from pneumo.data.decode.failures import ImageDecodeError, check_size
from pneumo.data.decode.header import read_header
from pneumo.data.decode.image import Decoded, decode
from pneumo.preprocess import PreprocessSpec
from pneumo.serving.api_errors import ApiError
from pneumo.serving.logs import event
from pneumo.serving.policy import InputPolicy

__all__ = ["ApiError", "decode_upload", "inspect_upload", "prepare_upload"]

# ImageDecodeError.kind → (HTTP status, error code)
STATUS_BY_KIND = {
    "empty": (422, "empty_file"),
    "unsupported": (415, "unsupported_media_type"),
    "corrupt": (422, "invalid_image"),
    "too_large": (422, "image_too_large"),
}


def _refusal(exc: ImageDecodeError, label: str) -> ApiError:
    status, code = STATUS_BY_KIND.get(exc.kind, (422, "invalid_image"))
    if exc.hint:
        event("decode_hint", logging.WARNING, kind=exc.kind, reason=exc.reason, hint=exc.hint)
    return ApiError(status, code, f"{label}: {exc.reason}.")


def inspect_upload(
    data: bytes, policy: InputPolicy, spec: PreprocessSpec, budget: int, max_pixels: int,
    label: str,
) -> int:  # fmt: skip
    """The bytes decoding ``data`` will take, once its header passed the policy and the pixel
    limit; :class:`ApiError` naming ``label`` otherwise, or if more than the whole ``budget``."""
    try:
        header = read_header(data, policy.formats)
        check_size(header.width, header.height, min(max_pixels, spec.image.max_pixels))
    except ImageDecodeError as exc:
        raise _refusal(exc, label) from None
    policy.check_header(header, label, spec.image.size)
    need = header.decoded_bytes
    if need > budget:
        raise ApiError(
            422,
            "image_too_large",
            f"{label}: decoding this image would take {need / 2**20:,.0f} MB, more than the "
            f"service's decode budget of {budget / 2**20:,.0f} MB",
        )
    return need


def prepare_upload(
    data: bytes,
    spec: PreprocessSpec,
    label: str,
    policy: InputPolicy | None = None,
    max_pixels: int | None = None,
) -> np.ndarray:
    """File bytes → uint8 pixels (1, S, S), as the model's input takes them (it normalises
    them); raises :class:`ApiError` naming ``label``.

    ``policy`` limits the formats and refuses colour images (without one, every format the
    decoder reads is scored); ``max_pixels`` lowers the model's own pixel limit."""
    return decode_upload(data, spec, label, policy, max_pixels).pixels[None]


def decode_upload(
    data: bytes,
    spec: PreprocessSpec,
    label: str,
    policy: InputPolicy | None = None,
    max_pixels: int | None = None,
) -> Decoded:
    """:func:`prepare_upload`, keeping what the decode learnt of the file (its size, mode)."""
    image = spec.image
    if max_pixels is not None and max_pixels < image.max_pixels:
        image = replace(image, max_pixels=max_pixels)
    try:
        decoded = decode(data, image, policy.formats if policy else None)
    except ImageDecodeError as exc:
        raise _refusal(exc, label) from None
    if policy is not None:
        policy.check_decoded(decoded, label)
    return decoded
