"""Decode any supported X-ray file to an 8-bit grayscale square: the cache's preprocessing.

This is the one definition of "file → pixels" in pneumo. `prepare` uses it to fill the image
cache, and the inference service uses the same function on uploads, so a model never sees pixels
prepared differently from those it was trained on.

Choices, and why:
- Grayscale, 8 bits. Radiographs are single-channel; RGB(A) and palette files (NIH ships a few
  RGBA PNGs) are converted with the ITU-R 601-2 luma transform after compositing any alpha over
  black (the background of a radiograph).
- 16-bit input keeps its absolute intensities: values are scaled from the range the bit depth
  allows, 0..4095 when the image fits in 12 bits (common for detectors) and 0..65535 otherwise.
  A per-image min-max stretch would erase exposure differences the model may rely on.
- EXIF orientation is applied, so a rotated phone or scanner JPEG is upright.
- Aspect ratio (``resize``): ``pad`` (default) fits the long side and centres the image on black,
  so nothing is cut and nothing is distorted; ``crop`` fills the square and cuts the long side's
  ends; ``stretch`` ignores the aspect ratio. NIH originals are square, so all three agree there.
- Resampling is Pillow's antialiased bilinear filter. JPEGs are decoded at a reduced DCT scale
  when that is still at least the target size (``draft``), which is several times faster on
  full-resolution files.
- DICOM files (``DICM`` at byte 128, or a bare data set without the preamble) are read by
  :mod:`pneumo.data.decode.dicom`, which applies the
  file's own modality and VOI transforms (see there) and hands back 8-bit gray for the same
  resizing as every other format.

Every failure is an :class:`~pneumo.data.decode.failures.ImageDecodeError` with a ``kind``:
``empty`` (0 bytes), ``unsupported`` (not an image, or a format / DICOM codec we cannot read),
``corrupt`` (truncated or broken data) and ``too_large`` (the pixel-count guard), so that a web
service can answer each with its own status.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from pneumo.data.decode.colour import colour_share
from pneumo.data.decode.failures import ImageDecodeError, check_size
from pneumo.data.decode.header import DICOM, not_accepted, open_image
from pneumo.data.decode.sniff import is_dicom
from pneumo.preprocess import ImageSpec, ResizeMode

_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class Decoded:
    pixels: np.ndarray  # uint8, (size, size)
    src_mode: str
    orig_width: int
    orig_height: int
    colour: float = 0.0  # share of coloured pixels (colour.colour_share); 0 for gray files


def _open(data: bytes, max_pixels: int, formats: tuple[str, ...] | None) -> Image.Image:
    if not data:
        raise ImageDecodeError("empty file (0 bytes)", "empty")
    pillow = None if formats is None else [f for f in formats if f != DICOM]
    img = open_image(data, pillow, formats)
    check_size(*img.size, max_pixels)
    return img


def _high_bit_to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind == "f":
        arr = np.nan_to_num(arr.astype(np.float64), nan=0.0)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    arr = np.clip(arr.astype(np.int64), 0, 65535)
    top = 4095 if int(arr.max(initial=0)) <= 4095 else 65535
    return ((arr * 255 + top // 2) // top).astype(np.uint8)


_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"})


def _to_gray(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "L":
        return img
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return Image.fromarray(_high_bit_to_uint8(np.asarray(img)))
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = img.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(black, rgba).convert("L")
    return img.convert("L")


def _fit(img: Image.Image, size: int, resize: ResizeMode) -> Image.Image:
    width, height = img.size
    if resize == "stretch" or width == height:
        return img.resize((size, size), Image.Resampling.BILINEAR)
    scale = size / (min(width, height) if resize == "crop" else max(width, height))
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    scaled = img.resize((new_w, new_h), Image.Resampling.BILINEAR)
    if resize == "crop":
        left, top = (new_w - size) // 2, (new_h - size) // 2
        return scaled.crop((left, top, left + size, top + size))
    canvas = Image.new("L", (size, size), 0)
    canvas.paste(scaled, ((size - new_w) // 2, (size - new_h) // 2))
    return canvas


def _decode_dicom(data: bytes, spec: ImageSpec) -> Decoded:
    from pneumo.data.decode import dicom  # pydicom is imported only when a DICOM file turns up

    gray, src_mode, colour = dicom.to_gray_image(data, spec.max_pixels)
    width, height = gray.size
    out = np.asarray(_fit(gray, spec.size, spec.resize), dtype=np.uint8)
    return Decoded(out, src_mode, width, height, colour)


def decode(data: bytes, spec: ImageSpec, formats: tuple[str, ...] | None = None) -> Decoded:
    """File bytes → ``spec.size`` square uint8 array; raises :class:`ImageDecodeError`.

    ``formats`` (e.g. ``("PNG", "JPEG", "DICOM")``) limits what is opened; default: all."""
    if is_dicom(data):
        if formats is not None and DICOM not in formats:
            raise not_accepted(DICOM, formats)
        return _decode_dicom(data, spec)
    img = _open(data, spec.max_pixels, formats)
    orig_width, orig_height = img.size
    src_mode = img.mode
    try:
        if img.format == "JPEG":
            img.draft(img.mode, (spec.size, spec.size))
        img.load()
        orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
        if orientation in range(2, 9):
            img = ImageOps.exif_transpose(img)
        colour = colour_share(img) if img.mode not in _GRAY_MODES else 0.0
        gray = _to_gray(img)
        out = np.asarray(_fit(gray, spec.size, spec.resize), dtype=np.uint8)
    except ImageDecodeError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(
            f"image too large (decompression bomb guard): {exc}", "too_large"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        message = str(exc)
        if message.startswith("decoder ") and message.endswith(" not available"):
            # this Pillow build lacks the codec (e.g. JPEG 2000 without OpenJPEG)
            raise ImageDecodeError(
                f"unsupported image encoding: {message}", "unsupported"
            ) from None
        raise ImageDecodeError(f"truncated or corrupt image data: {exc}", "corrupt") from None
    if orientation in (5, 6, 7, 8):
        orig_width, orig_height = orig_height, orig_width
    return Decoded(out, src_mode, orig_width, orig_height, colour)
