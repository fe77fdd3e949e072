"""The `pneumo` CLI as a user runs it: the synthetic cycle, and errors that say what to do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SMALL = ["synthetic.patients=12", "synthetic.image_size=128"]


def pneumo(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pneumo", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
    )
    if ok:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_synthetic_fetch_prepare_eda(pneumo_root: Path) -> None:
    out = pneumo("fetch", "synthetic", *SMALL).stdout
    assert "synthetic dataset 'synthetic'" in out
    assert "* synthetic" in pneumo("datasets").stdout
    summary = pneumo("prepare", "--quiet", "prepare.image_size=64").stdout
    assert "usable images" in summary and "patient-grouped" in summary
    report = Path(pneumo("eda").stdout.strip().rsplit(" ", 1)[1])
    assert report.is_file() and report.read_text().count("data:image/png;base64,") >= 5
    prepared = pneumo_root / "prepared" / "synthetic"
    assert (prepared / "config.yaml").read_text().count("image_size: 64") == 1
    again = pneumo("prepare", "--quiet", "prepare.image_size=64").stdout
    assert again.startswith("up to date")


def test_config_typo_is_reported_with_a_suggestion() -> None:
    proc = pneumo("prepare", "prepare.imagesize=64", ok=False)
    assert proc.returncode == 2
    assert "prepare.imagesize: unknown key (did you mean 'prepare.image_size'?)" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_prepare_before_any_fetch_says_what_to_do() -> None:
    proc = pneumo("prepare", ok=False)
    assert proc.returncode == 2
    assert "no dataset given and none fetched yet" in proc.stderr
    assert "pneumo fetch synthetic" in proc.stderr


def test_unknown_dataset_and_missing_path(tmp_path: Path) -> None:
    proc = pneumo("prepare", "-d", "nope", ok=False)
    assert proc.returncode == 2 and "unknown dataset 'nope'" in proc.stderr
    proc = pneumo("fetch", "local", str(tmp_path / "absent"), ok=False)
    assert proc.returncode == 2 and "dataset not found" in proc.stderr
    (tmp_path / "empty").mkdir()
    proc = pneumo("fetch", "local", str(tmp_path / "empty"), ok=False)
    assert proc.returncode == 2 and "neither an NIH layout" in proc.stderr


def test_module_and_help() -> None:
    out = pneumo("--help").stdout
    for command in ("fetch", "prepare", "eda", "datasets", "config"):
        assert command in out
    assert "nih" in pneumo("fetch", "--help").stdout


_LOG_ONE = (
    "import logging, sys; from pneumo.cli.application import _setup; "
    "_setup(verbose=False, log_json='--log-json' in sys.argv); "
    "logging.getLogger('pneumo.stages.demo').info('epoch %d done', 3)"
)


def test_cli_log_lines_carry_time_and_level_or_are_json() -> None:
    import json
    import re

    def logged(*flags: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", _LOG_ONE, *flags], capture_output=True, text=True, check=True
        )
        return done.stderr.strip()

    plain = logged()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO +epoch 3 done", plain), plain
    line = json.loads(logged("--log-json"))
    assert line["level"] == "info" and line["message"] == "epoch 3 done", line
    assert line["logger"] == "pneumo.stages.demo" and re.match(r"\d{4}-\d\d-\d\dT", line["ts"])
