"""`pneumo predict` on the registered test model, in an interpreter that refuses torch: one row
per file with the served probability or the reason, a killed run resumed, glob patterns."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from PIL import Image

from tests.conftest import REPO, png_bytes
from tests.serving_support import NO_TORCH, Registered

pytestmark = pytest.mark.slow


def _env(registered: Registered) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PNEUMO_")}
    env.update(registered.env, PYTHONPATH=str(REPO / "src"))
    return env


def _predict(registered: Registered, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", NO_TORCH, "predict", *args, "-q"]
    return subprocess.run(cmd, env=_env(registered), capture_output=True, text=True, timeout=300)


def _dicom(pixels: np.ndarray, path: Path) -> None:
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = pixels.astype(np.uint8).tobytes()
    pydicom.dcmwrite(path, ds, enforce_file_format=True)


def test_a_folder_of_good_and_broken_files(registered: Registered, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    expected: dict[str, float] = {}
    for source, probability in sorted(registered.test_images.items())[:6]:
        target = folder / Path(source).name
        shutil.copy(source, target)
        expected[str(target)] = probability
    first = next(iter(expected))
    _dicom(np.asarray(Image.open(first).convert("L")), folder / "scan.dcm")
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.png").write_text("not an image")
    (folder / "cut.png").write_bytes(png_bytes(Image.open(first))[:200])
    (folder / "README.txt").write_text("skipped: not a suffix predict reads")
    out = tmp_path / "scores.parquet"
    proc = _predict(registered, str(folder), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    table = pd.read_parquet(out)
    assert sorted(table["file"]) == sorted([*expected, *(str(folder / n) for n in (
        "scan.dcm", "empty.png", "notes.png", "cut.png"))])  # fmt: skip
    csv = pd.read_csv(tmp_path / "scores.csv")
    assert csv["file"].tolist() == table["file"].tolist()
    np.testing.assert_allclose(csv["probability"], table["probability"], equal_nan=True)
    rows = {str(r["file"]): r for r in table.to_dict("records")}
    for file, probability in expected.items():
        assert rows[file]["probability"] == pytest.approx(probability, abs=1e-4), file
        assert pd.isna(rows[file]["error"])
        positive = probability >= float(rows[file]["threshold"])
        assert rows[file]["decision"] == ("pneumonia" if positive else "no pneumonia")
    scan = rows[str(folder / "scan.dcm")]["probability"]
    assert scan == pytest.approx(rows[first]["probability"], abs=0.02)
    for name, reason in (("empty.png", "empty"), ("notes.png", "not an image"), ("cut.png", "")):
        row = rows[str(folder / name)]
        assert pd.isna(row["probability"]) and pd.isna(row["decision"])
        assert isinstance(row["error"], str) and reason in row["error"]
    assert set(table["model"]) == {"pneumonia"} and table["version"].nunique() == 1
    assert "3 could not be" in proc.stdout
    assert not (tmp_path / "scores.parquet.partial").exists()


def test_a_killed_run_resumes_where_it_stopped(registered: Registered, tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    sources = sorted(registered.test_images)
    for i in range(900):
        shutil.copy(sources[i % len(sources)], folder / f"img-{i:04d}.png")
    out = tmp_path / "big.parquet"
    cmd = [sys.executable, "-c", NO_TORCH, "predict", str(folder), "--out", str(out), "-q"]
    proc = subprocess.Popen(cmd, env=_env(registered), start_new_session=True)
    partial = tmp_path / "big.parquet.partial"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(partial.glob("chunk-*.parquet")):
        assert proc.poll() is None, "predict ended before it could be killed"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists() and list(partial.glob("chunk-*.parquet"))
    again = _predict(registered, str(folder), "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert "taken from the interrupted run" in again.stdout
    table = pd.read_parquet(out)
    assert len(table) == 900 and table["file"].is_unique and table["error"].isna().all()
    assert table["file"].tolist() == sorted(str(p) for p in folder.iterdir())


def test_glob_patterns_and_a_clear_error_for_nothing(
    registered: Registered, tmp_path: Path
) -> None:
    folder = Path(next(iter(registered.test_images))).parent
    out = tmp_path / "glob.parquet"
    proc = _predict(registered, str(folder / "*_000.png"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_parquet(out)) == len(list(folder.glob("*_000.png")))
    missing = _predict(registered, str(tmp_path / "nowhere" / "*.png"))
    assert missing.returncode == 2
    assert "nothing to score at" in missing.stderr and "Traceback" not in missing.stderr


def test_explain_draws_each_scored_files_map_beside_the_table(
    registered: Registered, tmp_path: Path
) -> None:
    from pneumo.data.decode.pool import decode_file
    from pneumo.explain.overlay import overlay, overlay_side
    from pneumo.serving.source import make_source
    from pneumo.serving.state import load_version
    from pneumo.settings import ServeSettings, Settings

    folder = tmp_path / "in"
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir()
    sources = sorted(registered.test_images)[:3]
    for source in sources:
        shutil.copy(source, folder / "a" / Path(source).name)
    shutil.copy(sources[0], folder / "b" / Path(sources[0]).name)  # the same name twice
    (folder / "b" / "broken.png").write_bytes(b"no image")
    out, maps = tmp_path / "scores.parquet", tmp_path / "maps"
    proc = _predict(registered, str(folder), "--out", str(out), "--explain", str(maps))
    assert proc.returncode == 0, proc.stderr
    assert f"activation-map overlays: {maps}" in proc.stdout
    table = pd.read_parquet(out).set_index("file")
    broken = table.loc[str(folder / "b" / "broken.png")]
    assert pd.isna(broken["overlay"]) and isinstance(broken["error"], str)
    drawn = table["overlay"].dropna()
    assert (
        len(drawn) == 4
        and drawn.is_unique
        and sorted(maps.iterdir()) == sorted(Path(p) for p in drawn)
    )
    # Each overlay is the file's model input with the served model's own map over it.
    settings = Settings(root=str(registered.root))
    serve = ServeSettings()
    source = make_source("models:/pneumonia@champion", settings, tmp_path / "cache")
    model = load_version(source, source.current(), serve)
    assert model.explains
    for file, url in drawn.items():
        _, pixels = decode_file(str(file), model.spec.image)
        assert pixels is not None
        score = model.score(pixels[None], [True])[0]
        assert score.cam is not None
        assert score.probability == pytest.approx(table.loc[file, "probability"], abs=1e-6)
        want = overlay(pixels, score.cam.upsampled(overlay_side(pixels.shape[0])))
        np.testing.assert_array_equal(np.asarray(Image.open(url).convert("RGB")), want)


def test_explain_with_a_model_that_has_no_maps_says_so(
    registered: Registered, tmp_path: Path
) -> None:
    from tests.integration.test_release_compat import release_package

    release_package(tmp_path / "old")
    image = next(iter(registered.test_images))
    proc = _predict(registered, image, "--model", str(tmp_path / "old"),
                    "--explain", str(tmp_path / "maps"))  # fmt: skip
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "has no activation maps" in proc.stderr and "drop --explain" in proc.stderr
    assert not (tmp_path / "maps").exists()
