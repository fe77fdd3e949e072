"""DICOM file bytes → 8-bit grayscale image, for :func:`pneumo.data.decode.image.decode`.

A DICOM radiograph stores detector values, not display values; the file says how to turn one
into the other, and we follow it with pydicom's own implementations of the standard's steps
(PS3.3 C.11, PS3.4 N.2):

1. Read the header with ``pydicom.dcmread`` and check ``Rows * Columns`` against the pixel limit
   before any pixel data is decoded (a tiny compressed file can claim a huge image).
2. Decode only the first frame (``pixel_array(ds, index=0)``); a multi-frame radiograph is a
   series of exposures of which the first is the one a viewer shows.
3. Colour (``SamplesPerPixel == 3``; YBR is converted to RGB by pydicom) becomes gray with
   Pillow's ITU-R 601-2 luma transform, exactly as an RGB PNG would. The grayscale transforms
   below do not apply to colour images in the standard, so they are not applied here.
4. Modality LUT first (``apply_modality_lut``: the Modality LUT Sequence, or Rescale Slope and
   Intercept), because it turns stored values into the physical units in which the VOI LUT and
   the window are defined; windowing raw stored values would be wrong whenever the file has a
   rescale.
5. Then the VOI transform: the VOI LUT Sequence when present (``apply_voi``; pydicom prefers the
   LUT to a window too), otherwise Window Center / Width (``apply_windowing``; the first window
   when there are several, the one the modality chose as default). Its output range maps to
   0..255: for a window, the range pydicom's windowing produces (found by windowing -inf and
   +inf, so the rules for signed data, rescales and Modality LUTs are pydicom's); for a VOI LUT,
   the range of the table's own entries (robust to the common 12-bit table declared as 16-bit).
   Values outside a window are therefore clipped to 0 and 255.
6. Without a VOI LUT or window there is no display range in the file, so the modality values are
   min-max stretched to 0..255; a constant image (no information at all) becomes all zeros.
   This differs from 16-bit PNGs, whose absolute scale is kept: a DICOM's modality values have
   no fixed range to scale from, and files without a window are rare for projection X-rays.
7. ``MONOCHROME1`` (minimum value = white, used by many CR/DX systems) is inverted after
   windowing, so bone is bright and air is dark as in ``MONOCHROME2`` and in every PNG/JPEG the
   model was trained on. The window is defined on the stored polarity, so inverting earlier would
   apply it to the wrong values.

Errors are :class:`~pneumo.data.decode.image.ImageDecodeError`: no pixel data, a photometric
interpretation other than MONOCHROME1/2 or 3-sample colour (e.g. PALETTE COLOR), or a transfer
syntax without a decoder (:mod:`pneumo.data.decode.dicom_codecs`) is ``unsupported`` (what
to install in the error's ``hint``, for the operator, not the client); the pixel
limit is ``too_large``; anything else, including a missing or unknown photometric value, is
``corrupt``. No pydicom exception escapes. Messages name only technical values (size, bits,
photometric interpretation, transfer syntax; quoted values in pydicom's LUT/window messages are
redacted), never patient or study data from the header. pydicom's own warnings and log records
can still quote the technical elements read here when they are malformed.
"""

from __future__ import annotations

import io
import re
from typing import Any, Final

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels.processing import apply_modality_lut, apply_voi, apply_windowing
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from pneumo.data.decode.colour import colour_share
from pneumo.data.decode.dicom_codecs import first_frame
from pneumo.data.decode.failures import ImageDecodeError, check_size
from pneumo.data.decode.sniff import is_bare_dicom

MONOCHROME: Final = ("MONOCHROME1", "MONOCHROME2")
COLOUR: Final = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_PARTIAL_420", "YBR_ICT", "YBR_RCT")
_KNOWN_PHOTOMETRIC: Final = (*MONOCHROME, *COLOUR, "PALETTE COLOR", "YBR_PARTIAL_422", "HSV")
_ARGB_CMYK: Final = ("ARGB", "CMYK")
_QUOTED: Final = re.compile(r"'[^']*'|\"[^\"]*\"")


