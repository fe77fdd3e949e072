"""The input policy against a corpus of every kind: what is no chest radiograph gets its status.

Generated here, each file small: other formats, files claiming huge sizes in each accepted
format, animations and multi-frame DICOM, DICOM of other modalities and SOP classes, colour
images, tiny images, a DICOM without its preamble, a codec this machine lacks.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from PIL import Image
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import UID, JPEGLSLossless

from tests.conftest import (
    dicom_bytes,
    dicom_dataset,
    dicom_file_bytes,
    gdcm_encoded,
    png_bytes,
)
from tests.integration.conftest import LiveService
from tests.serving_support import Registered, post, running_service

pytestmark = pytest.mark.slow

CT, MR = UID("1.2.840.10008.5.1.4.1.1.2"), UID("1.2.840.10008.5.1.4.1.1.4")
US, SC = UID("1.2.840.10008.5.1.4.1.1.6.1"), UID("1.2.840.10008.5.1.4.1.1.7")


def _saved(image: Image.Image, fmt: str, **params: Any) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **params)
    return buf.getvalue()


def _jpeg_claiming(side: int, gray: np.ndarray) -> bytes:
    """A valid small JPEG whose frame header (SOF0) claims ``side`` x ``side`` pixels."""
    data = bytearray(_saved(Image.fromarray(gray), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = side.to_bytes(2, "big") * 2
    return bytes(data)


def _dicom(pixels: np.ndarray, modality: str = "DX", sop: UID | None = None, **kw: Any) -> bytes:
    ds = dicom_dataset(pixels, **kw)
    ds.Modality = modality
    if sop is not None:
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = sop
    return dicom_file_bytes(ds)


def _bare_dicom(pixels: np.ndarray) -> bytes:
    """The data set alone: no 128-byte preamble, no ``DICM``, no file meta."""
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, False
    write_dataset(out, dicom_dataset(pixels, bits=8, window=(128, 256)))
    return bytes(out.getvalue())


def _jpeg_ls(pixels: np.ndarray) -> bytes:
    ds = dicom_dataset(pixels, bits=8)
    ds.file_meta.TransferSyntaxUID = JPEGLSLossless
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xf7" + b"\x00" * 64 + b"\xff\xd9"])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    return dicom_file_bytes(ds)


def _corpus(gray: np.ndarray) -> list[tuple[str, bytes, int, str]]:
    twelve = gray.astype(np.uint16) * 16  # 12-bit data
    img = Image.fromarray(gray)
    rng = np.random.default_rng(0)
    h, w = gray.shape
    photo = np.dstack([np.linspace(0, 255, w)[None, :].repeat(h, 0), rng.integers(0, 255, (h, w)),
                       np.linspace(255, 0, h)[:, None].repeat(w, 1)]).astype(np.uint8)  # fmt: skip
    frames = [img, Image.fromarray(255 - gray)]
    wide = gray.astype(np.uint16) * 16
    huge = dicom_dataset(wide, bits=12)
    huge.Rows = huge.Columns = 60000
    multi = np.stack([wide, wide, wide])
    return [
        # formats other than PNG, JPEG and DICOM: 415, no other parser runs
        *[
            (f"image.{f.lower()}", _saved(img, f), 415, "unsupported_media_type")
            for f in ("GIF", "BMP", "TIFF", "WEBP", "ICO", "PPM", "TGA")
        ],
        (
            "pages.tiff",
            _saved(img, "TIFF", save_all=True, append_images=frames),
            415,
            "unsupported_media_type",
        ),
        (
            "eps.eps",
            b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n%%EOF\n",
            415,
            "unsupported_media_type",
        ),
        # small files claiming huge images, in each accepted format: refused from the header
        ("huge.jpg", _jpeg_claiming(60000, gray), 422, "image_too_large"),
        ("huge.dcm", dicom_file_bytes(huge), 422, "image_too_large"),
        # more than one frame
        (
            "anim.png",
            _saved(img, "PNG", save_all=True, append_images=frames[1:]),
            422,
            "multi_frame",
        ),
        ("multi.dcm", dicom_bytes(multi, bits=12), 422, "multi_frame"),
        # DICOM that is no projection radiograph
        ("ct.dcm", _dicom(wide, "CT", CT, bits=12), 422, "unsupported_modality"),
        ("mr.dcm", _dicom(wide, "MR", MR, bits=12), 422, "unsupported_modality"),
        (
            "us.dcm",
            _dicom(photo, "US", US, photometric="RGB", bits=8),
            422,
            "unsupported_modality",
        ),
        ("ot.dcm", _dicom(wide, "OT", SC, bits=12), 422, "unsupported_modality"),
        ("sc.dcm", _dicom(wide, "DX", SC, bits=12), 422, "unsupported_sop_class"),
        ("rgb.dcm", _dicom(photo, photometric="RGB", bits=8), 422, "not_monochrome"),
        # a JPEG-LS stream that is no JPEG-LS (GDCM refuses it); 12-bit JPEG Extended, which no
        # decoder shipped with pneumo reads
        ("jpegls.dcm", _jpeg_ls(gray), 422, "invalid_image"),
        (
            "jpeg12.dcm",
            gdcm_encoded(dicom_bytes(twelve, bits=12), "JPEGExtendedProcess2_4"),
            415,
            "unsupported_media_type",
        ),
        # too small, colour
        ("dot.png", png_bytes(Image.new("L", (1, 1), 128)), 422, "image_too_small"),
        ("icon.png", png_bytes(Image.fromarray(gray).resize((8, 8))), 422, "image_too_small"),
        ("photo.png", png_bytes(Image.fromarray(photo)), 422, "colour_image"),
        ("photo.jpg", _saved(Image.fromarray(photo), "JPEG", quality=90), 422, "colour_image"),
    ]


def test_every_kind_gets_its_documented_status(live_service: LiveService) -> None:
    url = live_service.url
    good = live_service.image.read_bytes()
    gray = np.asarray(Image.open(io.BytesIO(good)).convert("L"))
    for name, data, status, code in _corpus(gray):
        r = post(url, data, name)
        assert (r.status_code, r.json().get("error")) == (status, code), (name, r.text)
        detail = r.json()["detail"]
        assert detail.startswith("file: ") and "Traceback" not in detail, (name, detail)
        assert not re.search(r"pylibjpeg|gdcm|install|/usr/|site-packages", detail), detail
    wanted = {
        "image.gif": "GIF files are not accepted; accepted formats: PNG, JPEG, DICOM",
        "ct.dcm": "DICOM modality CT", "sc.dcm": "SOP class 1.2.840.10008.5.1.4.1.1.7",
        "multi.dcm": "3 frames", "dot.png": "1x1 pixels",
    }  # fmt: skip
    for name, words in wanted.items():
        data = next(d for n, d, _, _ in _corpus(gray) if n == name)
        assert words in post(url, data, name).json()["detail"], name
    metrics = live_service.service.metrics()
    assert re.search(r'pneumo_inputs_refused_total\{reason="unsupported_modality"\} [4-9]', metrics)
    assert 'status="500"' not in metrics


CODECS = ("JPEGLosslessProcess14_1", "JPEGLSLossless", "JPEG2000Lossless", "RLELossless",
          "JPEGBaselineProcess1")  # fmt: skip


def test_radiographs_in_every_accepted_form_are_scored_alike(live_service: LiveService) -> None:
    url = live_service.url
    good = live_service.image.read_bytes()
    gray = np.asarray(Image.open(io.BytesIO(good)).convert("L"))
    expected = post(url, good).json()["probability"]
    rgb = Image.fromarray(np.dstack([gray] * 3))
    marked = np.dstack([gray] * 3)
    marked[:2, :20] = (255, 0, 0)  # a small red annotation: under 5 % of the pixels coloured
    forms = {
        "gray in colour (RGB PNG)": png_bytes(rgb),
        "gray in colour (RGB JPEG)": _saved(rgb, "JPEG", quality=95),
        "annotated": png_bytes(Image.fromarray(marked)),
        "DICOM": dicom_bytes(gray, bits=8, window=(128, 256)),
        "DICOM without its preamble": _bare_dicom(gray),
        **{
            f"DICOM {syntax}": gdcm_encoded(dicom_bytes(gray, bits=8, window=(128, 256)), syntax)
            for syntax in CODECS
        },
    }
    for name, data in forms.items():
        r = post(url, data, "file")
        assert r.status_code == 200, (name, r.text)
        body = r.json()
        assert body["ood_score"] is not None and body["ood_score"] <= body["ood_threshold"]
        lossy = "RGB JPEG" in name or "Baseline" in name or name == "annotated"
        tolerance = 0.05 if lossy else 1e-3
        assert abs(body["probability"] - expected) <= tolerance, (name, body, expected)


def test_every_log_line_is_json(live_service: LiveService) -> None:
    twelve = dicom_bytes(np.full((64, 64), 2000, np.uint16), bits=12)
    post(live_service.url, gdcm_encoded(twelve, "JPEGExtendedProcess2_4"), "x.dcm")  # a hint
    lines = [line for line in live_service.service.logs().splitlines() if line.strip()]
    events = [json.loads(line) for line in lines]  # raises on any line that is not JSON
    hints = [e for e in events if e.get("event") == "decode_hint"]
    assert hints and "install" in hints[-1]["hint"]  # the operator hears what the client does not


def test_the_models_own_ood_limit_refuses_unlike_images(
    registered: Registered, tmp_path: Path
) -> None:
    """With the limit the model carries: noise and checkerboards (gray, radiograph-sized, past
    every rule) are answered "not a chest radiograph", and most images like its own are scored."""
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 256, (64, 64), dtype=np.uint8) for _ in range(4)]
    board = np.kron((np.indices((8, 8)).sum(axis=0) % 2) * 255, np.ones((8, 8))).astype(np.uint8)
    unlike = [png_bytes(Image.fromarray(a)) for a in [*noise, board]]
    like = [Path(p).read_bytes() for p in sorted(registered.test_images)]
    with running_service(registered.env, tmp_path / "cwd", poll_seconds="0") as svc:
        limit = requests.get(f"{svc.url}/v1/model", timeout=10).json()["card"]["ood"]["threshold"]
        for data in unlike:
            r = post(svc.url, data, "unlike.png")
            assert (r.status_code, r.json()["error"]) == (422, "out_of_distribution"), r.text
            assert "not a chest radiograph this model can score" in r.json()["detail"]
        scored = [post(svc.url, data, "like.png") for data in like]
        ok = [r.json() for r in scored if r.status_code == 200]
        assert len(ok) >= 0.8 * len(like), [r.text for r in scored]
        for body in ok:  # the card's limit (rounded there), and every scored image under it
            assert body["ood_threshold"] == pytest.approx(limit, rel=1e-4), (body, limit)
            assert body["ood_score"] <= body["ood_threshold"]


def test_pydicoms_test_files_are_scored_only_when_radiographs(live_service: LiveService) -> None:
    """Every file among pydicom's own test files: the CR radiographs are scored; the rest (CT,
    MR, RT, ultrasound, colour, multi-frame, broken, not DICOM at all) get a 4xx naming what
    they are; none a 500."""
    import warnings

    import pydicom
    from pydicom.data import get_testdata_files

    seen: dict[str, int] = {}
    for name in sorted(set(get_testdata_files("**/*"))):
        path = Path(name)
        if not path.is_file():
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                modality = pydicom.dcmread(path, stop_before_pixels=True, force=True).Modality
            except Exception:
                modality = None
        r = post(live_service.url, path.read_bytes(), "file")
        body = r.json()
        if modality in ("CR", "DX"):
            assert r.status_code == 200, (path.name, r.text)
            seen["scored"] = seen.get("scored", 0) + 1
            continue
        assert 400 <= r.status_code < 500, (path.name, r.status_code, r.text)
        assert body["detail"].startswith("file: ") and "Traceback" not in body["detail"]
        seen[body["error"]] = seen.get(body["error"], 0) + 1
    assert seen.get("scored", 0) >= 3 and seen.get("unsupported_modality", 0) >= 50, seen
    assert sum(seen.values()) >= 150, seen
