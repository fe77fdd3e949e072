"""What a file is, read from its header alone: before a single pixel is decoded.

:func:`read_header` names the format, the size, the mode and the frame count of a PNG, JPEG
(or any format Pillow opens, when allowed) or DICOM file, the bytes decoding it will take
(:mod:`pneumo.data.decode.cost`), and for DICOM the elements that say what kind of image it is
(modality, SOP class, photometric interpretation). A service judges an upload on this before
it spends memory on it (:mod:`pneumo.serving.policy`).

``formats`` restricts which Pillow plugins may even look at the bytes: a file of another format
is refused as ``unsupported`` naming what it is, and no other plugin's parser runs on it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from pneumo.data.decode.cost import dicom_bytes, pillow_bytes
from pneumo.data.decode.failures import ImageDecodeError
from pneumo.data.decode.sniff import is_dicom

DICOM = "DICOM"


@dataclass(frozen=True)
class Header:
    format: str  # "PNG", "JPEG", "DICOM", ... (Pillow's name; "MPO" is a multi-picture JPEG)
    width: int
    height: int
    mode: str  # Pillow's mode, or the DICOM photometric interpretation
    frames: int
    decoded_bytes: int
    modality: str = ""  # DICOM only
    sop_class: str = ""  # DICOM only: the SOP Class UID
    sop_class_name: str = ""


def read_header(data: bytes, formats: tuple[str, ...] | None = None) -> Header:
    """The header of ``data``; :class:`ImageDecodeError` (``empty``, ``unsupported`` or
    ``corrupt``) when there is none to read or its format is not in ``formats``."""
    if not data:
        raise ImageDecodeError("empty file (0 bytes)", "empty")
    if is_dicom(data):
        if formats is not None and DICOM not in formats:
            raise not_accepted(DICOM, formats)
        return _dicom_header(data)
    pillow = None if formats is None else [f for f in formats if f != DICOM]
    img = open_image(data, pillow, formats)
    with img:
        width, height = img.size
        frames = int(getattr(img, "n_frames", 1) or 1)
        return Header(
            str(img.format), width, height, img.mode, frames, pillow_bytes(width, height, img.mode)
        )


def open_image(
    data: bytes, pillow: list[str] | None, accepted: tuple[str, ...] | None = None
) -> Image.Image:
    """``Image.open`` limited to the ``pillow`` plugins, every failure an ImageDecodeError."""
    try:
        return Image.open(io.BytesIO(data), formats=pillow)
    except UnidentifiedImageError:
        if accepted is not None:
            raise not_accepted(_identify(data), accepted) from None
        raise ImageDecodeError(
            "not an image: the content is no format Pillow can read", "unsupported"
        ) from None
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(
            f"image too large (decompression bomb guard): {exc}", "too_large"
        ) from None
    except Exception as exc:  # Pillow raises many types for broken headers
        raise ImageDecodeError(f"unreadable image header: {exc}", "corrupt") from None


def not_accepted(found: str | None, accepted: tuple[str, ...]) -> ImageDecodeError:
    listed = ", ".join(accepted)
    what = f"{found} files are not accepted" if found else "not an image in a format read here"
    return ImageDecodeError(f"{what}; accepted formats: {listed}", "unsupported")


# Magic bytes of formats an upload is often in, to name what was sent without running a parser.
_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"GIF87a", 0, "GIF"), (b"GIF89a", 0, "GIF"), (b"BM", 0, "BMP"), (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"), (b"WEBP", 8, "WEBP"), (b"\x00\x00\x01\x00", 0, "ICO"),
    (b"%!PS", 0, "EPS"), (b"\xc5\xd0\xd3\xc6", 0, "EPS"), (b"8BPS", 0, "PSD"),
    (b"\x00\x00\x00\x0cjP  ", 0, "JPEG 2000"), (b"\xffO\xffQ", 0, "JPEG 2000"),
    (b"DDS ", 0, "DDS"), (b"BLP1", 0, "BLP"), (b"BLP2", 0, "BLP"), (b"SIMPLE  =", 0, "FITS"),
    (b"%PDF", 0, "PDF"), (b"qoif", 0, "QOI"), (b"\x01\xda", 0, "SGI"),
    (b"\xd7\xcd\xc6\x9a", 0, "WMF"), (b"\x01\x00\x00\x00", 0, "EMF"),
)  # fmt: skip


def _identify(data: bytes) -> str | None:
    """The format ``data`` is in, from its magic bytes alone (no parser runs on it)."""
    for magic, offset, name in _SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            return name
    if len(data) > 2 and data[:1] == b"P" and data[1:2] in b"1234567" and data[2:3].isspace():
        return "PPM"
    return None


def _dicom_header(data: bytes) -> Header:
    from pneumo.data.decode import dicom

    ds = dicom.read_header(data)
    try:
        rows, columns = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
        frames = max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        raise ImageDecodeError("invalid DICOM image header (rows, columns or frames)") from None
    photometric = str(ds.get("PhotometricInterpretation") or "").strip().upper()
    sop = ds.get("SOPClassUID") or getattr(ds, "file_meta", {}).get("MediaStorageSOPClassUID")
    sop_name = getattr(sop, "name", "") if sop else ""
    return Header(
        DICOM, columns, rows, photometric, frames, dicom_bytes(ds),
        modality=str(ds.get("Modality") or "").strip().upper(),
        sop_class=str(sop or ""), sop_class_name=str(sop_name if sop_name != str(sop) else ""),
    )  # fmt: skip


def decoded_bytes(data: bytes) -> int:
    """Peak bytes decoding ``data`` would allocate; 0 when the header cannot be read (the
    decode then fails at once, allocating nothing)."""
    try:
        return read_header(data).decoded_bytes
    except ImageDecodeError:
        return 0
