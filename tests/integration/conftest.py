"""Session-wide: one registered model and one running service, shared by the serving tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import REPO
from tests.serving_support import Registered, Service, build_registered, running_service


@pytest.fixture(scope="session")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Registered:
    return build_registered(tmp_path_factory.mktemp("registered") / "root")


@dataclass
class LiveService:
    url: str
    image: Path
    expected_probability: float
    version: str
    screenshots: Path
    service: Service
    registered: Registered


@pytest.fixture(scope="session")
def live_service(
    registered: Registered, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveService]:
    """`pneumo serve` (champion of `registered`, no hot swap) on 127.0.0.1."""
    workdir = tmp_path_factory.mktemp("live") / "cwd"
    # The tiny model's own out-of-distribution limit is the 0.99 quantile of its small
    # validation set, so it refuses about 1 % of images like its own by design, and which ones
    # varies from one training to the next: raised here so that every synthetic test image is
    # scored. Its own limit is tested in test_serve_policy.py.
    with running_service(
        registered.env, workdir, poll_seconds="0", input_ood_threshold="0.5"
    ) as service:
        image, probability = next(iter(sorted(registered.test_images.items())))
        version = requests.get(f"{service.url}/readyz", timeout=10).json()["model"]["version"]
        screenshots = REPO / "test-output" / "screenshots"
        screenshots.mkdir(parents=True, exist_ok=True)
        yield LiveService(
            service.url, Path(image), probability, version, screenshots, service, registered
        )
