"""train → register → promote → `pneumo serve` in a real Uvicorn process, then HTTP for real."""

from __future__ import annotations

import io
import json
import re
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from PIL import Image

from tests.conftest import png_bytes
from tests.integration.conftest import LiveService
from tests.serving_support import post

pytestmark = pytest.mark.slow


def test_served_probability_equals_evaluate(live_service: LiveService) -> None:
    items = sorted(live_service.registered.test_images.items())
    assert len(items) >= 5
    for path, expected in items:
        r = post(live_service.url, Path(path).read_bytes(), Path(path).name)
        assert r.status_code == 200, r.text
        body = r.json()
        assert abs(body["probability"] - expected) <= 1e-4, (path, body, expected)
        assert body["model"] == {"name": "pneumonia", "version": live_service.version}
        assert body["positive"] == (body["probability"] >= body["threshold"])
        assert body["label"] == ("pneumonia" if body["positive"] else "no pneumonia")
        assert body["latency_ms"] > 0


def test_threshold_is_the_validation_threshold_of_the_card(live_service: LiveService) -> None:
    info = requests.get(f"{live_service.url}/v1/model", timeout=10).json()
    card = info["card"]
    metrics = json.loads(
        (live_service.registered.root / "runs" / live_service.registered.run_id / "eval-test"
         / "metrics.json").read_text()
    )  # fmt: skip
    assert card["threshold"]["chosen_on"] == "val"
    assert card["threshold"]["value"] == metrics["threshold"]
    assert info["monitoring"]["drift_detection"] is True, info["monitoring"]
    drift = card["ood"]["drift"]
    assert drift["split"] == "val" and drift["images"] >= 2 and "embedding_mmd" in drift["tests"]
    r = post(live_service.url, live_service.image.read_bytes())
    assert r.json()["threshold"] == metrics["threshold"]
    page = requests.get(f"{live_service.url}/v1/model/card", timeout=10)
    assert page.status_code == 200 and "Intended use" in page.text


def test_batch_endpoint_matches_single(live_service: LiveService) -> None:
    paths = sorted(live_service.registered.test_images)[:4]
    files = [("files", (Path(p).name, Path(p).read_bytes())) for p in paths]
    r = requests.post(f"{live_service.url}/v1/predict/batch", files=files, timeout=30)
    assert r.status_code == 200, r.text
    got = [item["probability"] for item in r.json()["predictions"]]
    want = [live_service.registered.test_images[p] for p in paths]
    np.testing.assert_allclose(got, want, atol=1e-4)
    bad = [*files, ("files", ("x.png", b"not an image"))]
    r = requests.post(f"{live_service.url}/v1/predict/batch", files=bad, timeout=30)
    assert r.status_code == 415 and "files[4]" in r.json()["detail"]
    # several bad files: every one named, in the order sent (the first one's status)
    several = [("files", ("e.png", b"")), files[0], ("files", ("t.png", b"text, no image"))]
    r = requests.post(f"{live_service.url}/v1/predict/batch", files=several, timeout=30)
    detail = r.json()["detail"]
    assert r.status_code == 422 and detail.index("files[0]") < detail.index("files[2]")
    assert "files[1]" not in detail


def test_real_nih_and_kermany_images(live_service: LiveService, real_data: Path) -> None:
    files = sorted((real_data / "nih-sample").rglob("*.png"))[:3]
    files += sorted((real_data / "kermany-224").rglob("*.jpeg"))[:2]
    assert files
    # real radiographs pass every rule of the input policy (format, size, colour: Kermany's are
    # RGB JPEGs, gray in colour); this model learnt synthetic images, so the out-of-distribution
    # score may refuse them, and then says so in its own words
    for path in files:
        r = post(live_service.url, path.read_bytes(), path.name)
        assert r.status_code in (200, 422), (path, r.text)
        body = r.json()
        if r.status_code == 200:
            assert 0.0 <= body["probability"] <= 1.0
            assert body["ood_score"] <= body["ood_threshold"]
        else:
            assert body["error"] == "out_of_distribution", (path, body)
            assert "not a chest radiograph this model can score" in body["detail"]


def test_health_metrics_and_docs(live_service: LiveService) -> None:
    url = live_service.url
    assert requests.get(f"{url}/healthz", timeout=5).json() == {"status": "ok", "model": None}
    ready = requests.get(f"{url}/readyz", timeout=5).json()
    assert ready["status"] == "ready" and ready["model"]["version"] == live_service.version
    docs = requests.get(f"{url}/docs", timeout=5)
    assert docs.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert assets and all(a.startswith("/") and not a.startswith("//") for a in assets), assets
    for asset in assets:  # Swagger UI from the service itself: no CDN, works offline
        assert requests.get(f"{url}{asset}", timeout=5).status_code == 200, asset
    paths = requests.get(f"{url}/openapi.json", timeout=5).json()["paths"]
    assert {"/v1/predict", "/v1/predict/batch", "/v1/model"} <= set(paths)
    post(url, live_service.image.read_bytes())
    text = live_service.service.metrics()
    assert re.search(
        r'pneumo_http_requests_total\{method="POST",route="/v1/predict",status="200"\} [1-9]', text
    )
    assert f'pneumo_model_info{{name="pneumonia",version="{live_service.version}"}} 1.0' in text
    assert re.search(r"pneumo_inference_batch_size_count [1-9]", text)
    assert re.search(r"pneumo_prediction_probability_count [1-9]", text)
    assert "pneumo_http_request_duration_seconds_bucket" in text
    assert "_created" not in text  # no start-timestamp series
    labels = set(re.findall(r'pneumo_http_requests_total\{method="GET",route="([^"]+)"', text))
    assert {"/openapi.json", "/docs", "/docs-assets"} <= labels, labels  # each its own label
    assert "unmatched" not in labels


