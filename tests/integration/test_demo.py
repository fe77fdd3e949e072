"""`pneumo demo`: the whole cycle to a served model, a working curl, a clean Ctrl-C, reuse."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import DEMO_SMALL
from tests.serving_support import free_port

pytestmark = pytest.mark.slow

SMALL = DEMO_SMALL


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PNEUMO_")}
    return {**env, "PNEUMO_ROOT": str(root)}


def test_demo_serves_prints_a_working_curl_and_reuses_work(tmp_path: Path) -> None:
    root = tmp_path / "root"
    port = free_port()
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pneumo", "demo", "--port", str(port), *SMALL],
            cwd=tmp_path, env=_env(root), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        curl = None
        while curl is None:
            text = log.read_text(errors="replace")
            if "Uvicorn running" in text:
                curl = re.search(r"^try:\s+(curl .+)$", text, re.M)
                assert curl, text
            assert proc.poll() is None, text
            assert time.monotonic() < deadline, text
            time.sleep(0.5)
        for stage in ("fetch", "prepare", "eda", "train", "evaluate", "register", "promote"):
            assert re.search(rf"\[\d/8\] {stage}", text), stage
        assert (
            "EDA report:" in text
            and Path(
                re.search(r"EDA report:\s+(\S+)", text).group(1)  # type: ignore[union-attr]
            ).is_file()
        )
        answer = subprocess.run(
            [*shlex.split(curl.group(1)), "--silent", "--show-error", "--fail"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert answer.returncode == 0, answer.stderr
        assert '"probability"' in answer.stdout and '"version":"1"' in answer.stdout
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    text = log.read_text(errors="replace")
    assert code == 0, text[-3000:]
    assert "service stopped" in text

    again = subprocess.run(
        [sys.executable, "-m", "pneumo", "demo", "--no-serve", *SMALL],
        cwd=tmp_path, env=_env(root), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    output = again.stdout + again.stderr
    for stage in ("fetch", "prepare", "train", "evaluate", "register", "promote"):
        line = re.search(rf"\[\d/8\] {stage}.*", output)
        assert line and "reused" in line.group(0), (stage, output[-2000:])
