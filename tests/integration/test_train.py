"""`pneumo train` on CPU: a smoke run tracked in MLflow, resume, the test split untouched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pneumo.config import load_config
from pneumo.errors import DataError, PneumoError
from pneumo.models import checkpoint
from pneumo.settings import get_settings
from pneumo.training.fit import train
from tests.conftest import TINY_TRAIN, tiny_prepared


def test_cpu_smoke_run_is_tracked_in_mlflow(pneumo_root: Path) -> None:
    entry = tiny_prepared()
    result = train(entry, load_config(None, [*TINY_TRAIN, "train.epochs=1"]), progress=False)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=get_settings().tracking_uri)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["train.backbone"] == "resnet18"
    assert {"train_loss", "val_loss", "val_auroc", "images_per_s"} <= set(run.data.metrics)
    assert run.data.tags["manifest_hash"]
    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"history.png", "history.json", "data_card.json", "config.yaml", "model"} <= artifacts
    assert [a.path for a in client.list_artifacts(result.run_id, "model")] == ["model/best.pt"]
    best = checkpoint.load(result.best).meta  # weights_only: nothing pickled in best.pt
    assert best.model.backbone == "resnet18"
    assert best.preprocess.image.size == 32
    assert best.classes == ("Pneumonia",) and best.versions["torch"] == torch.__version__
    assert best.manifest_hash == run.data.tags["manifest_hash"]
    assert Path(result.run_dir, "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_never_reads_the_test_split(pneumo_root: Path) -> None:
    entry = tiny_prepared()
    prepared = pneumo_root / "prepared" / entry.name
    for shard in (prepared / "cache").glob("test-*"):
        shard.unlink()  # gone: any attempt to read a test image would fail
    for image in (pneumo_root / "data" / entry.name / "images").glob("*.png"):
        image.write_bytes(b"")  # and the source files are useless too
    result = train(entry, load_config(None, [*TINY_TRAIN, "train.epochs=1"]), progress=False)
    assert Path(result.best).exists()


def test_nan_loss_stops_with_a_clear_message(pneumo_root: Path) -> None:
    entry = tiny_prepared()
    with pytest.raises(PneumoError, match="training loss became") as err:
        train(
            entry,
            load_config(None, [*TINY_TRAIN, "train.lr=1e30", "train.warmup_epochs=0"]),
            progress=False,
        )
    assert err.value.hint and "train.lr" in err.value.hint


def test_missing_cache_is_a_clear_error(pneumo_root: Path) -> None:
    entry = tiny_prepared()
    (pneumo_root / "prepared" / entry.name / "prepare.json").unlink()
    with pytest.raises(DataError, match="has not been prepared"):
        train(entry, load_config(None, TINY_TRAIN), progress=False)


def _train_cli(*args: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "pneumo", "train", "--quiet", *args]
    return subprocess.Popen(
        cmd,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@pytest.mark.slow
def test_killed_mid_epoch_resumes_to_the_same_result(pneumo_root: Path) -> None:
    entry = tiny_prepared(patients=40)
    # With an EMA of the weights: best.pt holds the average, so it must survive the kill too.
    args = ["-d", entry.name, *TINY_TRAIN, "train.checkpoint_every=1", "train.augment.enabled=true",
            "train.ema_decay=0.9"]  # fmt: skip
    proc = _train_cli(*args)
    runs = pneumo_root / "runs"
    deadline = time.monotonic() + 120
    # Wait for a mid-epoch checkpoint of epoch 1 (history.json appears only at the epoch's end).
    while time.monotonic() < deadline and proc.poll() is None:
        lasts = list(runs.glob("*/last.pt"))
        if lasts and not list(runs.glob("*/history.json")):
            resume = checkpoint.load(str(lasts[0]), trusted=True).resume
            assert resume is not None
            state = resume["state"]
            if state["step_in_epoch"] >= 2:
                break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[0].decode()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = checkpoint.load(str(next(runs.glob("*/last.pt"))), trusted=True).resume
    assert killed is not None
    assert killed["state"]["epoch"] == 0 and killed["state"]["step_in_epoch"] >= 2

    resumed = _train_cli("--resume", "last")
    out = resumed.communicate(timeout=300)[0].decode()
    assert resumed.returncode == 0, out
    run_dir = next(runs.glob("*/history.json")).parent
    clean = train(entry, load_config(None, args[2:]), progress=False)
    got = checkpoint.load(str(run_dir / "best.pt"))
    want = checkpoint.load(clean.best)
    assert got.meta.epoch == want.meta.epoch
    for key, tensor in want.weights.items():
        torch.testing.assert_close(got.weights[key], tensor, rtol=1e-4, atol=1e-5, msg=key)
    history = json.loads((run_dir / "history.json").read_text())
    assert [round(r["val_auroc"] or 0, 4) for r in history] == [
        round(r["val_auroc"] or 0, 4)
        for r in json.loads(Path(clean.run_dir, "history.json").read_text())
    ]
