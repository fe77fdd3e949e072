"""Promote while under load: no failed request, the version changes; a corrupt one is refused."""

from __future__ import annotations

import base64
import re
import threading
import time
from pathlib import Path

import pytest
import requests

from pneumo.config import PromoteConfig, RegisterConfig
from pneumo.settings import Settings
from pneumo.stages.promote import promote
from pneumo.stages.register import register
from tests.serving_support import Registered, pytest_env, running_service

pytestmark = pytest.mark.slow


class Load:
    """Threads posting one image in a loop, half on /v1 and half on the Open Inference
    Protocol's /v2 (which shares the model and its swaps), recording (status, version) of
    every answer."""

    def __init__(self, url: str, image: bytes, threads: int = 4) -> None:
        self.url, self.image = url, image
        self.results: list[tuple[int, str | None]] = []
        self.v2_answers = 0
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._run, args=(i % 2 == 1,), daemon=True)
            for i in range(threads)
        ]

    def _ask(self, session: requests.Session, v2: bool) -> tuple[int, str | None]:
        if not v2:
            files = {"file": ("x.png", self.image)}
            r = session.post(f"{self.url}/v1/predict", files=files, timeout=30)
            return r.status_code, r.json()["model"]["version"] if r.status_code == 200 else None
        data = base64.b64encode(self.image).decode()
        body = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": [data]}]}
        r = session.post(f"{self.url}/v2/models/pneumonia/infer", json=body, timeout=30)
        self.v2_answers += r.status_code == 200
        return r.status_code, r.json()["model_version"] if r.status_code == 200 else None

    def _run(self, v2: bool) -> None:
        with requests.Session() as session:
            while not self.stop.is_set():
                try:
                    self.results.append(self._ask(session, v2))
                except Exception as exc:
                    self.errors.append(repr(exc))

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)

    def wait_for_version(self, version: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(v == version for _, v in self.results[-20:]):
                return
            time.sleep(0.1)
        raise AssertionError(f"version {version} never served; last: {self.results[-5:]}")


def test_promotion_under_load_swaps_without_failures(
    registered: Registered, tmp_path: Path
) -> None:
    image = Path(sorted(registered.test_images)[0]).read_bytes()
    with pytest_env(**registered.env):
        settings = Settings()
    try:
        _swap_under_load(registered, settings, image, tmp_path)
    finally:  # the other tests share this registry: version 1 is champion again (a rollback)
        with pytest_env(**registered.env):
            promote(PromoteConfig(), settings, version="1", reason="restore after the test")


def _swap_under_load(
    registered: Registered, settings: Settings, image: bytes, tmp_path: Path
) -> None:
    with (
        running_service(registered.env, tmp_path / "cwd", poll_seconds="0.3") as svc,
        Load(svc.url, image) as load,
    ):
        time.sleep(1.0)
        with pytest_env(**registered.env):
            second = register(registered.run_id, RegisterConfig(), settings)
            promote(PromoteConfig(), settings, version=second.version, reason="hot swap test")
        load.wait_for_version(second.version)

        # a version whose model file is corrupt: refused, the previous one keeps serving
        with pytest_env(**registered.env):
            third = register(registered.run_id, RegisterConfig(), settings)
            from pneumo.packaging.registry import ModelRegistry

            reg = ModelRegistry(settings)
            source = reg.info(third.version).source  # runs:/<run id>/<path in its artifacts>
            artifacts = reg.client.get_run(registered.run_id).info.artifact_uri
            within = source.removeprefix(f"runs:/{registered.run_id}/")
            model_file = Path(artifacts.removeprefix("file://")) / within / "model.onnx"
            model_file.write_bytes(model_file.read_bytes()[:1000] + b"garbage")
            promote(PromoteConfig(), settings, version=third.version, reason="corrupt on purpose")
        deadline = time.monotonic() + 30
        while "pneumo_model_load_failures_total 1.0" not in svc.metrics():
            assert time.monotonic() < deadline, svc.logs()[-3000:]
            time.sleep(0.2)
        served_after = len(load.results)
        time.sleep(1.5)
    assert not load.errors, load.errors[:3]
    statuses = {status for status, _ in load.results}
    assert statuses == {200}, statuses
    versions = [v for _, v in load.results]
    assert versions[0] == "1" and second.version in versions
    assert third.version not in versions
    assert all(v == second.version for v in versions[served_after:])
    assert len(load.results) > served_after  # kept serving after the refusal
    assert load.v2_answers > 0
    text = svc.logs()
    assert '"event": "model_swapped"' in text and '"event": "model_refused"' in text
    assert re.search(r"pneumo_model_swaps_total 1.0", text) is None  # metrics are not logged
