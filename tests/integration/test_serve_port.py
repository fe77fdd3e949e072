"""`pneumo serve` listens on ``$PORT`` when a serverless container platform gives one (and
PNEUMO_SERVE_PORT is not set), and refuses a PORT that is not a port number, clearly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.conftest import REPO
from tests.serving_support import NO_TORCH, Registered, free_port, started_service

pytestmark = pytest.mark.slow


def _env(registered: Registered, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PNEUMO_") and k != "PORT"}
    env.update(registered.env, PYTHONPATH=str(REPO / "src"), PNEUMO_POLL_SECONDS="0", **extra)
    return env


def test_serve_listens_on_the_platforms_port(registered: Registered, tmp_path: Path) -> None:
    port = free_port()
    args = [sys.executable, "-c", NO_TORCH, "serve"]
    url = f"http://127.0.0.1:{port}"
    env = _env(registered, PORT=str(port))
    with started_service(args, tmp_path, env, tmp_path / "serve.log", url) as service:
        assert requests.get(f"{service.url}/readyz", timeout=10).status_code == 200


def test_a_port_that_is_not_a_number_is_a_clear_error(registered: Registered) -> None:
    cmd = [sys.executable, "-c", NO_TORCH, "serve"]
    proc = subprocess.run(cmd, env=_env(registered, PORT="eighty"), capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "PORT='eighty' is not a port number" in proc.stderr
