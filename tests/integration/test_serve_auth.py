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
