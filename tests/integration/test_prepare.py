"""`prepare` end to end on small datasets made here: bad input, idempotence, rebuilds, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pneumo.config import load_config
from pneumo.data import schema
from pneumo.data.cache import CacheReader
from pneumo.data.preparation import prepare
from pneumo.data.sources import datasets
from pneumo.errors import DataError
from pneumo.settings import get_settings
from tests.conftest import NIH_HEADER, gradient, label_row, write_nih_dataset


def _manifest(out: str) -> pd.DataFrame:
    return pd.read_parquet(Path(out) / "manifest.parquet")


def _bad_dataset(root: Path) -> dict[str, np.ndarray]:
    """Good images plus one of each kind of bad input; returns expected pixels of odd modes."""
    write_nih_dataset(root, 12)
    images = root / "images"
    gray = gradient(64, seed=99)
    Image.fromarray(gray.astype(np.uint16) * 257).save(images / "sixteen.png")
    Image.fromarray(np.dstack([gray, gray, gray, np.full_like(gray, 255)])).save(
        images / "rgba.png"
    )
    (images / "empty.png").write_bytes(b"")
    good = (images / "00000001_000.png").read_bytes()
    (images / "truncated.png").write_bytes(good[: len(good) // 2])
    (images / "text.png").write_text("not an image, just text\n")
    (images / "zcopy.png").write_bytes((images / "00000002_000.png").read_bytes())
    extra = [
        label_row("sixteen.png", 101, True),
        label_row("rgba.png", 102, False),
        label_row("empty.png", 103, False),
        label_row("truncated.png", 104, True),
        label_row("text.png", 105, False),
        label_row("missing.png", 106, True),
        label_row("zcopy.png", 107, False),
        "broken.png,No Finding,0",  # malformed row
    ]
    with (root / "Data_Entry_2017.csv").open("a") as fh:
        fh.write("\n".join(extra) + "\n")
    return {"sixteen.png": gray, "rgba.png": gray}


def test_bad_inputs_are_quarantined_and_odd_modes_cached(tmp_path: Path) -> None:
    expected = _bad_dataset(tmp_path / "ds")
    entry = datasets.register(str(tmp_path / "ds"), source="local")
    result = prepare(entry, load_config(None, ["prepare.image_size=64"]), progress=False)
    manifest = _manifest(result.out)
    assert len(manifest) == 14
    reader = CacheReader(str(Path(result.out) / "cache"))
    for image_id, pixels in expected.items():
        row = manifest[manifest[schema.IMAGE_ID] == image_id].iloc[0]
        np.testing.assert_array_equal(
            reader.image(row[schema.SHARD], int(row[schema.SHARD_INDEX])), pixels
        )
    problems = pd.read_csv(Path(result.out) / "problems.csv")
    by_file = {Path(f).name: r for f, r in zip(problems["file"], problems["reason"], strict=True)}
    assert by_file["empty.png"] == "empty file"
    assert by_file["truncated.png"] == "truncated or corrupt image data"
    assert by_file["text.png"] == "not an image"
    assert by_file["missing.png"] == "missing file"
    assert by_file["Data_Entry_2017.csv:21"] == "malformed label row"
    assert by_file["zcopy.png"] == "duplicate image"
    assert result.card["problems"]["total"] == 6


def test_strict_mode_makes_problems_fatal(tmp_path: Path) -> None:
    _bad_dataset(tmp_path / "ds")
    entry = datasets.register(str(tmp_path / "ds"), source="local")
    with pytest.raises(DataError, match="6 data problem"):
        prepare(entry, load_config(None, ["prepare.strict=true"]), progress=False)
    assert not (Path(get_settings().prepared) / entry.name / "manifest.parquet").exists()


def test_rerun_is_noop_and_changed_parameters_rebuild(tmp_path: Path) -> None:
    write_nih_dataset(tmp_path / "ds", 20)
    entry = datasets.register(str(tmp_path / "ds"), source="local")
    cfg = load_config(None, ["prepare.image_size=32", "prepare.shard_size=8"])
    first = prepare(entry, cfg, progress=False)
    shard = Path(first.out) / "cache" / "train-00000.npy"
    stamp = shard.stat().st_mtime_ns
    again = prepare(entry, cfg, progress=False)
    assert again.up_to_date and shard.stat().st_mtime_ns == stamp
    bigger = prepare(
        entry, load_config(None, ["prepare.image_size=48", "prepare.shard_size=8"]), progress=False
    )
    assert not bigger.up_to_date
    assert np.load(shard).shape[1:] == (48, 48)
    # an input change (one image rewritten) rebuilds only the shard holding it
    before = {p.name: p.stat().st_mtime_ns for p in (Path(first.out) / "cache").glob("*.npy")}
    victim = _manifest(first.out).iloc[0]
    Image.fromarray(gradient(64, seed=1234)).save(victim[schema.PATH])
    prepare(
        entry, load_config(None, ["prepare.image_size=48", "prepare.shard_size=8"]), progress=False
    )
    after = {p.name: p.stat().st_mtime_ns for p in (Path(first.out) / "cache").glob("*.npy")}
    changed = {n for n in before if before[n] != after[n]}
    assert changed == {victim[schema.SHARD]}


def test_undersampling_option(tmp_path: Path) -> None:
    write_nih_dataset(tmp_path / "ds", 30)
    entry = datasets.register(str(tmp_path / "ds"), source="local")
    result = prepare(entry, load_config(None, ["prepare.undersample=true"]), progress=False)
    train = _manifest(result.out).query("split == 'train'")
    assert train[schema.LABEL].sum() * 2 == len(train)
    totals = result.card["totals"]
    assert totals["quarantined"] == 0
    assert totals["images"] + totals["undersampled_out"] == totals["listed"] == 30


def test_metadata_only_needs_no_images(tmp_path: Path) -> None:
    label = tmp_path / "Data_Entry_2017_v2020.csv"
    label.write_text(
        "\n".join([NIH_HEADER] + [label_row(f"{i}_000.png", i, i % 4 == 0) for i in range(1, 81)])
    )
    entry = datasets.register(str(label), source="local", name="labels")
    result = prepare(entry, load_config(), progress=False)
    assert result.card["mode"] == "metadata-only"
    assert result.card["totals"] == {
        "listed": 80,
        "quarantined": 0,
        "images": 80,
        "patients": 80,
        "pneumonia": 20,
    }
    assert schema.SHARD not in _manifest(result.out)


def test_kermany_layout(tmp_path: Path) -> None:
    root = tmp_path / "kermany"
    seed = 0
    for split, cls, n in [
        ("train", "NORMAL", 10),
        ("train", "PNEUMONIA", 20),
        ("test", "NORMAL", 4),
        ("test", "PNEUMONIA", 6),
    ]:
        folder = root / split / cls
        folder.mkdir(parents=True)
        for i in range(n):
            seed += 1
            rgb = np.stack([gradient(48, seed=seed)] * 3, axis=-1)
            Image.fromarray(rgb).save(folder / f"{cls.lower()}-{i}.jpeg", quality=90)
    entry = datasets.register(str(root), source="local")
    assert entry.layout == "kermany"
    card = prepare(entry, load_config(), progress=False).card
    assert card["splits"]["test"]["images"] == 10  # the official test folder, kept whole
    assert card["splits"]["train"]["images"] + card["splits"]["val"]["images"] == 30
    assert card["totals"]["patients"] is None and card["patient_grouped"] is False
    assert any("no patient id" in n for n in card["notes"])


def _run_prepare_cli(root: Path, dataset: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PNEUMO_ROOT": str(root), "PNEUMO_WORKERS": "1"}
    cmd = [sys.executable, "-m", "pneumo", "prepare", "--quiet", "-d", str(dataset),
           "prepare.shard_size=4", "prepare.image_size=64"]  # fmt: skip
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )


@pytest.mark.slow
def test_sigkill_halfway_then_resume_equals_clean_run(tmp_path: Path) -> None:
    dataset = tmp_path / "ds"
    write_nih_dataset(dataset, 60, size=768)
    killed_root, clean_root = tmp_path / "killed", tmp_path / "clean"
    proc = _run_prepare_cli(killed_root, dataset)
    cache = killed_root / "prepared" / "ds" / "cache"
    deadline = time.monotonic() + 60
    while (
        len(list(cache.glob("*-*.json"))) < 2
        and time.monotonic() < deadline
        and proc.poll() is None
    ):
        time.sleep(0.02)
    assert proc.poll() is None, "prepare finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed_root / "prepared" / "ds" / "prepare.json").exists()
    done_before = len(list(cache.glob("*-*.json")))
    assert 2 <= done_before < 15

    outputs = []
    for root in (killed_root, clean_root):
        proc = _run_prepare_cli(root, dataset)
        outputs.append(proc.communicate(timeout=120)[0].decode())
        assert proc.returncode == 0, outputs[-1]
    assert f"{done_before} shard(s) already done" in outputs[0]
    killed_files = sorted(p.name for p in cache.iterdir())
    clean_cache = clean_root / "prepared" / "ds" / "cache"
    assert killed_files == sorted(p.name for p in clean_cache.iterdir())
    for name in killed_files:
        assert (cache / name).read_bytes() == (clean_cache / name).read_bytes(), name
    killed = pd.read_parquet(killed_root / "prepared" / "ds" / "manifest.parquet")
    clean = pd.read_parquet(clean_root / "prepared" / "ds" / "manifest.parquet")
    pd.testing.assert_frame_equal(killed, clean)
    card = json.loads((killed_root / "prepared" / "ds" / "data_card.json").read_text())
    assert card["totals"]["images"] == 60
