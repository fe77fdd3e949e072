"""The real data in ../shared/data (PNEUMO_TEST_DATA): skipped with a reason when absent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
    assert card["patient_grouped"] is False
    assert card["splits"]["test"]["images"] > 0  # held out from train: no official test here
