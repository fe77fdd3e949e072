"""Fetch helpers that need no server: the catalog, member paths, part selection, retry limits."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pneumo.data.sources import download as download_mod
from pneumo.data.sources.catalog import (
    NIH_ARCHIVE_COUNT,
    RemoteFile,
    files_for,
    kermany_files,
    nih_files,
)
from pneumo.data.sources.download import download
from pneumo.data.sources.remote import safe_member_path, select_files, with_mirror
from pneumo.errors import DataError, PneumoError

HEX = {"md5": re.compile(r"^[0-9a-f]{32}$"), "sha256": re.compile(r"^[0-9a-f]{64}$")}


def test_catalog_is_well_formed() -> None:
    nih = nih_files()
    archives = [f for f in nih if f.name.endswith(".tar.gz")]
    assert [f.name for f in archives] == [f"images_{i:03d}.tar.gz" for i in range(1, 13)]
    assert NIH_ARCHIVE_COUNT == 12
    assert {f.name for f in nih} - {f.name for f in archives} == {
        "Data_Entry_2017_v2020.csv",
        "train_val_list.txt",
        "test_list.txt",
        "BBox_List_2017.csv",
    }
    everything = nih + kermany_files()
    assert len({f.url for f in everything}) == len(everything)
    for f in everything:
        assert f.url.startswith("https://") and f.size and f.size > 0
        assert f.md5 is None or HEX["md5"].match(f.md5)
        assert f.sha256 is None or HEX["sha256"].match(f.sha256)
    assert all(f.md5 for f in archives)  # NIH publishes MD5s for the archives (FAQ Q07)
    assert files_for("kermany")[0].name == "ChestXRay2017.zip"


@pytest.mark.parametrize(
    ("member", "expected"),
    [
        ("images/00000001_000.png", "images/00000001_000.png"),
        ("./chest_xray/train/NORMAL/a.jpeg", "chest_xray/train/NORMAL/a.jpeg"),
        ("chest_xray/.DS_Store", None),
        ("__MACOSX/chest_xray/._a.jpeg", None),
        ("images//00000001_000.png", "images/00000001_000.png"),
    ],
)
def test_member_paths(member: str, expected: str | None) -> None:
    assert safe_member_path(member, Path("a.zip")) == expected


@pytest.mark.parametrize("member", ["../evil.png", "/etc/passwd", "a/../../b", "C:\\x.png"])
def test_escaping_member_is_refused(member: str) -> None:
    with pytest.raises(DataError, match="outside the dataset folder"):
        safe_member_path(member, Path("a.tar.gz"))


def test_part_selection() -> None:
    files = nih_files()
    only_labels = select_files(files, "nih", [])
    assert [f.name for f in only_labels] == [f.name for f in files[12:]]
    picked = select_files(files, "nih", [12, 1])
    assert [f.name for f in picked][:2] == ["images_001.tar.gz", "images_012.tar.gz"]
    for bad in ([0], [13]):
        with pytest.raises(DataError, match="from 1 to 12"):
            select_files(files, "nih", bad)


def test_mirror_keeps_checksums() -> None:
    original = RemoteFile("x.csv", "https://example.org/a?id=1", 3, "a" * 64)
    mirrored = with_mirror(original, "https://mirror.local/nih/")
    assert mirrored.url == "https://mirror.local/nih/x.csv"
    assert (mirrored.size, mirrored.sha256) == (original.size, original.sha256)
    with pytest.raises(DataError, match="http"):
        with_mirror(original, "/srv/mirror")


def test_retries_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download_mod, "_BACKOFF_S", 0.0)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    url = "http://127.0.0.1:9/nothing-listens-here"  # discard port: connection refused
    with pytest.raises(PneumoError, match="failed after 2 retries") as err:
        download(url, tmp_path / "x.bin", size=None, sha256=None, retries=2, progress=False)
    assert url in str(err.value) and err.value.hint
