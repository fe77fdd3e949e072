"""Every common DICOM encoding decodes (GDCM beside Pillow), with files encoded by GDCM and with
pydicom's own test files; what cannot be decoded is refused by kind, never with a crash."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_files

from pneumo.data.decode.failures import ImageDecodeError
from pneumo.data.decode.image import decode
from pneumo.preprocess import ImageSpec
from tests.conftest import dicom_bytes, gdcm_encoded

SPEC = ImageSpec(size=64)
LOSSLESS = ["JPEGLosslessProcess14_1", "JPEGLosslessProcess14", "JPEGLSLossless",
            "JPEG2000Lossless", "RLELossless"]  # fmt: skip


def _radiograph(bits: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:96, 0:80]
    top = 2**bits - 1
    smooth = (np.sin(xx / 7) + np.cos(yy / 9) + 2) / 4 * (top - 64)
    dtype = np.uint8 if bits == 8 else np.uint16
    pixels: np.ndarray = (smooth + rng.integers(0, 64, (96, 80))).astype(dtype)
    return pixels


@pytest.mark.parametrize("syntax", LOSSLESS)
@pytest.mark.parametrize("bits", [8, 12, 16])
def test_lossless_encodings_decode_to_the_same_pixels(syntax: str, bits: int) -> None:
    raw = dicom_bytes(_radiograph(bits), bits=bits)
    encoded = gdcm_encoded(raw, syntax)
    meta = pydicom.dcmread(pydicom.filebase.DicomBytesIO(encoded)).file_meta
    assert meta.TransferSyntaxUID.is_compressed, meta.TransferSyntaxUID
    np.testing.assert_array_equal(decode(encoded, SPEC).pixels, decode(raw, SPEC).pixels)


def test_jpeg_baseline_decodes_close_to_the_original() -> None:
    raw = dicom_bytes(_radiograph(8), bits=8)
    lossy = decode(gdcm_encoded(raw, "JPEGBaselineProcess1"), SPEC).pixels.astype(int)
    assert np.abs(lossy - decode(raw, SPEC).pixels).mean() < 3


def test_twelve_bit_jpeg_extended_is_unsupported_with_a_hint() -> None:
    encoded = gdcm_encoded(dicom_bytes(_radiograph(12), bits=12), "JPEGExtendedProcess2_4")
    with pytest.raises(ImageDecodeError) as err:
        decode(encoded, SPEC)
    assert err.value.kind == "unsupported" and "12-bit JPEG" in err.value.reason
    assert "pylibjpeg" in err.value.hint and "GPL" in err.value.hint


# pydicom's own test files that hold one 2-D gray image but cannot be scored, and why
NOT_DECODED = {
    "JPEG-lossy.dcm": "unsupported",  # 12-bit JPEG Extended
    "JPGExtended.dcm": "unsupported",  # 12-bit JPEG Extended
    "JPEG2000-embedded-sequence-delimiter.dcm": "corrupt",  # a broken codestream
    "MR_truncated.dcm": "corrupt",
    "examples_palette.dcm": "unsupported",  # PALETTE COLOR
    "nested_priv_SQ.dcm": "corrupt",  # no Rows/Columns
    "meta_missing_tsyntax.dcm": "corrupt",
}


def _single_gray_images() -> list[Path]:
    found = []
    for name in sorted(set(get_testdata_files("**/*"))):  # DICOMDIR's files have no suffix
        if not Path(name).is_file() or Path(name).suffix in (".txt", ".json", ".gz", ".dump"):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ds = pydicom.dcmread(name, stop_before_pixels=False, force=True)
            except Exception:
                continue
            try:
                frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
                samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
            except ValueError:  # badVR.dcm and the like: no image to speak of
                continue
        if "PixelData" in ds and samples == 1 and frames == 1:
            found.append(Path(name))
    return found


def test_pydicoms_test_files_decode_or_are_refused_by_kind(
    capfd: pytest.CaptureFixture[str],
) -> None:
    files = _single_gray_images()
    syntaxes = set()
    for path in files:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, force=True)
            try:
                decoded = decode(path.read_bytes(), SPEC)
            except ImageDecodeError as exc:
                assert NOT_DECODED.get(path.name) == exc.kind, (path.name, exc.kind, exc.reason)
                continue
        assert path.name not in NOT_DECODED, path.name
        assert decoded.pixels.shape == (64, 64) and decoded.pixels.dtype == np.uint8
        syntaxes.add(str(getattr(ds.file_meta, "TransferSyntaxUID", "")))
    assert len(files) >= 50
    from pydicom import uid

    wanted = {
        uid.JPEG2000, uid.JPEG2000Lossless, uid.JPEGLSLossless, uid.JPEGLSNearLossless,
        uid.RLELossless, uid.DeflatedExplicitVRLittleEndian, uid.ExplicitVRBigEndian,
    }  # fmt: skip
    assert wanted <= syntaxes, wanted - syntaxes
    err = capfd.readouterr().err
    assert "tiles" not in err and "Marker" not in err, err  # nothing printed past the logs
