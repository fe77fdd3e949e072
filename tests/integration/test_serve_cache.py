"""The serving cache is trusted only while it matches the registry: an edited card or a
corrupt model heals by downloading the version again, and a download killed mid-way leaves no
temporary folder behind once the service starts again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.serving_support import Registered, post, running_service

pytestmark = pytest.mark.slow


def _threshold(url: str, image: bytes) -> float:
    answer = post(url, image)
    assert answer.status_code == 200, answer.text
    return float(answer.json()["threshold"])


def test_an_edited_or_corrupt_cache_heals_from_the_registry(
    registered: Registered, tmp_path: Path
) -> None:
    image = Path(sorted(registered.test_images)[0]).read_bytes()
    cache = tmp_path / "models"
    settings = {"poll_seconds": "0", "model_cache": str(cache)}
    with running_service(registered.env, tmp_path / "first", **settings) as svc:
        threshold = _threshold(svc.url, image)
    (folder,) = [p for p in (cache / "pneumonia").iterdir() if p.is_dir()]

    card = json.loads((folder / "card.json").read_text())
    card["threshold"]["value"] = 0.99  # what an attacker or a slip of the hand would do
    (folder / "card.json").write_text(json.dumps(card))
    abandoned = cache / ".pneumonia-1-999999999-abcdefgh"  # a download killed mid-way
    abandoned.mkdir()
    (abandoned / "model.onnx").write_bytes(b"partial")
    with running_service(registered.env, tmp_path / "second", **settings) as svc:
        assert _threshold(svc.url, image) == pytest.approx(threshold)
        assert "differs from the registry" in svc.logs()
    assert not abandoned.exists()

    (folder / "model.onnx").write_bytes(b"\x00" * 1024)  # corrupt
    with running_service(registered.env, tmp_path / "third", **settings) as svc:
        assert _threshold(svc.url, image) == pytest.approx(threshold)
