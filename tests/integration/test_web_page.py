"""The service's web page at `/`, driven in a real headless Chromium against the live service.

Needs the `live_service` fixture (tests/integration/conftest.py): a running service with
attributes `url`, `image`, `expected_probability`, `version` and `screenshots`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image

from tests.browser import chromium_path, upload_in_browser

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

pytestmark = pytest.mark.skipif(
    chromium_path() is None, reason="Chromium is not installed (`chromium` not on PATH)"
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DECISIONS = ("Pneumonia suspected", "No pneumonia detected")


def assert_real_screenshot(path: Path, min_width: int) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE), f"{path} is not a PNG"
    assert len(data) > 10_000, f"{path} is only {len(data)} bytes"
    with Image.open(path) as shot:
        assert shot.width >= min_width
        assert shot.height >= 300
        # a blank page would be a single colour
        pixels = np.asarray(shot.convert("L"))
    assert int(pixels.max()) - int(pixels.min()) > 100, "the screenshot looks blank"


def test_upload_shows_probability_decision_and_version(live_service: Any) -> None:
    screenshot = Path(live_service.screenshots) / "web-page-result.png"
    result = upload_in_browser(live_service.url, Path(live_service.image), screenshot)

    assert result["state"] == "done", result
    match = re.fullmatch(r"(\d+(?:\.(\d+))?)\s*%", result["probability"])
    assert match, f"unexpected probability text {result['probability']!r}"
    decimals = len(match.group(2) or "")
    shown = float(match.group(1))
    expected = float(live_service.expected_probability) * 100
    # equal to the displayed precision (half a unit of the last digit shown)
    assert abs(shown - expected) <= 0.5 * 10**-decimals + 1e-9, (shown, expected)
    assert result["decision"].startswith(DECISIONS), result["decision"]
    assert result["version"] == str(live_service.version)
    assert result["error"] == ""
    assert_real_screenshot(screenshot, min_width=1280)


def test_text_file_named_png_shows_a_readable_error(live_service: Any, tmp_path: Path) -> None:
    fake = tmp_path / "not-an-xray.png"
    fake.write_text("this is a text file, not an image\n" * 20)
    screenshot = Path(live_service.screenshots) / "web-page-error.png"
    result = upload_in_browser(live_service.url, fake, screenshot)

    assert result["state"] == "error", result
    error = result["error"]
    assert error, "the page shows no error text"
    assert len(error) <= 300, error
    assert "\n" not in error, error
    for marker in ("Traceback", 'File "', "Exception", "{", "<html"):
        assert marker not in error, f"error text looks like a stack trace or raw body: {error!r}"
    assert result["probability"] == ""
    assert screenshot.is_file()


def test_page_talks_only_to_the_service(live_service: Any) -> None:
    requests: list[str] = []
    screenshot = Path(live_service.screenshots) / "web-page-mobile.png"
    result = upload_in_browser(
        live_service.url,
        Path(live_service.image),
        screenshot,
        requests=requests,
        viewport=(390, 844),
    )

    assert result["state"] == "done", result
    service = urlsplit(live_service.url)
    origin = f"{service.scheme}://{service.netloc}"
    paths = set()
    foreign = []
    for url in requests:
        parts = urlsplit(url)
        if parts.scheme == "data":
            continue  # inline, no network
        if parts.scheme == "blob" and url.startswith(f"blob:{origin}/"):
            continue  # the local preview of the chosen file
        if f"{parts.scheme}://{parts.netloc}" != origin:
            foreign.append(url)
        else:
            paths.add(parts.path)
    assert not foreign, f"the page contacted other hosts: {foreign}"
    # the recording itself works: the page and both API calls were seen
    assert {"/", "/v1/model", "/v1/predict"} <= paths, sorted(paths)
    assert_real_screenshot(screenshot, min_width=390)
