"""Which decoder a file's first bytes call for: DICOM (with or without its preamble) or not."""

from __future__ import annotations

import struct

_DICOM_MAGIC = b"DICM"  # after the 128-byte preamble of every DICOM Part 10 file
_DICOM_MAGIC_OFFSET = 128
# the value representations of an explicit-VR data element, for a data set without preamble
_VRS = frozenset(
    b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL "
    b"UN UR US UT UV".split()
)


def is_dicom(data: bytes) -> bool:
    """A DICOM Part 10 file (``DICM`` after the preamble) or a bare data set (no preamble)."""
    end = _DICOM_MAGIC_OFFSET + len(_DICOM_MAGIC)
    return data[_DICOM_MAGIC_OFFSET:end] == _DICOM_MAGIC or is_bare_dicom(data)


def is_bare_dicom(data: bytes) -> bool:
    """A data set written without the 128-byte preamble: it opens with a file meta (group
    0002) or identifying (group 0008) element, explicit VR or implicit, little endian."""
    if len(data) < 8:
        return False
    group, element = struct.unpack_from("<HH", data)
    if group not in (0x0002, 0x0008) or element > 0x00FF:
        return False
    if data[4:6] in _VRS:
        return True
    length: int = struct.unpack_from("<I", data, 4)[0]
    return length < min(len(data), 256)
