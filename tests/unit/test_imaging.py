"""File bytes → cached pixels: every mode, orientation, aspect policy and bad input."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from pneumo.data.decode.failures import DECODE_ERROR_KINDS, ImageDecodeError
from pneumo.data.decode.image import decode
from pneumo.preprocess import ImageSpec
from tests.conftest import gradient, png_bytes

SPEC = ImageSpec(size=64)


def test_8bit_gray_at_target_size_is_unchanged() -> None:
    gray = gradient(64)
    out = decode(png_bytes(Image.fromarray(gray)), SPEC)
    assert out.pixels.dtype == np.uint8 and out.pixels.shape == (64, 64)
    np.testing.assert_array_equal(out.pixels, gray)
    assert (out.src_mode, out.orig_width, out.orig_height) == ("L", 64, 64)


def test_16bit_png_keeps_absolute_intensity() -> None:
    gray = gradient(64)
    wide = Image.fromarray(gray.astype(np.uint16) * 257)  # full 16-bit range
    out = decode(png_bytes(wide), SPEC)
    assert out.src_mode.startswith("I")
    np.testing.assert_array_equal(out.pixels, gray)


def test_12bit_content_in_16bit_png_uses_12bit_range() -> None:
    gray = gradient(64)
    twelve = Image.fromarray((gray.astype(np.int64) * 4095 // 255).astype(np.uint16))
    out = decode(png_bytes(twelve), SPEC)
    assert np.abs(out.pixels.astype(int) - gray).max() <= 1


def test_rgb_and_opaque_rgba_equal_their_gray_source() -> None:
    gray = gradient(64)
    rgb = Image.fromarray(np.stack([gray] * 3, axis=-1))
    rgba = Image.fromarray(np.dstack([gray, gray, gray, np.full_like(gray, 255)]))
    np.testing.assert_array_equal(decode(png_bytes(rgb), SPEC).pixels, gray)
    out = decode(png_bytes(rgba), SPEC)
    assert out.src_mode == "RGBA"
    np.testing.assert_array_equal(out.pixels, gray)


def test_transparent_pixels_become_black() -> None:
    gray = np.full((64, 64), 200, np.uint8)
    alpha = np.zeros_like(gray)
    alpha[:, 32:] = 255
    out = decode(png_bytes(Image.fromarray(np.dstack([gray, gray, gray, alpha]))), SPEC)
    assert out.pixels[:, :30].max() == 0 and out.pixels[:, 34:].min() == 200


def test_palette_image() -> None:
    gray = gradient(64)
    pal = Image.fromarray(gray).convert("P")
    out = decode(png_bytes(pal), SPEC)
    assert out.src_mode == "P"
    assert np.abs(out.pixels.astype(int) - gray).max() <= 2


def test_exif_orientation_is_applied() -> None:
    img = np.zeros((40, 80), np.uint8)
    img[:, :10] = 255  # bright band on the left of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", exif=exif.tobytes(), quality=95)
    out = decode(buf.getvalue(), ImageSpec(size=80, resize="stretch"))
    assert (out.orig_width, out.orig_height) == (40, 80)
    # after rotating clockwise, the band is at the top
    assert out.pixels[:10].mean() > 200 and out.pixels[-10:].mean() < 30


@pytest.mark.parametrize("mode", ["pad", "crop", "stretch"])
def test_aspect_ratio_policies(mode: str) -> None:
    wide = np.full((50, 100), 255, np.uint8)
    out = decode(png_bytes(Image.fromarray(wide)), ImageSpec(size=40, resize=mode))  # type: ignore[arg-type]
    assert out.pixels.shape == (40, 40)
    if mode == "pad":  # 40x20 image centred on black: top and bottom bands black
        assert out.pixels[:9].max() == 0 and out.pixels[-9:].max() == 0
        assert out.pixels[12:28].min() == 255
    else:
        assert out.pixels.min() == 255


def test_downscale_is_antialiased() -> None:
    checker = (np.indices((256, 256)).sum(axis=0) % 2 * 255).astype(np.uint8)
    out = decode(png_bytes(Image.fromarray(checker)), ImageSpec(size=32))
    assert abs(float(out.pixels.mean()) - 127.5) < 3 and out.pixels.std() < 10


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"this is not an image\n" * 10, "not an image"),
        (_png_header_only(60000, 60000), "image too large"),
    ],
)
def test_bad_inputs_are_named(data: bytes, reason: str) -> None:
    with pytest.raises(ImageDecodeError) as err:
        decode(data, SPEC)
    assert err.value.reason.startswith(reason)


def test_truncated_png_is_refused() -> None:
    data = png_bytes(Image.fromarray(gradient(256)))
    with pytest.raises(ImageDecodeError) as err:
        decode(data[: len(data) // 2], SPEC)
    assert "truncated or corrupt" in err.value.reason


def _truncated_png() -> bytes:
    data = png_bytes(Image.fromarray(gradient(256)))
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"", "empty"),
        (b"this is not an image\n" * 10, "unsupported"),
        (_truncated_png(), "corrupt"),
        (_png_header_only(60000, 60000), "too_large"),
        (_png_header_only(300, 300), "corrupt"),  # header without pixel data
    ],
)
def test_bad_inputs_have_a_kind(data: bytes, kind: str) -> None:
    with pytest.raises(ImageDecodeError) as err:
        decode(data, SPEC)
    assert err.value.kind == kind


def test_decode_error_kinds() -> None:
    assert DECODE_ERROR_KINDS == ("empty", "unsupported", "corrupt", "too_large")
    assert ImageDecodeError("broken").kind == "corrupt"
    assert ImageDecodeError("huge", "too_large").reason == "huge"
    with pytest.raises(ValueError, match="unknown decode error kind"):
        ImageDecodeError("x", "teapot")  # type: ignore[arg-type]
