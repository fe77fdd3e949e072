"""API keys: Authorization: Bearer, 401 otherwise; health endpoints stay open."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.serving_support import Registered, post, raw_request, running_service

pytestmark = pytest.mark.slow


def test_api_keys(registered: Registered, tmp_path: Path) -> None:
    image = Path(sorted(registered.test_images)[0]).read_bytes()
    keys = "first-key-0123456789,second-key-abcdef"
    with running_service(registered.env, tmp_path / "cwd", api_keys=keys, poll_seconds="0") as svc:
        no_header = post(svc.url, image)
        assert no_header.status_code == 401
        assert no_header.json()["error"] == "unauthorized"
        assert no_header.headers["www-authenticate"] == "Bearer"
        assert post(svc.url, image, key="first-key-0123456780").status_code == 401
        assert post(svc.url, image, key="first-key").status_code == 401
        basic = requests.post(
            f"{svc.url}/v1/predict", files={"file": ("a.png", image)},
            headers={"Authorization": "Basic Zmlyc3Qta2V5"}, timeout=10,
        )  # fmt: skip
        assert basic.status_code == 401
        assert post(svc.url, image, key="first-key-0123456789").status_code == 200
        assert post(svc.url, image, key="second-key-abcdef").status_code == 200
        assert requests.get(f"{svc.url}/v1/model", timeout=10).status_code == 401
        # the key check a reverse proxy makes before reading a body (deploy/nginx)
        check = requests.get(f"{svc.url}/auth", timeout=10)
        assert check.status_code == 401 and check.headers["www-authenticate"] == "Bearer"
        keyed = {"Authorization": "Bearer second-key-abcdef"}
        assert requests.get(f"{svc.url}/auth", headers=keyed, timeout=10).status_code == 204
        for open_path in ("/healthz", "/readyz", "/metrics", "/"):
            assert requests.get(f"{svc.url}{open_path}", timeout=10).status_code == 200, open_path
        assert "first-key" not in svc.logs()


def test_refusals_come_before_the_body_is_read(registered: Registered, tmp_path: Path) -> None:
    key = "the-key-0123456789"
    form = "Content-Type: multipart/form-data; boundary=xyz"
    with running_service(registered.env, tmp_path / "cwd", api_keys=key, poll_seconds="0") as svc:
        # 16 x 19 MB promised, nothing sent, no key: 401 at once
        status, seconds = raw_request(svc.url, [form, f"Content-Length: {16 * 19 * 2**20}"])
        assert status == "HTTP/1.1 401 Unauthorized" and seconds < 2.0, (status, seconds)
        # malformed multipart without a key is a 401 too, not a 400
        bad = requests.post(
            f"{svc.url}/v1/predict", data=b"--nope\r\n\r\n", timeout=10,
            headers={"Content-Type": "multipart/form-data; boundary=xyz"},
        )  # fmt: skip
        assert bad.status_code == 401
        # with the key, a declared 300 MB body is refused at once, unread
        status, seconds = raw_request(
            svc.url, [form, "Content-Length: 314572800", f"Authorization: Bearer {key}"]
        )
        assert status == "HTTP/1.1 413 Request Entity Too Large" and seconds < 2.0
        assert post(svc.url, Path(sorted(registered.test_images)[0]).read_bytes(), key=key).ok
