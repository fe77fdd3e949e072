"""fetch local → prepare → eda with input and output on s3://, against a real S3-protocol server.

The server is moto's standalone S3 server (what s3fs tests itself against), started on
127.0.0.1 inside the test and stopped after it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import write_nih_dataset


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("PNEUMO_ROOT", "s3://pneumo-test/work")
    return {"PNEUMO_S3_ENDPOINT_URL": s3_endpoint}


def _pneumo(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "pneumo", *args],
        env=dict(os.environ),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_prepare_reads_and_writes_s3(s3_env: dict[str, str], tmp_path: Path) -> None:
    import s3fs

    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_env["PNEUMO_S3_ENDPOINT_URL"]})
    fs.mkdir("pneumo-test")
    local = tmp_path / "ds"
    ids = write_nih_dataset(local, 24, size=64)
    fs.put(str(local), "pneumo-test/raw/ds", recursive=True)

    _pneumo("fetch", "local", "s3://pneumo-test/raw/ds")
    out = _pneumo("prepare", "--quiet", "prepare.image_size=32", "prepare.shard_size=8")
    assert "24 usable images" in out
    again = _pneumo("prepare", "--quiet", "prepare.image_size=32", "prepare.shard_size=8")
    assert again.startswith("up to date")
    _pneumo("eda")

    prepared = "pneumo-test/work/prepared/ds"
    names = {p.rsplit("/", 1)[1] for p in fs.find(prepared)}
    assert {
        "manifest.parquet",
        "data_card.json",
        "problems.csv",
        "prepare.json",
        "eda.html",
    } <= names
    assert not [n for n in names if ".tmp-" in n]
    with fs.open(f"{prepared}/manifest.parquet", "rb") as fh:
        manifest = pd.read_parquet(fh)
    assert sorted(manifest["image_id"]) == sorted(ids)
    assert manifest["path"].str.startswith("s3://pneumo-test/raw/ds/images/").all()
    card = json.loads(fs.cat(f"{prepared}/data_card.json"))
    assert card["totals"]["images"] == 24
    shards = [n for n in names if n.endswith(".npy")]
    assert shards and all(n.split("-")[0] in {"train", "val", "test"} for n in shards)

    from pneumo.data.cache import CacheReader

    reader = CacheReader(f"s3://{prepared}/cache")
    row = manifest.iloc[0]
    assert reader.image(row["shard"], int(row["shard_index"])).shape == (32, 32)
