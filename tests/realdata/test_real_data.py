"""The real data in ../shared/data (PNEUMO_TEST_DATA): skipped with a reason when absent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pneumo.config import load_config
from pneumo.data import schema
from pneumo.data.cache import CacheReader
from pneumo.data.preparation import prepare
from pneumo.data.sources import datasets

pytestmark = pytest.mark.realdata


def test_full_nih_label_file_metadata_only(real_data: Path) -> None:
    label_file = real_data / "nih-metadata" / "Data_Entry_2017_v2020.csv.gz"
    entry = datasets.register(str(label_file), source="local", name="nih-full")
    result = prepare(entry, load_config(), progress=False)
    card = result.card
    assert card["mode"] == "metadata-only"
    assert card["totals"] == {
        "listed": 112_120,
        "quarantined": 0,
        "images": 112_120,
        "patients": 30_805,
        "pneumonia": 1_431,
    }
    assert card["problems"]["total"] == 0
    manifest = pd.read_parquet(result.manifest)
    # No patient in two splits, ever: checked here on all 112,120 rows, independently of
    # the check prepare itself makes.
    splits_per_patient = manifest.groupby(schema.PATIENT_ID)[schema.SPLIT].nunique()
    assert splits_per_patient.max() == 1
    assert set(manifest[schema.SPLIT]) == {"train", "val", "test"}
    assert sum(s["patients"] for s in card["splits"].values()) == 30_805
    assert (
        card["by_sex"]["train"]["M"] + card["by_sex"]["val"]["M"] + card["by_sex"]["test"]["M"]
        == 63_340
    )


def test_nih_sample_through_the_cli(real_data: Path, pneumo_root: Path) -> None:
    def run(*args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "pneumo", *args],
            capture_output=True,
            text=True,
            env=dict(os.environ),
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    run("fetch", "local", str(real_data / "nih-sample"))
    run("prepare", "--quiet")
    report = run("eda").strip().rsplit(" ", 1)[1]
    out = pneumo_root / "prepared" / "nih-sample"
    manifest = pd.read_parquet(out / "manifest.parquet")
    assert len(manifest) == 300
    assert manifest.groupby(schema.PATIENT_ID)[schema.SPLIT].nunique().max() == 1
    reader = CacheReader(str(out / "cache"))
    for _, row in manifest.sample(10, random_state=0).iterrows():
        pixels = reader.image(row[schema.SHARD], int(row[schema.SHARD_INDEX]))
        assert pixels.shape == (256, 256) and pixels.std() > 10
    assert Path(report).stat().st_size > 100_000
    card = json.loads((out / "data_card.json").read_text())
    assert card["totals"]["pneumonia"] == 150


def test_kermany_224(real_data: Path) -> None:
    entry = datasets.register(str(real_data / "kermany-224"), source="local")
    result = prepare(entry, load_config(None, ["prepare.image_size=224"]), progress=False)
    card = result.card
    assert card["totals"]["listed"] == 5_216
    # The copy holds byte-identical files under different names (e.g. person1159_virus_1944 and
    # _1945); they are quarantined so that no image can sit in both train and test.
    assert card["problems"]["by_reason"] == {"duplicate image": card["totals"]["quarantined"]}
    assert card["totals"]["images"] == 5_216 - card["totals"]["quarantined"]
    assert 0 < card["totals"]["quarantined"] < 100
    assert card["patient_grouped"] is True
    # No child in two splits, by a parse of the names written here, apart from the library's.
    manifest = pd.read_parquet(Path(result.out) / "manifest.parquet")
    names = manifest[schema.IMAGE_ID].str.rsplit("/", n=1).str[1]
    child = names.str.extract(r"^(?:NORMAL\d*-)?(IM-\d+)-|^(person\d+)_")
    children = child[0].fillna(child[1])
    assert children.notna().all()
    assert manifest.groupby(children)[schema.SPLIT].nunique().max() == 1
    assert card["totals"]["patients"] == children.nunique()
    assert card["splits"]["test"]["images"] > 0  # held out from train: no official test here


def test_perceptual_hash_tells_reencoded_kermany_films_from_other_children(
    real_data: Path,
) -> None:
    """The twin threshold on real films: each of 40 Kermany images, resized and recompressed
    as JPEG, is found as its original's twin, and no two of the originals are."""
    import io

    from PIL import Image

    from pneumo.data.decode.image import decode
    from pneumo.data.near_duplicates import near_pairs, perceptual_hash
    from pneumo.preprocess import ImageSpec

    files = sorted((real_data / "kermany-224" / "train").rglob("*.jpeg"))[::130][:40]
    spec = ImageSpec(size=128)
    rng = np.random.default_rng(0)
    originals, copies = [], []
    for path in files:
        data = path.read_bytes()
        originals.append(perceptual_hash(decode(data, spec).pixels))
        image = Image.open(io.BytesIO(data))
        side = int(image.width * rng.uniform(0.6, 0.95))
        buf = io.BytesIO()
        image.resize((side, side)).save(buf, format="JPEG", quality=int(rng.uniform(60, 90)))
        copies.append(perceptual_hash(decode(buf.getvalue(), spec).pixels))
    n = len(originals)
    assert near_pairs(originals) == []
    assert sorted(near_pairs(originals + copies)) == [(i, n + i) for i in range(n)]
