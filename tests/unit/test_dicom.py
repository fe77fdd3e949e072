"""DICOM → cached pixels: modality and VOI transforms, polarity, frames, colour and bad files."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import UID, HTJ2KLossless, JPEGBaseline8Bit, JPEGLosslessSV1

from pneumo.data.decode import dicom_codecs
from pneumo.data.decode.failures import DECODE_ERROR_KINDS, ImageDecodeError
from pneumo.data.decode.image import decode
from pneumo.preprocess import ImageSpec
from tests.conftest import dicom_bytes, dicom_dataset, dicom_file_bytes, gradient, png_bytes

SPEC = ImageSpec(size=64)
# a window of width 256 centred on 1000: DICOM's LINEAR function (c - 0.5, w - 1) maps the
# modality value m to m - 872 inside (872, 1127], to 0 at or below 872 and to 255 above
WINDOW = (1000.0, 256.0)


def windowed(modality: np.ndarray) -> np.ndarray:
    return np.clip(modality.astype(np.int64) - 872, 0, 255).astype(np.uint8)


def stretched(values: np.ndarray) -> np.ndarray:
    v = values.astype(np.float64)
    out: np.ndarray = np.rint((v - v.min()) * 255.0 / (v.max() - v.min())).astype(np.uint8)
    return out


def decode_error(data: bytes, spec: ImageSpec = SPEC) -> ImageDecodeError:
    with pytest.raises(ImageDecodeError) as err:
        decode(data, spec)
    return err.value


def stored_ramp() -> np.ndarray:
    """64x64 stored values 0..2047 (each twice), uint16."""
    return (np.arange(64 * 64).reshape(64, 64) // 2).astype(np.uint16)


# ---- pixel values -------------------------------------------------------------------------------


def test_16bit_without_window_is_min_max_stretch() -> None:
    stored = gradient(64).astype(np.uint16) * 16 + 500  # range 255 * 16: no rounding ties
    out = decode(dicom_bytes(stored), SPEC)
    assert (out.src_mode, out.orig_width, out.orig_height) == ("DICOM MONOCHROME2 16-bit", 64, 64)
    assert out.pixels.dtype == np.uint8 and out.pixels.shape == (64, 64)
    np.testing.assert_array_equal(out.pixels, stretched(stored))
    assert out.pixels.min() == 0 and out.pixels.max() == 255


def test_bits_stored_in_source_mode() -> None:
    stored = (gradient(64).astype(np.uint16) * 16).astype(np.uint16)
    assert decode(dicom_bytes(stored, bits=12), SPEC).src_mode == "DICOM MONOCHROME2 12-bit"
    eight = decode(dicom_bytes(gradient(64), bits=8), SPEC)
    assert eight.src_mode == "DICOM MONOCHROME2 8-bit"
    np.testing.assert_array_equal(eight.pixels, stretched(gradient(64)))


def test_constant_image_is_black() -> None:
    flat = np.full((64, 64), 1234, np.uint16)
    assert decode(dicom_bytes(flat), SPEC).pixels.max() == 0
    assert decode(dicom_bytes(flat, photometric="MONOCHROME1"), SPEC).pixels.max() == 0


def test_signed_pixels_are_stretched() -> None:
    stored = gradient(64).astype(np.int16) * 16 - 2000
    out = decode(dicom_bytes(stored), SPEC)
    np.testing.assert_array_equal(out.pixels, stretched(stored))


def test_window_clips_and_centres() -> None:
    values = np.array([0, 500, 872, 873, 1000, 1127, 1128, 60000], np.uint16)
    stored = np.tile(values, (8, 1))
    out = decode(dicom_bytes(stored, window=WINDOW), ImageSpec(size=8))
    assert list(out.pixels[0]) == [0, 0, 0, 1, 128, 255, 255, 255]
    np.testing.assert_array_equal(out.pixels, windowed(stored))


def test_window_over_whole_ramp_is_exact() -> None:
    stored = stored_ramp()
    out = decode(dicom_bytes(stored, window=WINDOW), SPEC)
    np.testing.assert_array_equal(out.pixels, windowed(stored))


def test_rescale_is_applied_before_the_window() -> None:
    stored = stored_ramp()
    out = decode(dicom_bytes(stored, slope=2, intercept=-1000, window=WINDOW), SPEC)
    # the window is in output units: it sees 2 * stored - 1000, not the stored values
    np.testing.assert_array_equal(out.pixels, windowed(2 * stored.astype(np.int64) - 1000))
    assert not np.array_equal(out.pixels, windowed(stored))


def test_rescale_without_window() -> None:
    stored = gradient(64).astype(np.uint16) * 16 + 500
    plain = decode(dicom_bytes(stored), SPEC).pixels
    # a positive affine rescale does not change a min-max stretch; a negative slope inverts it
    affine = decode(dicom_bytes(stored, slope=2.5, intercept=-1024), SPEC).pixels
    np.testing.assert_array_equal(affine, plain)
    negative = decode(dicom_bytes(stored, slope=-1, intercept=0), SPEC).pixels
    np.testing.assert_array_equal(negative, 255 - plain)


def test_first_of_several_windows_is_used() -> None:
    stored = stored_ramp()
    ds = dicom_dataset(stored)
    ds.WindowCenter = [WINDOW[0], 40.0]
    ds.WindowWidth = [WINDOW[1], 80.0]
    out = decode(dicom_file_bytes(ds), SPEC)
    np.testing.assert_array_equal(out.pixels, windowed(stored))


def _add_voi_lut(ds: Dataset, table: np.ndarray, first: int) -> None:
    item = Dataset()
    item.add_new(0x00283002, "US", [len(table), first, 16])  # LUT Descriptor
    item.add_new(0x00283006, "US", [int(v) for v in table])  # LUT Data
    ds.VOILUTSequence = [item]


def test_voi_lut_is_applied_and_preferred_to_the_window() -> None:
    stored = stored_ramp()
    ds = dicom_dataset(stored, window=(40.0, 80.0))
    _add_voi_lut(ds, 4095 - np.arange(2048), first=0)  # a reversing table with values 2048..4095
    out = decode(dicom_file_bytes(ds), SPEC)
    # the table's own output range (2048..4095) spans 0..255
    expected = np.rint((2047 - stored.astype(np.float64)) * 255.0 / 2047).astype(np.uint8)
    np.testing.assert_array_equal(out.pixels, expected)


def test_monochrome1_is_inverted_monochrome2() -> None:
    stored = gradient(64).astype(np.uint16) * 16 + 500
    for window in (None, WINDOW):
        mono2 = decode(dicom_bytes(stored, window=window), SPEC)
        mono1 = decode(dicom_bytes(stored, photometric="MONOCHROME1", window=window), SPEC)
        assert mono1.src_mode == "DICOM MONOCHROME1 16-bit"
        np.testing.assert_array_equal(mono1.pixels, 255 - mono2.pixels)
    # inverted after the window: values below the window are white, above it black
    values = np.tile(np.array([0, 1000, 60000], np.uint16), (3, 1))
    out = decode(dicom_bytes(values, photometric="MONOCHROME1", window=WINDOW), ImageSpec(size=3))
    assert list(out.pixels[0]) == [255, 127, 0]


def test_first_frame_of_multi_frame() -> None:
    first = gradient(64).astype(np.uint16) * 16 + 500
    frames = np.stack([first, np.zeros_like(first), np.full_like(first, 4000)])
    out = decode(dicom_bytes(frames), SPEC)
    np.testing.assert_array_equal(out.pixels, decode(dicom_bytes(first), SPEC).pixels)


def test_rgb_uses_pillow_luma() -> None:
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, size=(64, 64, 3)).astype(np.uint8)
    out = decode(dicom_bytes(rgb, photometric="RGB", bits=8), SPEC)
    assert out.src_mode == "DICOM RGB 8-bit"
    np.testing.assert_array_equal(out.pixels, np.asarray(Image.fromarray(rgb).convert("L")))
    gray = gradient(64)
    out = decode(dicom_bytes(np.stack([gray] * 3, axis=-1), photometric="RGB", bits=8), SPEC)
    np.testing.assert_array_equal(out.pixels, gray)


@pytest.mark.parametrize("mode", ["pad", "crop", "stretch"])
def test_resized_like_every_other_format(mode: str) -> None:
    wide = (np.indices((50, 100)).sum(axis=0) * 2 % 256).astype(np.uint8)
    wide[0, 0], wide[0, 1] = 0, 255  # full range: the min-max stretch is the identity
    spec = ImageSpec(size=40, resize=mode)  # type: ignore[arg-type]
    out = decode(dicom_bytes(wide, bits=8), spec)
    assert (out.orig_width, out.orig_height) == (100, 50)
    np.testing.assert_array_equal(out.pixels, decode(png_bytes(Image.fromarray(wide)), spec).pixels)


def test_compressed_transfer_syntax_with_a_decoder() -> None:
    if not get_decoder(JPEGBaseline8Bit).is_available:
        pytest.skip("no JPEG baseline decoder plugin installed")
    gray = gradient(64)
    buf = io.BytesIO()
    Image.fromarray(gray).save(buf, format="JPEG", quality=90)
    ds = dicom_dataset(gray, bits=8, window=(128, 256))  # the identity window for 8 bits
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PixelData = encapsulate([buf.getvalue()])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    out = decode(dicom_file_bytes(ds), SPEC)
    np.testing.assert_array_equal(out.pixels, decode(buf.getvalue(), SPEC).pixels)


# ---- errors -------------------------------------------------------------------------------------

SECRET_NAME = "Sensitive^Patient^Name"


def _secret_dataset(**kwargs: object) -> Dataset:
    return dicom_dataset(stored_ramp(), patient_name=SECRET_NAME, **kwargs)  # type: ignore[arg-type]


def _encapsulated(ds: Dataset, tsyntax: UID) -> bytes:
    ds.file_meta.TransferSyntaxUID = tsyntax
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xd9"])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    return dicom_file_bytes(ds)


def test_missing_pixel_data_is_unsupported() -> None:
    ds = _secret_dataset()
    del ds.PixelData
    err = decode_error(dicom_file_bytes(ds))
    assert err.kind == "unsupported"
    assert "no pixel data" in err.reason


def test_missing_decoder_plugin_is_unsupported_and_named() -> None:
    # High-Throughput JPEG 2000: neither GDCM nor Pillow decodes it
    assert not get_decoder(HTJ2KLossless).is_available
    err = decode_error(_encapsulated(_secret_dataset(), HTJ2KLossless))
    assert err.kind == "unsupported"
    assert "JPEG 2000" in err.reason and str(HTJ2KLossless) in err.reason
    assert "pylibjpeg" not in err.reason and "pylibjpeg" in err.hint


def test_unknown_transfer_syntax_is_unsupported() -> None:
    with pytest.warns(UserWarning):  # pydicom guesses the VR encoding of an unknown syntax
        err = decode_error(_encapsulated(_secret_dataset(), UID("1.2.3.4.5")))
    assert err.kind == "unsupported" and "1.2.3.4.5" in err.reason


def test_too_many_pixels_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_decoding(*args: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("pixel data decoded")

    monkeypatch.setattr(dicom_codecs, "pixel_array", no_decoding)
    ds = _secret_dataset()
    ds.Rows = ds.Columns = 60000
    err = decode_error(dicom_file_bytes(ds))
    assert err.kind == "too_large" and "60000x60000" in err.reason
    # the limit is the spec's, as for other formats
    small = ImageSpec(size=64, max_pixels=64 * 64 - 1)
    assert decode_error(dicom_bytes(stored_ramp()), small).kind == "too_large"


@pytest.mark.filterwarnings("ignore:Invalid value for VR")  # UIDs cut short
def test_truncated_dicom_raises_only_decode_errors() -> None:
    data = dicom_file_bytes(_secret_dataset())
    for cut in [*range(0, 600, 3), *range(600, len(data), 97)]:
        assert decode_error(data[:cut]).kind in DECODE_ERROR_KINDS
    inside_pixels = decode_error(data[: len(data) - 1000])
    assert inside_pixels.kind == "corrupt"
    assert "truncated or corrupt DICOM pixel data" in inside_pixels.reason


@pytest.mark.parametrize(
    ("edit", "kind"),
    [
        (lambda ds: setattr(ds, "WindowWidth", 0), "corrupt"),
        (lambda ds: setattr(ds, "VOILUTFunction", "NOT_A_FUNCTION"), "corrupt"),
        (lambda ds: setattr(ds, "NumberOfFrames", 3), "corrupt"),
        (lambda ds: setattr(ds, "PhotometricInterpretation", "PALETTE COLOR"), "unsupported"),
        (lambda ds: setattr(ds, "PhotometricInterpretation", "Sensitive^Patient^Name"), "corrupt"),
        (lambda ds: delattr(ds, "Rows"), "corrupt"),
        (lambda ds: setattr(ds, "BitsAllocated", 8), "corrupt"),
    ],
)
@pytest.mark.filterwarnings("ignore:The value length")  # the name is no valid CS value
def test_broken_headers_are_classified(edit: Callable[[Dataset], None], kind: str) -> None:
    ds = _secret_dataset(window=WINDOW)
    edit(ds)
    err = decode_error(dicom_file_bytes(ds))
    assert err.kind == kind


def test_bad_window_is_named() -> None:
    ds = _secret_dataset(window=WINDOW)
    ds.WindowWidth = 0
    err = decode_error(dicom_file_bytes(ds))
    assert err.kind == "corrupt"
    assert (
        err.reason.startswith("invalid DICOM grayscale transform") and "Window Width" in err.reason
    )


@pytest.mark.filterwarnings("ignore:Expected explicit VR")  # the unknown transfer syntax
@pytest.mark.filterwarnings("ignore:The value length")  # the name as photometric value
@pytest.mark.filterwarnings("ignore:Invalid value for VR")
def test_patient_data_never_in_messages() -> None:
    def make(edit: str) -> bytes:
        ds = _secret_dataset(window=WINDOW)
        ds.StudyDescription = SECRET_NAME
        if edit == "no pixels":
            del ds.PixelData
        elif edit == "huge":
            ds.Rows = ds.Columns = 60000
        elif edit == "bad window":
            ds.WindowWidth = 0
        elif edit == "bad photometric":
            ds.PhotometricInterpretation = SECRET_NAME
        elif edit == "private syntax":
            return _encapsulated(ds, UID("1.2.3.4.5"))
        elif edit == "missing plugin":
            return _encapsulated(ds, HTJ2KLossless)
        elif edit == "broken lossless":
            return _encapsulated(ds, JPEGLosslessSV1)
        elif edit == "broken jpeg":
            return _encapsulated(ds, JPEGBaseline8Bit)
        return dicom_file_bytes(ds)

    messages = []
    cases = ["no pixels", "huge", "bad window", "bad photometric", "private syntax"]
    cases += ["missing plugin", "broken lossless", "broken jpeg", "full"]
    for case in cases:
        data = make(case)
        cuts = [len(data)] if case != "full" else range(132, len(data), 41)
        for cut in cuts:
            try:
                decode(data[:cut], SPEC)
            except ImageDecodeError as exc:
                messages += [exc.reason, str(exc), repr(exc)]
    assert len(messages) > 30
    for message in messages:
        for secret in ("Sensitive", "Patient^Name", "PID-0042-SECRET"):
            assert secret not in message