def test_a_callers_request_id_is_kept_when_it_is_well_formed(live_service: LiveService) -> None:
    url = live_service.url
    kept = requests.get(f"{url}/healthz", headers={"X-Request-ID": "trace-01:ab.c_d"}, timeout=5)
    assert kept.headers["x-request-id"] == "trace-01:ab.c_d"
    for bad in ("has space", "x" * 129, "semi;colon", ""):
        got = requests.get(f"{url}/healthz", headers={"X-Request-ID": bad}, timeout=5)
        assert re.fullmatch(r"[0-9a-f]{32}", got.headers["x-request-id"]), (bad, got.headers)
    assert '"request_id": "trace-01:ab.c_d"' in live_service.service.logs()


# --- the bad-input corpus -------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_png_header(side: int = 60000) -> bytes:
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def test_bad_input_corpus_gets_the_right_4xx_and_never_500(live_service: LiveService) -> None:
    from tests.conftest import dicom_bytes

    url = live_service.url
    good = live_service.image.read_bytes()
    gray = np.asarray(Image.open(io.BytesIO(good)).convert("L"))
    rgba = png_bytes(Image.fromarray(np.dstack([gray, gray, gray, np.full_like(gray, 255)])))
    sixteen = png_bytes(Image.fromarray(gray.astype(np.uint16) * 257))
    wide = gray.astype(np.uint16) * 16  # 12-bit detector values
    window: dict[str, Any] = {"bits": 12, "window": (2048, 4096)}  # shown as the PNG is
    corpus: list[tuple[str, bytes, int, str | None]] = [
        ("empty.png", b"", 422, "empty_file"),
        ("notes.png", b"this is a text file, not an image\n" * 20, 415, "unsupported_media_type"),
        ("truncated.png", good[: len(good) // 2], 422, "invalid_image"),
        ("bomb.png", huge_png_header(), 422, "image_too_large"),
        ("big.png", b"\x00" * (25 * 1024 * 1024), 413, "too_large"),
        ("rgba.png", rgba, 200, None),
        ("sixteen.png", sixteen, 200, None),
        ("mono1.dcm", dicom_bytes(4095 - wide, photometric="MONOCHROME1", **window), 200, None),
        ("mono2.dcm", dicom_bytes(wide, photometric="MONOCHROME2", **window), 200, None),
        ("../../etc/passwd", good, 200, None),
    ]
    answers = {}
    for name, data, status, code in corpus:
        r = post(url, data, name)
        assert r.status_code == status, (name, r.status_code, r.text)
        body = r.json()
        if code is not None:
            assert body["error"] == code and body["detail"], (name, body)
            assert "Traceback" not in body["detail"]
        answers[name] = body
        # the service keeps serving after each bad input
        assert post(url, good).status_code == 200
    expected = live_service.expected_probability
    for name in ("rgba.png", "sixteen.png", "../../etc/passwd"):
        assert abs(answers[name]["probability"] - expected) <= 1e-4, name
    # MONOCHROME1 is inverted on decoding (pixel-exact checks are in tests/unit/test_dicom.py;
    # here the two stretches may round one grey level apart)
    assert abs(answers["mono1.dcm"]["probability"] - answers["mono2.dcm"]["probability"]) <= 1e-3
    # wrong requests: no file field, not multipart
    assert requests.post(f"{url}/v1/predict", timeout=10).status_code == 422
    assert requests.post(f"{url}/v1/predict", json={"file": "x"}, timeout=10).status_code == 422
    form = requests.post(f"{url}/v1/predict", data={"file": "x"}, timeout=10)  # url-encoded
    assert form.status_code == 422 and form.json()["detail"].startswith("file: not a file upload")
    assert "UploadFile" not in form.text and "class" not in form.text
    assert (
        requests.post(f"{url}/v1/predict", files={"image": ("a.png", good)}, timeout=10).status_code
        == 422
    )
    # two files where one is expected: refused, not the last one silently scored
    two = requests.post(
        f"{url}/v1/predict", files=[("file", ("a.png", good)), ("file", ("b.png", good))],
        timeout=10,
    )  # fmt: skip
    assert two.status_code == 422 and "several 'file' parts" in two.json()["detail"]
    # a large valid upload (above Starlette's 1 MB in-memory default) is served: the test image
    # magnified, with a little noise so that PNG cannot squeeze it
    noise = np.random.default_rng(0).integers(0, 3, size=(1800, 1800), dtype=np.uint8)
    big = np.asarray(Image.fromarray(gray).resize((1800, 1800), Image.Resampling.NEAREST))
    large = png_bytes(Image.fromarray((big.astype(np.int16) + noise).clip(0, 255).astype(np.uint8)))
    assert len(large) > 1024 * 1024
    r = post(url, large, "large.png")
    assert r.status_code == 200, r.text
    # nothing was written under a client-chosen name, nothing answered 500
    assert not list(live_service.service.cwd.rglob("*")), "the service wrote into its folder"
    assert not list(live_service.registered.root.rglob("passwd"))
    assert 'status="500"' not in live_service.service.metrics()


def test_logs_are_json_lines_without_names_or_pixels(live_service: LiveService) -> None:
    post(live_service.url, live_service.image.read_bytes(), "Doe_John_1960.png")
    lines = [line for line in live_service.service.logs().splitlines() if line.startswith("{")]
    events = [json.loads(line) for line in lines]
    requests_logged = [e for e in events if e.get("event") == "request"]
    assert requests_logged and all("request_id" in e and "latency_ms" in e for e in requests_logged)
    assert "Doe_John" not in live_service.service.logs()
