"""Training streamed from the bucket (moto's S3 server on 127.0.0.1): a bounded local cache,
the same result after a kill and a resume, and an epoch order that depends on seed and epoch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from pneumo.config import load_config
from pneumo.data.sources.datasets import Dataset
from pneumo.models import checkpoint
from pneumo.settings import get_settings
from pneumo.training.fit import train
from pneumo.training.shard_stream import streamed_order
from tests.conftest import TINY_TRAIN, torchrun_train

BUCKET = "stream"


@pytest.fixture
def s3_root(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import s3fs

    s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint}).makedirs(BUCKET, exist_ok=True)
    monkeypatch.setenv("PNEUMO_ROOT", f"s3://{BUCKET}/{tmp_path.name}")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the user cache: MLflow's file, shards
    monkeypatch.setenv("PNEUMO_STREAM_CACHE", str(tmp_path / "shards"))
    monkeypatch.setenv("PNEUMO_STREAM_SHARDS", "2")
    return tmp_path / "shards"


def _prepared_on_s3(patients: int = 40) -> Dataset:
    """Synthetic images and their cache in the bucket, 8 images a shard (many shards)."""
    from pneumo import storage
    from pneumo.config import SyntheticConfig
    from pneumo.data.preparation import prepare
    from pneumo.data.sources import datasets, synthetic

    settings = get_settings()
    dest = storage.join(settings.data, "tiny")
    config = SyntheticConfig(
        patients=patients, max_images_per_patient=2, image_size=64, prevalence=0.5, seed=1
    )
    synthetic.generate(dest, config, settings=settings, progress=False)
    entry = datasets.register(dest, source="synthetic", name="tiny", settings=settings)
    overrides = ["prepare.image_size=32", "prepare.shard_size=8"]
    prepare(entry, load_config(None, overrides), settings, progress=False)
    return entry


def test_streamed_training_keeps_at_most_the_configured_shards_on_disk(s3_root: Path) -> None:
    entry = _prepared_on_s3()
    folder_counts: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            folder_counts.append(sum(1 for _ in s3_root.rglob("*.npy")))
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = train(entry, load_config(None, [*TINY_TRAIN, "train.epochs=1"]), progress=False)
    finally:
        done.set()
        watcher.join()
    assert result.epochs_run == 1 and result.best.startswith(f"s3://{BUCKET}/")
    assert max(folder_counts) >= 1, "the prefetcher never filled its folder"
    assert max(folder_counts) <= 2, max(folder_counts)
    assert not list(s3_root.rglob("*.npy"))  # emptied when training ends


def test_the_streamed_order_depends_on_seed_and_epoch_and_visits_each_image_once() -> None:
    shard_of = np.repeat(np.arange(6), 8)  # 6 shards of 8 images
    first = streamed_order(shard_of, 1, 0, 0, 1, 48, window=2)
    assert sorted(first.tolist()) == list(range(48))
    assert np.array_equal(first, streamed_order(shard_of, 1, 0, 0, 1, 48, window=2))
    assert not np.array_equal(first, streamed_order(shard_of, 1, 1, 0, 1, 48, window=2))
    # Each window of 16 images comes from 2 shards only: a batch needs few shards at once.
    for start in range(0, 48, 16):
        assert len(set(shard_of[first[start : start + 16]].tolist())) == 2
    # Two ranks read disjoint shards, each as many images as its share.
    ranks = [streamed_order(shard_of, 1, 0, r, 2, 24, window=2) for r in (0, 1)]
    assert not set(shard_of[ranks[0]].tolist()) & set(shard_of[ranks[1]].tolist())
    assert [len(r) for r in ranks] == [24, 24]


@pytest.mark.slow
def test_a_streamed_run_killed_mid_epoch_resumes_to_the_same_result(
    s3_root: Path, s3_endpoint: str
) -> None:
    import s3fs

    entry = _prepared_on_s3(patients=70)
    args = [
        "-d", entry.name, *TINY_TRAIN, "train.epochs=1", "train.checkpoint_every=1",
        "train.augment.enabled=true",
    ]  # fmt: skip
    cmd = [sys.executable, "-m", "pneumo", "train", "--quiet", *args]
    proc = subprocess.Popen(
        cmd, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    settings = get_settings()
    from pneumo import storage

    runs = settings.runs
    deadline = time.monotonic() + 180
    killed_at = None
    fs = s3fs.S3FileSystem(
        client_kwargs={"endpoint_url": s3_endpoint},
        use_listings_cache=False,
        skip_instance_cache=True,
    )
    while killed_at is None and time.monotonic() < deadline and proc.poll() is None:
        # A last.pt before the first history.json: a checkpoint in the middle of epoch 1.
        names = [p.removeprefix(runs.removeprefix("s3://")) for p in fs.find(runs)]
        for run in {n.strip("/").split("/")[0] for n in names}:
            if f"/{run}/last.pt" in names and f"/{run}/history.json" not in names:
                killed_at = run
        time.sleep(0.02)
    assert killed_at and proc.poll() is None, proc.communicate()[0].decode()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    last = checkpoint.load(storage.join(runs, killed_at, "last.pt"), trusted=True).resume
    assert last is not None and last["state"]["epoch"] == 0
    assert last["state"]["step_in_epoch"] >= 1

    resumed = subprocess.run(
        [sys.executable, "-m", "pneumo", "train", "--quiet", "--resume", "last"],
        env=dict(os.environ), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    # The uninterrupted run need not checkpoint every step: saving draws no random numbers.
    clean = train(
        entry, load_config(None, [*args[2:], "train.checkpoint_every=1000"]), progress=False
    )
    got = checkpoint.load(storage.join(runs, killed_at, "best.pt"))
    want = checkpoint.load(clean.best)
    assert got.meta.epoch == want.meta.epoch
    for key, tensor in want.weights.items():
        torch.testing.assert_close(got.weights[key], tensor, rtol=1e-4, atol=1e-5, msg=key)
    history = json.loads(storage.read_text(storage.join(runs, killed_at, "history.json")))
    want_history = json.loads(storage.read_text(storage.join(clean.run_dir, "history.json")))
    assert [round(r["val_auroc"] or 0, 4) for r in history] == [
        round(r["val_auroc"] or 0, 4) for r in want_history
    ]


@pytest.mark.slow
def test_under_torchrun_each_rank_downloads_only_its_own_shards(
    s3_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    entry = _prepared_on_s3(patients=70)
    cache = f"/{BUCKET}/{Path(os.environ['PNEUMO_ROOT']).name}/prepared/{entry.name}/cache/"
    cmd = torchrun_train(entry.name)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    gets = [r.getMessage() for r in caplog.records if f'"GET {cache}train-' in r.getMessage()]
    n_shards = len({g.split(cache, 1)[1].split(" ", 1)[0] for g in gets})
    epochs = 2
    # Every rank reading every shard would make 2 x epochs x shards downloads; disjoint shares
    # make epochs x shards, plus the few a rank reads itself while its prefetcher is late.
    assert n_shards >= 8
    assert len(gets) < 1.5 * epochs * n_shards, (len(gets), n_shards)
    print(f"{len(gets)} downloads of {n_shards} train shards in {epochs} epochs")
