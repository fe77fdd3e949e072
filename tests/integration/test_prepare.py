"""`prepare` end to end on small datasets made here: bad input, idempotence, rebuilds, resume."""

from __future__ import annotations

import json
import os
import re
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
from pneumo.data.decode.image import decode
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


def smooth_image(rng: np.random.Generator, size: int = 48) -> np.ndarray:
    """A distinct picture: low-frequency noise, so no two are alike to a perceptual hash."""
    small = rng.uniform(0, 255, (6, 6)).astype(np.float32)
    big = Image.fromarray(small, "F").resize((size, size), Image.Resampling.BICUBIC)
    pixels: np.ndarray = np.clip(np.asarray(big), 0, 255).astype(np.uint8)
    return pixels


KERMANY_PATIENT = re.compile(r"^(?:NORMAL\d*-)?(IM-\d+)-|^(person\d+)_")


def test_kermany_layout(tmp_path: Path) -> None:
    root = tmp_path / "kermany"
    rng = np.random.default_rng(0)
    names = {  # two images of some children, as in the real data
        ("train", "NORMAL"): [f"IM-{p:04d}-000{k}.jpeg" for p in range(1, 6) for k in (1, 2)],
        ("train", "PNEUMONIA"): [f"person{p}_bacteria_{p * 3 + k}.jpeg" for p in range(1, 11)
                                 for k in (0, 1)],
        ("test", "NORMAL"): [f"NORMAL2-IM-{p:04d}-0001.jpeg" for p in range(1, 5)],
        ("test", "PNEUMONIA"): [f"person{p}_virus_{p}.jpeg" for p in range(1, 7)],
    }  # fmt: skip
    for (split, cls), files in names.items():
        folder = root / split / cls
        folder.mkdir(parents=True)
        for name in files:
            rgb = np.stack([smooth_image(rng)] * 3, axis=-1)
            Image.fromarray(rgb).save(folder / name, quality=90)
    entry = datasets.register(str(root), source="local")
    assert entry.layout == "kermany"
    result = prepare(entry, load_config(), progress=False)
    card = result.card
    assert card["splits"]["test"]["images"] == 10  # the official test folder, kept whole
    assert card["splits"]["train"]["images"] + card["splits"]["val"]["images"] == 30
    assert card["patient_grouped"] is True
    assert card["totals"]["patients"] == 5 + 10 + 4 + 6  # ids restart in the test folder
    assert any("Patient ids come from the Kermany file names" in n for n in card["notes"])
    # an independent parse of the names: no child in two splits
    manifest = _manifest(result.out)
    top = manifest[schema.IMAGE_ID].str.split("/").str[0]
    child = manifest[schema.IMAGE_ID].str.rsplit("/", n=1).str[1].str.extract(KERMANY_PATIENT)
    manifest["child"] = top + "/" + child[0].fillna(child[1])
    assert manifest["child"].notna().all()
    assert manifest.groupby("child")[schema.SPLIT].nunique().max() == 1


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


def test_a_reencoded_twin_of_another_patient_lands_in_the_same_split(tmp_path: Path) -> None:
    """A resized JPEG copy of one patient's film, filed under another patient: the perceptual
    hash finds the pair, both patients end in one split, and training reads the moved images
    from a shard of their new split."""
    root = tmp_path / "nih"
    ids = write_nih_dataset(root, 60)
    original = Image.open(root / "images" / ids[0])
    copy = original.resize((52, 52), Image.Resampling.BILINEAR).convert("RGB")
    twin = "00000061_000.jpg"
    copy.save(root / "images" / twin, quality=75)
    with (root / "Data_Entry_2017.csv").open("a") as fh:
        fh.write(label_row(twin, 61, pneumonia=True) + "\n")
    entry = datasets.register(str(root), source="local")
    for seed in range(20):  # a seed whose patient split puts the twins apart at first
        result = prepare(entry, load_config(None, [f"split.seed={seed}"]), progress=False)
        report = result.card["near_duplicates"]
        if report["across_splits"]:
            break
    assert report["groups"] == 1 and report["images"] == 2, report
    assert report["across_splits"] == 1 and report["moved_images"] == 1
    manifest = _manifest(result.out)
    where = dict(zip(manifest[schema.IMAGE_ID], manifest.index, strict=True))
    splits = {i: str(manifest.at[where[i], schema.SPLIT]) for i in (ids[0], twin)}
    assert splits[ids[0]] == splits[twin]
    shards = {i: str(manifest.at[where[i], schema.SHARD]) for i in (ids[0], twin)}
    moved = [i for i, shard in shards.items() if "-moved-" in shard]
    assert len(moved) == 1
    split = splits[moved[0]]
    assert shards[moved[0]].startswith(f"{split}-moved-")
    reader = CacheReader(str(Path(result.out) / "cache"))
    expected = decode((root / "images" / moved[0]).read_bytes(), reader.spec).pixels
    index = int(manifest[schema.SHARD_INDEX].to_numpy()[where[moved[0]]])
    np.testing.assert_array_equal(reader.image(shards[moved[0]], index), expected)
    # and the split's loader sees every image of the split, the moved one included
    from pneumo.training.loader import ShardImages

    images = ShardImages(manifest, str(Path(result.out) / "cache"), [split])
    assert len(images) == int((manifest[schema.SPLIT] == split).sum())
    # a re-run with the same inputs and config finds everything done
    assert prepare(entry, load_config(None, [f"split.seed={seed}"]), progress=False).up_to_date
