"""How a decode fails: :class:`ImageDecodeError` and its kinds, and the pixel-count guard.

Every format's decoder (:mod:`~pneumo.data.decode.image`, :mod:`~pneumo.data.decode.dicom`)
raises only this error, with a ``kind`` a web service can map to its own status: ``empty``
(0 bytes), ``unsupported`` (not an image, or a format or DICOM codec we cannot read),
``corrupt`` (truncated or broken data) and ``too_large`` (the pixel-count guard).
"""

from __future__ import annotations

from typing import Final, Literal

DecodeErrorKind = Literal["empty", "unsupported", "corrupt", "too_large"]
DECODE_ERROR_KINDS: Final[tuple[DecodeErrorKind, ...]] = (
    "empty",
    "unsupported",
    "corrupt",
    "too_large",
)


class ImageDecodeError(ValueError):
    """A file that cannot become an image; ``reason`` is a sentence for the user.

    ``kind`` (one of :data:`DECODE_ERROR_KINDS`) classifies it: ``empty``, ``unsupported``,
    ``corrupt`` or ``too_large``. ``hint`` is for whoever runs pneumo (e.g. the decoder plugin
    to install), not for a remote client: a service logs it and never answers it.
    """

    def __init__(self, reason: str, kind: DecodeErrorKind = "corrupt", hint: str = "") -> None:
        if kind not in DECODE_ERROR_KINDS:
            raise ValueError(f"unknown decode error kind {kind!r}; one of {DECODE_ERROR_KINDS}")
        super().__init__(reason + (f" ({hint})" if hint else ""))
        self.reason = reason
        self.kind: DecodeErrorKind = kind
        self.hint = hint


def check_size(width: int, height: int, max_pixels: int) -> None:
    """The decompression-bomb guard, from the header's size alone (before any pixel is read)."""
    if width * height > max_pixels:
        raise ImageDecodeError(
            f"image too large: {width}x{height} = {width * height:,} pixels exceeds the "
            f"limit of {max_pixels:,} (decompression bomb guard)",
            "too_large",
        )
    if width < 1 or height < 1:
        raise ImageDecodeError(f"image has no pixels ({width}x{height})", "corrupt")