def to_gray_image(data: bytes, max_pixels: int) -> tuple[Image.Image, str, float]:
    """DICOM bytes → (8-bit grayscale ``PIL.Image`` of the first frame, source mode, share of
    coloured pixels).

    The source mode reads like ``"DICOM MONOCHROME2 12-bit"``. Raises
    :class:`~pneumo.data.decode.image.ImageDecodeError` for every failure.
    """
    ds = _read(data)
    rows, columns, bits, photometric, samples = _image_header(ds)
    check_size(columns, rows, max_pixels)
    arr = first_frame(ds, bits)
    colour = 0.0
    try:
        if samples == 3:
            gray, colour = _colour_to_gray(arr, bits)
        else:
            gray = _monochrome_to_uint8(arr, ds, invert=photometric == "MONOCHROME1")
    except ImageDecodeError:
        raise
    except Exception as exc:  # a bad LUT or window: pydicom raises many types
        raise ImageDecodeError(
            f"invalid DICOM grayscale transform (modality LUT, VOI LUT or window): "
            f"{_redacted(exc)}",
            "corrupt",
        ) from None
    return Image.fromarray(gray), f"DICOM {photometric} {bits}-bit", colour


def _redacted(exc: Exception) -> str:
    """``Type: message`` with every quoted value in pydicom's message replaced by ``'...'``."""
    message = _QUOTED.sub("'...'", " ".join(str(exc).split()))
    return f"{type(exc).__name__}: {message[:300]}"


def read_header(data: bytes) -> Dataset:
    """The dataset without decoding its pixels (for :mod:`pneumo.data.decode.cost`)."""
    return _read(data, stop_before_pixels=True)


def _read(data: bytes, stop_before_pixels: bool = False) -> Dataset:
    """The data set of a Part 10 file, or of a bare data set written without the preamble and
    file meta (its encoding is then the one pydicom finds, and so is its transfer syntax)."""
    bare = is_bare_dicom(data)
    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=stop_before_pixels, force=bare)
    except Exception as exc:  # pydicom's messages may quote header bytes: name the type only
        raise ImageDecodeError(
            f"unreadable DICOM header: truncated or corrupt file ({type(exc).__name__})", "corrupt"
        ) from None
    if bare and not ds.file_meta.get("TransferSyntaxUID"):
        implicit, little = getattr(ds, "original_encoding", (None, None))
        if little is True and implicit is not None:
            ds.file_meta.TransferSyntaxUID = (
                ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
            )
    return ds


def _image_header(ds: Dataset) -> tuple[int, int, int, str, int]:
    """(rows, columns, bits stored, photometric interpretation, samples per pixel), validated."""
    if "PixelData" not in ds:
        other = "FloatPixelData" in ds or "DoubleFloatPixelData" in ds
        raise ImageDecodeError(
            "unsupported DICOM pixel data: float pixel data is not a radiograph"
            if other
            else "DICOM file has no pixel data (not an image: e.g. a report or a presentation "
            "state, or a file cut off before its pixels)",
            "unsupported",
        )
    try:
        missing = [k for k in ("Rows", "Columns", "BitsAllocated") if k not in ds]
        if missing:
            raise ImageDecodeError(
                f"incomplete DICOM image header: no {', '.join(missing)}", "corrupt"
            )
        rows, columns = int(ds.Rows), int(ds.Columns)
        bits = int(ds.get("BitsStored") or ds.BitsAllocated)
        samples = int(ds.get("SamplesPerPixel") or 1)
        photometric = str(ds.get("PhotometricInterpretation") or "").strip().upper()
    except ImageDecodeError:
        raise
    except Exception as exc:
        raise ImageDecodeError(
            f"invalid DICOM image header: {type(exc).__name__}", "corrupt"
        ) from None
    if photometric not in _KNOWN_PHOTOMETRIC + _ARGB_CMYK:
        raise ImageDecodeError(
            "invalid DICOM image header: missing or unknown photometric interpretation",
            "corrupt",
        )
    supported = (samples == 1 and photometric in MONOCHROME) or (
        samples == 3 and photometric in COLOUR
    )
    if not supported:
        raise ImageDecodeError(
            f"unsupported DICOM photometric interpretation: {photometric} with "
            f"{samples} sample(s) per pixel",
            "unsupported",
        )
    return rows, columns, bits, photometric, samples


