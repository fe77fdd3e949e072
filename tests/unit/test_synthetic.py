"""The synthetic generator: NIH layout, determinism, label rates, and drawn Pneumonia."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from pneumo.config import SyntheticConfig
from pneumo.data.schema import FINDINGS, NO_FINDING, TARGET
from pneumo.data.sources import layout
from pneumo.data.sources.synthetic import HEADER, _render, _rows, generate, render_image

NAME = re.compile(r"^synthetic_(\d{8})_(\d{3})\.png$")


@pytest.fixture(autouse=True)
def _root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PNEUMO_ROOT", str(tmp_path / "work"))


def _make(dest: Path, **kw: int | float) -> int:
    config = SyntheticConfig.model_validate({"patients": 12, "image_size": 64, **kw})
    return generate(str(dest), config, progress=False)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_nih_layout_csv_and_images(tmp_path: Path) -> None:
    dest = tmp_path / "ds"
    n = _make(dest, max_images_per_patient=3, seed=3)
    found = layout.detect(str(dest))
    assert found.name == "nih" and found.label_file is not None
    assert found.label_file.endswith("Data_Entry_2017.csv")
    lines = (dest / "Data_Entry_2017.csv").read_text().splitlines()
    assert lines[0] == HEADER and len(lines[0].split(",")) == 11
    rows = [line.split(",") for line in lines[1:]]
    pngs = sorted(p.name for p in (dest / "images").iterdir())
    assert n == len(rows) == len(pngs) >= 12
    assert sorted(r[0] for r in rows) == pngs
    for name, labels, follow_up, patient, age, sex, view, w, h, sx, sy in rows:
        match = NAME.match(name)
        assert match and "synthetic" in name
        assert (int(match[1]), int(match[2])) == (int(patient), int(follow_up))
        assert labels == NO_FINDING or set(labels.split("|")) <= set(FINDINGS)
        assert 1 <= int(age) <= 95 and sex in ("M", "F") and view in ("PA", "AP")
        assert (w, h) == ("64", "64") and sx == sy and float(sx) > 0
        with Image.open(dest / "images" / name) as im:
            assert im.format == "PNG" and im.mode == "L" and im.size == (64, 64)
    assert {r[3] for r in rows} == {str(i) for i in range(1, 13)}
    readme = (dest / "README.txt").read_text().lower()
    assert "synthetic" in readme and "not for clinical" in readme and "seed: 3" in readme


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    _make(tmp_path / "a", seed=7)
    _make(tmp_path / "b", seed=7)
    _make(tmp_path / "c", seed=8)
    a, b, c = (_files(tmp_path / k) for k in "abc")
    assert a == b
    assert a["Data_Entry_2017.csv"] != c["Data_Entry_2017.csv"]
    shared = set(a) & set(c) - {"Data_Entry_2017.csv", "README.txt"}
    assert shared and all(a[k] != c[k] for k in shared)


def test_rerun_smaller_leaves_no_stale_images(tmp_path: Path) -> None:
    _make(tmp_path / "ds", patients=8)
    n = _make(tmp_path / "ds", patients=3)
    assert len(list((tmp_path / "ds" / "images").iterdir())) == n


@pytest.mark.parametrize("prevalence", [0.1, 0.35, 0.7])
def test_prevalence_and_demographics(prevalence: float) -> None:
    config = SyntheticConfig.model_validate(
        {"patients": 1500, "prevalence": prevalence, "max_images_per_patient": 4}
    )
    rows = _rows(config, np.random.default_rng(0))
    positive = np.array([TARGET in r.labels for r in rows])
    assert abs(positive.mean() - prevalence) < 0.04
    assert abs(np.mean([r.view == "PA" for r in rows]) - 0.6) < 0.05
    first = [r for r in rows if r.follow_up == 0]
    assert abs(np.mean([r.sex == "M" for r in first]) - 0.55) < 0.05
    assert 40 < np.mean([r.age for r in first]) < 55 and min(r.age for r in rows) >= 1
    # Labels follow the patient: a follow-up mostly agrees with the patient's first image.
    by_patient = {r.patient: TARGET in r.labels for r in first}
    later = [(TARGET in r.labels) == by_patient[r.patient] for r in rows if r.follow_up > 0]
    assert len(later) > 300 and np.mean(later) > 0.8
    # Other findings: sprinkled over negatives, and more common beside Pneumonia.
    assert 0.1 < np.mean([r.labels != () for r in rows if TARGET not in r.labels]) < 0.45
    infiltration = np.array(["Infiltration" in r.labels for r in rows])
    assert infiltration[positive].mean() > 2 * infiltration[~positive].mean()


def test_generated_prevalence(tmp_path: Path) -> None:
    _make(tmp_path / "ds", patients=200, prevalence=0.35, seed=1)
    labels = [ln.split(",")[1] for ln in (tmp_path / "ds" / "Data_Entry_2017.csv").open()][1:]
    assert len(labels) > 250
    assert abs(np.mean([TARGET in ln.split("|") for ln in labels]) - 0.35) < 0.08


def test_render_image_shape_and_view() -> None:
    for size in (64, 100, 256):
        img = render_image(np.random.default_rng(size), size, True, "AP")
        assert img.dtype == np.uint8 and img.shape == (size, size)
        assert 20 < img.mean() < 230 and img.std() > 20  # a picture, not a flat field
    with pytest.raises(ValueError, match="view"):
        render_image(np.random.default_rng(0), 64, False, "LATERAL")


def test_pneumonia_is_drawn_in_the_lungs_only() -> None:
    """Same rng state, pneumonia on/off: identical far from the lungs, brighter inside them."""
    size, lifts = 128, []
    for seed in range(12):
        view = "PA" if seed % 2 else "AP"
        neg, lung = _render(np.random.default_rng(seed), size, False, view)
        pos, _ = _render(np.random.default_rng(seed), size, True, view)
        again, _ = _render(np.random.default_rng(seed), size, False, view)
        assert np.array_equal(neg, again)
        mask = Image.fromarray((lung * 255).astype(np.uint8)).resize((size, size))
        near = np.asarray(mask.filter(ImageFilter.MaxFilter(7))) > 0
        inside = np.asarray(mask) > 200
        diff = pos.astype(np.int16) - neg.astype(np.int16)
        assert inside.mean() > 0.1 and not near.all()
        assert np.all(diff[~near] == 0)  # nothing drawn outside the lung fields
        assert (diff < -4).mean() < 0.01  # opacities only brighten
        lifts.append(diff[inside].mean())
        assert lifts[-1] > 1.0 and np.abs(diff[inside]).max() > 20
    assert np.mean(lifts) > 6


def test_png_bytes_decode_to_rendered_pixels(tmp_path: Path) -> None:
    _make(tmp_path / "ds", patients=2, max_images_per_patient=1)
    data = (tmp_path / "ds" / "images" / "synthetic_00000001_000.png").read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        assert np.asarray(im).shape == (64, 64)
