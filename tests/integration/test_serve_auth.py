"""API keys: Authorization: Bearer, 401 otherwise; health endpoints stay open."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.serving_support import Registered, post, running_service

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
        for open_path in ("/healthz", "/readyz", "/metrics", "/"):
            assert requests.get(f"{svc.url}{open_path}", timeout=10).status_code == 200, open_path
        assert "first-key" not in svc.logs()


def _raw_request(url: str, headers: list[str], timeout: float = 5.0) -> tuple[str, float]:
    """Send the request line and headers only (no byte of the body): the status line that comes
    back, and after how many seconds. A server that read the body first would never answer."""
    import socket
    import time
    from urllib.parse import urlsplit

    where = urlsplit(url)
    with socket.create_connection((where.hostname, where.port), timeout=timeout) as sock:
        head = "\r\n".join(["POST /v1/predict HTTP/1.1", f"Host: {where.netloc}", *headers])
        start = time.monotonic()
        sock.sendall((head + "\r\n\r\n").encode())
        answer = sock.recv(4096).decode("latin-1")
        return answer.split("\r\n", 1)[0], time.monotonic() - start


def test_refusals_come_before_the_body_is_read(registered: Registered, tmp_path: Path) -> None:
    key = "the-key-0123456789"
    form = "Content-Type: multipart/form-data; boundary=xyz"
    with running_service(registered.env, tmp_path / "cwd", api_keys=key, poll_seconds="0") as svc:
        # 16 x 19 MB promised, nothing sent, no key: 401 at once
        status, seconds = _raw_request(svc.url, [form, f"Content-Length: {16 * 19 * 2**20}"])
        assert status == "HTTP/1.1 401 Unauthorized" and seconds < 2.0, (status, seconds)
        # malformed multipart without a key is a 401 too, not a 400
        bad = requests.post(
            f"{svc.url}/v1/predict", data=b"--nope\r\n\r\n", timeout=10,
            headers={"Content-Type": "multipart/form-data; boundary=xyz"},
        )  # fmt: skip
        assert bad.status_code == 401
        # with the key, a declared 300 MB body is refused at once, unread
        status, seconds = _raw_request(
            svc.url, [form, "Content-Length: 314572800", f"Authorization: Bearer {key}"]
        )
        assert status == "HTTP/1.1 413 Request Entity Too Large" and seconds < 2.0
        assert post(svc.url, Path(sorted(registered.test_images)[0]).read_bytes(), key=key).ok