def _colour_to_gray(arr: np.ndarray, bits: int) -> tuple[np.ndarray, float]:
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ImageDecodeError(f"invalid DICOM colour pixel array shape {arr.shape}", "corrupt")
    if arr.dtype != np.uint8:
        top = float(2 ** min(max(bits, 1), 32) - 1)
        scaled = np.clip(arr.astype(np.float64), 0, top) * (255.0 / top)
        arr = np.rint(scaled).astype(np.uint8)
    rgb = Image.fromarray(arr)
    gray: np.ndarray = np.asarray(rgb.convert("L"))
    return gray, colour_share(rgb)


def _stretch(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``lo`` → 0 and ``hi`` → 255 linearly, clipped and rounded; ``lo == hi`` → zeros."""
    values = np.nan_to_num(values.astype(np.float64), nan=lo, posinf=hi, neginf=lo)
    if hi == lo or not np.isfinite(hi - lo):
        return np.zeros(values.shape, np.uint8)
    scaled = (values - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _has_voi_lut(ds: Dataset) -> bool:
    """The test ``apply_voi_lut`` uses: a first item with both descriptor and data."""
    seq = ds.get("VOILUTSequence")
    if not seq:
        return False
    item = seq[0]
    return item.get("LUTDescriptor") is not None and item.get("LUTData") is not None


def _has_window(ds: Dataset) -> bool:
    return ds.get("WindowCenter") is not None and ds.get("WindowWidth") is not None


def _voi_lut(values: np.ndarray, ds: Dataset) -> tuple[np.ndarray, float, float]:
    descriptor: Any = ds.VOILUTSequence[0].LUTDescriptor
    entries, first = int(descriptor[0]) or 2**16, int(descriptor[1])
    # LUT indices are integers; pydicom clips to the table anyway, clipping first avoids its
    # float-input warning and integer wrap-around for values far outside the table
    index = np.clip(np.rint(values.astype(np.float64)), first, first + entries - 1)
    mapped = apply_voi(index.astype(np.int64), ds, index=0)
    table = apply_voi(np.arange(first, first + entries, dtype=np.int64), ds, index=0)
    return mapped, float(table.min()), float(table.max())


def _window(values: np.ndarray, ds: Dataset) -> tuple[np.ndarray, float, float]:
    windowed = apply_windowing(values, ds, index=0)
    lo, hi = apply_windowing(np.array([-np.inf, np.inf]), ds, index=0)
    return windowed, float(lo), float(hi)


def _monochrome_to_uint8(arr: np.ndarray, ds: Dataset, *, invert: bool) -> np.ndarray:
    if arr.ndim != 2:
        raise ImageDecodeError(f"invalid DICOM grayscale pixel array shape {arr.shape}", "corrupt")
    values = apply_modality_lut(arr, ds)
    if _has_voi_lut(ds):
        shown, lo, hi = _voi_lut(values, ds)
    elif _has_window(ds):
        shown, lo, hi = _window(values, ds)
    else:
        finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
        if finite.size == 0:
            return np.zeros(values.shape, np.uint8)
        shown, lo, hi = values, float(finite.min()), float(finite.max())
    if hi == lo:  # a constant image, or a degenerate display range: no information
        return np.zeros(values.shape, np.uint8)
    out = _stretch(shown, lo, hi)
    return 255 - out if invert else out
