"""Real services for the tests: a trained, registered, promoted model and Uvicorn processes.

The service runs as `pneumo serve` in a child process whose interpreter refuses to import torch
and torchvision, which proves the serving path needs neither.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
import requests

from tests.conftest import REPO

NO_TORCH = """
import importlib.abc, sys
class _Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'torchvision'):
            raise ImportError(f'the serving path imported {name}')
        return None
sys.meta_path.insert(0, _Refuse())
from pneumo.cli import main
sys.argv = ['pneumo', *sys.argv[1:]]
main()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Registered:
    """A tiny trained model, registered (v1) and promoted, in its own PNEUMO_ROOT."""

    root: Path
    run_id: str
    test_images: dict[str, float]  # file path → probability from `pneumo evaluate`
    env: dict[str, str] = field(default_factory=dict)


def build_registered(root: Path) -> Registered:
    """train → evaluate → register → promote on a small synthetic dataset (about 30 s)."""
    from pneumo.config import PromoteConfig, RegisterConfig, load_config
    from pneumo.settings import Settings
    from pneumo.stages.promote import promote
    from pneumo.stages.register import register
    from pneumo.training.fit import train
    from tests.conftest import TINY_TRAIN, tiny_prepared

    with pytest_env(PNEUMO_ROOT=str(root)):
        settings = Settings()
        entry = tiny_prepared(patients=30, size=32)
        result = train(entry, load_config(None, TINY_TRAIN), settings, progress=False)
        registered = register(result.run_id, RegisterConfig(), settings)
        promote(PromoteConfig(), settings, version=registered.version, reason="tests")
    folder = root / "runs" / result.run_id / "eval-test"
    table = pd.read_parquet(io.BytesIO((folder / "predictions.parquet").read_bytes()))
    images = root / "data" / "tiny" / "images"
    probs = {
        str(images / name): float(p)
        for name, p in zip(table["image_id"], table["probability"], strict=True)
    }
    return Registered(root, result.run_id, probs, {"PNEUMO_ROOT": str(root)})


@contextlib.contextmanager
def pytest_env(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@dataclass
class Service:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    cwd: Path

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def metrics(self) -> str:
        return requests.get(f"{self.url}/metrics", timeout=10).text

    def stop(self) -> int:
        """Ctrl-C, as a person would; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)


@contextlib.contextmanager
def running_service(
    env: dict[str, str], workdir: Path, model: str | None = None, **settings: str
) -> Iterator[Service]:
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir.parent / f"{workdir.name}.log"
    child_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PNEUMO_") or k == "PNEUMO_TEST_DATA"
    }
    child_env.update(env)
    child_env.update({f"PNEUMO_{k.upper()}": v for k, v in settings.items()})
    child_env["PYTHONPATH"] = str(REPO / "src")
    args = [
        sys.executable,
        "-c",
        NO_TORCH,
        "serve",
        "--port",
        str(port),
        *([model] if model else []),
    ]
    with started_service(args, workdir, child_env, log, f"http://127.0.0.1:{port}") as service:
        yield service


def wait_until_answering(
    process: subprocess.Popen[bytes], url: str, seconds: float, logs: Callable[[], str]
) -> None:
    """Until GET ``url`` answers 200; RuntimeError with ``logs()`` if ``process`` exits first
    or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}:\n{logs()}")
        with contextlib.suppress(requests.ConnectionError):
            if requests.get(url, timeout=5).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} not answering after {seconds:g} s:\n{logs()}")
        time.sleep(0.1)


@contextlib.contextmanager
def started_service(
    args: list[str], workdir: Path, env: dict[str, str], log: Path, url: str,
    ready: str = "/readyz",
) -> Iterator[Service]:  # fmt: skip
    """Start ``args`` (a service process), wait until ``url`` + ``ready`` answers 200, stop it
    after."""
    with log.open("wb") as out:
        process = subprocess.Popen(args, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
    service = Service(url, process, log, workdir)
    try:
        wait_until_answering(process, f"{url}{ready}", 90, service.logs)
        yield service
    finally:
        service.stop()


def post(
    url: str, data: bytes, name: str = "image.png", key: str | None = None, timeout: float = 30
) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.post(
        f"{url}/v1/predict", files={"file": (name, data)}, headers=headers, timeout=timeout
    )


def raw_request(url: str, headers: list[str], timeout: float = 5.0) -> tuple[str, float]:
    """Send a POST /v1/predict request line and headers only (no byte of the body): the status
    line that comes back, and after how many seconds. A server that read the body first would
    never answer."""
    where = urlsplit(url)
    with socket.create_connection((where.hostname, where.port), timeout=timeout) as sock:
        head = "\r\n".join(["POST /v1/predict HTTP/1.1", f"Host: {where.netloc}", *headers])
        start = time.monotonic()
        sock.sendall((head + "\r\n\r\n").encode())
        answer = sock.recv(4096).decode("latin-1")
        return answer.split("\r\n", 1)[0], time.monotonic() - start
