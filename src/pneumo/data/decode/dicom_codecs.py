"""The first frame of a DICOM's pixel data, with the decoder chosen for its transfer syntax.

pydicom decodes native (uncompressed), deflated and RLE data itself; compressed syntaxes go to
plugins. pneumo installs GDCM (``python-gdcm``, BSD licence) beside Pillow, which covers what
CR and DX files carry: JPEG baseline, JPEG Lossless (process 14 and its selection value 1,
the usual CR/DX syntax), JPEG-LS lossless and near-lossless, JPEG 2000 and RLE. Why GDCM and
not pylibjpeg: pylibjpeg's JPEG plugin wraps libjpeg under GPL-3.0, which an Apache-2.0
project cannot ship in its images; GDCM is one wheel under a permissive licence. The cost:
12-bit JPEG Extended (process 4), which GDCM's wheel does not decode, is ``unsupported``,
with a hint naming pylibjpeg for an operator who accepts its licence (pydicom then uses it).

The plugin is chosen, not left to pydicom's order: JPEG 2000 goes to Pillow's OpenJPEG, which
reports a broken codestream as an exception, where the OpenJPEG inside GDCM also prints to the
process's stderr (a line no JSON log collector can parse); 8-bit JPEG goes to Pillow first.
GDCM's own trace output is switched off before its first use.
"""

from __future__ import annotations

import functools
from typing import Final

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.utils import pixel_array
from pydicom.uid import (
    JPEG2000,
    UID,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
)

from pneumo.data.decode.failures import ImageDecodeError

# Plugins tried, in order, where the choice matters (any other syntax: pydicom's own order).
PREFERRED: Final[dict[UID, tuple[str, ...]]] = {
    JPEG2000: ("pillow",),
    JPEG2000Lossless: ("pillow",),
    JPEGBaseline8Bit: ("pillow", "gdcm", "pylibjpeg"),
    JPEGExtended12Bit: ("pillow", "gdcm", "pylibjpeg"),
}
TWELVE_BIT_JPEG: Final = ("pylibjpeg",)  # the plugins that decode 12-bit JPEG Extended
GPL_HINT: Final = (
    "12-bit JPEG needs pylibjpeg with pylibjpeg-libjpeg (GPL-3.0, so not installed with "
    "pneumo); GDCM and Pillow decode 8-bit JPEG only"
)


def transfer_syntax_name(uid: UID) -> str:
    if uid.is_transfer_syntax:  # a UID pydicom knows: its name and number
        return f"{uid.name} ({uid})"
    return str(uid) if uid.is_valid else "an invalid UID"


@functools.cache
def _quiet_gdcm() -> None:
    """GDCM prints its warnings and errors to stderr unless told not to; once per process."""
    try:
        import gdcm  # type: ignore[import-untyped]
    except ImportError:
        return
    gdcm.Trace.SetDebug(False)
    gdcm.Trace.SetWarning(False)
    gdcm.Trace.SetError(False)


def _plugins(uid: UID, available: set[str], bits: int) -> tuple[str, ...]:
    """The plugins to try for ``uid``, among ``available``; () for pydicom's own choice."""
    if uid in (JPEGBaseline8Bit, JPEGExtended12Bit) and bits > 8:
        usable = tuple(p for p in TWELVE_BIT_JPEG if p in available)
        if not usable:
            raise ImageDecodeError(
                f"unsupported DICOM pixel data: {bits}-bit JPEG ({transfer_syntax_name(uid)}) "
                "cannot be decoded here",
                "unsupported",
                hint=GPL_HINT,
            )
        return usable
    return tuple(p for p in PREFERRED.get(uid, ()) if p in available)


def first_frame(ds: Dataset, bits: int) -> np.ndarray:
    """Frame 0 of ``ds`` as pydicom decodes it (YBR → RGB); :class:`ImageDecodeError` else."""
    tsyntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if not tsyntax:
        raise ImageDecodeError("incomplete DICOM file meta: no transfer syntax", "corrupt")
    uid = UID(str(tsyntax))
    try:
        decoder = get_decoder(uid)
    except NotImplementedError:
        raise ImageDecodeError(
            f"unsupported DICOM transfer syntax: {transfer_syntax_name(uid)} "
            "has no pixel data decoder in pydicom",
            "unsupported",
        ) from None
    missing = "; ".join(decoder.missing_dependencies)
    if not decoder.is_available:
        raise ImageDecodeError(
            f"unsupported DICOM transfer syntax: {transfer_syntax_name(uid)} cannot be "
            "decoded here",
            "unsupported",
            hint=f"no pixel data decoder plugin is installed; install one of: {missing}",
        )
    plugins = _plugins(uid, set(decoder.available_plugins), bits)
    _quiet_gdcm()
    errors: list[str] = []
    for plugin in plugins or ("",):  # "": pydicom's order of every available plugin
        try:
            arr: np.ndarray = pixel_array(ds, index=0, decoding_plugin=plugin)
            return arr
        except Exception as exc:
            # pixel decoding messages quote only group 0028 values and byte counts
            errors.append(" ".join(str(exc).split())[:300])
    # The client hears what is wrong; which decoders said what (their names, their messages)
    # is for the operator's log.
    raise ImageDecodeError(
        f"truncated or corrupt DICOM pixel data ({transfer_syntax_name(uid)})",
        "corrupt",
        hint=f"every decoder refused it: {errors[-1]}",
    )
