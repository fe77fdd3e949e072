"""The EDA report: self-contained HTML, every section, the card's numbers, odd inputs, scale."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

import pneumo
from pneumo.data import schema
from pneumo.data.datacard import build_card
from pneumo.data.problems import summary as problem_summary
from pneumo.render.html import render_block
from pneumo.reports.eda import label_sections as sections
from pneumo.reports.eda import stats
from pneumo.reports.eda.page import render_report, write_eda_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HEADINGS = (
    "Summary",
    "1. Sex distribution",
    "2. Age distribution",
    "3. Findings",
    "4. View position",
    "5. Pneumonia prevalence per split",
    "6. Image size and intensity",
    "7. Sample images",
)
Samples = dict[str, list[tuple[str, npt.NDArray[np.uint8]]]]


def make_manifest(n: int, *, seed: int = 0, images: bool = True) -> pd.DataFrame:
    """An NIH-like manifest, built with numpy only (fast at 112,120 rows)."""
    rng = np.random.default_rng(seed)
    n_patients = max(1, n // 3)
    patient = rng.integers(0, n_patients, n)
    found = rng.random((n, len(schema.FINDINGS))) < 0.08
    label = found[:, schema.FINDINGS.index(schema.TARGET)]
    split_of_patient = np.array(schema.SPLITS)[rng.choice(3, n_patients, p=[0.7, 0.1, 0.2])]
    age = rng.normal(47, 17, n).clip(1, 95).round()
    age[rng.random(n) < 0.02] = np.nan
    frame = pd.DataFrame(
        {
            schema.IMAGE_ID: pd.Series(np.arange(n)).astype(str) + "_000.png",
            schema.PATH: pd.Series([None] * n, dtype="string"),
            schema.PATIENT_ID: pd.Series(patient.astype(str), dtype="string"),
            schema.FOLLOW_UP: pd.array(rng.integers(0, 5, n), dtype="Int64"),
            schema.AGE: age,
            schema.SEX: pd.Series(np.where(rng.random(n) < 0.56, "M", "F"), dtype="string"),
            schema.VIEW: pd.Series(np.where(rng.random(n) < 0.6, "PA", "AP"), dtype="string"),
            schema.ORIG_WIDTH: pd.array(rng.choice([2048, 2500, 3056], n), dtype="Int64"),
            schema.ORIG_HEIGHT: pd.array(rng.choice([2048, 2544, 3056], n), dtype="Int64"),
        }
    )
    for j, finding in enumerate(schema.FINDINGS):
        frame[finding] = pd.array(found[:, j].astype(np.int8), dtype="Int8")
    frame[schema.LABEL] = label.astype(np.int8)
    frame[schema.SPLIT] = split_of_patient[patient]
    if images:
        frame[schema.MEAN_INTENSITY] = rng.normal(125 + 10 * label, 15, n)
        frame[schema.STD_INTENSITY] = rng.normal(60, 8, n)
        frame[schema.SRC_MODE] = np.where(rng.random(n) < 0.98, "L", "RGBA")
    return frame


def make_kermany(n: int) -> pd.DataFrame:
    """Kermany-like: no patient ids, no findings, no sex/age/view, one fixed image size."""
    frame = make_manifest(n, seed=1)
    frame[schema.PATIENT_ID] = pd.Series([pd.NA] * n, dtype="string")
    for finding in schema.FINDINGS:
        frame[finding] = pd.array([pd.NA] * n, dtype="Int8")
    frame[schema.SEX] = pd.Series([pd.NA] * n, dtype="string")
    frame[schema.VIEW] = pd.Series([pd.NA] * n, dtype="string")
    frame[schema.AGE] = np.nan
    frame[schema.ORIG_WIDTH] = pd.array([224] * n, dtype="Int64")
    frame[schema.ORIG_HEIGHT] = pd.array([224] * n, dtype="Int64")
    frame[schema.LABEL] = (np.arange(n) % 4 != 0).astype(np.int8)  # 75 % Pneumonia, as Kermany
    return frame


def make_card(frame: pd.DataFrame, *, mode: str = "images", dataset: str = "nih") -> dict[str, Any]:
    has_patients = bool(frame[schema.PATIENT_ID].notna().any())
    splits: dict[str, Any] = {}
    for name, group in frame.groupby(schema.SPLIT):
        splits[str(name)] = {
            "images": len(group),
            "patients": int(group[schema.PATIENT_ID].nunique()) if has_patients else None,
            "pneumonia": int(group[schema.LABEL].sum()),
            "prevalence": float(group[schema.LABEL].mean()),
        }

    def per_split(col: str) -> dict[str, dict[str, int]]:
        return {
            str(s): {str(k): int(v) for k, v in g[col].value_counts().items()}
            for s, g in frame.groupby(schema.SPLIT)
        }

    return {
        "dataset": dataset,
        "mode": mode,
        "source": f"/data/{dataset}",
        "layout": dataset,
        "created_at": "2025-01-02T03:04:05Z",
        "totals": {
            "images": len(frame),
            "patients": int(frame[schema.PATIENT_ID].nunique()) if has_patients else None,
            "pneumonia": int(frame[schema.LABEL].sum()),
        },
        "patient_grouped": has_patients,
        "split_method": "grouped-stratified-70-10-20" if has_patients else "stratified-by-image",
        "splits": splits,
        "by_sex": per_split(schema.SEX),
        "by_view": per_split(schema.VIEW),
        "by_age_band": {"train": {"80+": 3, "0-17": 5, "18-39": 7}},
        "findings": {f: int(frame[f].sum()) for f in schema.FINDINGS},
        "problems": {
            "total": 7,
            "by_reason": {"truncated PNG": 4, "not an image": 3},
            "examples": [
                {"file": "images/bad_001.png", "reason": "truncated PNG", "detail": "EOF at 812"}
            ],
        },
        "notes": ["labels mined from reports by NLP"],
    }


def make_samples(rng_seed: int = 0, image_id: str = "00000001_000.png") -> Samples:
    rng = np.random.default_rng(rng_seed)

    def image() -> npt.NDArray[np.uint8]:
        return rng.integers(0, 256, (96, 80), dtype=np.uint8)

    return {
        "Pneumonia": [(image_id, image()), ("00000002_000.png", image())],
        "No Pneumonia": [("00000003_000.png", image())],
    }


def img_sources(html: str) -> list[str]:
    return re.findall(r"<img\b[^>]*\bsrc=\"([^\"]*)\"", html)


def assert_self_contained(html: str) -> None:
    assert html.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8">' in html
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert not re.search(r"<script|<link|<iframe|@import|url\(", html, re.I)
    assert html.count("<img") == len(img_sources(html))
    for src in img_sources(html):
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        assert base64.b64decode(src[len(prefix) :], validate=True).startswith(PNG_SIGNATURE)


@dataclass(frozen=True)
class Rendered:
    frame: pd.DataFrame
    card: dict[str, Any]
    html: str


@pytest.fixture(scope="module")
def full() -> Rendered:
    frame = make_manifest(400)
    card = make_card(frame)
    return Rendered(frame, card, render_report(frame, card, make_samples(), title="NIH sample"))


def test_full_report_is_self_contained_with_every_section(full: Rendered) -> None:
    assert_self_contained(full.html)
    for heading in HEADINGS:
        assert f"<h2>{heading}</h2>" in full.html
    # sex, age, findings bar, co-occurrence, view, prevalence, size, intensity, 3 samples
    assert len(img_sources(full.html)) == 11
    assert f"generated by pneumo {pneumo.__version__} on 20" in full.html
    assert "not available" not in full.html
    assert "No patient has images in more than one split" in full.html


def test_summary_shows_the_cards_numbers(full: Rendered) -> None:
    html, totals = full.html, full.card["totals"]
    pneumonia = totals["pneumonia"]
    assert f"<th>Usable images</th><td>{totals['images']:,}</td>" in html
    assert f"<td>{totals['patients']:,}</td>" in html
    assert f"{pneumonia:,} ({100 * pneumonia / totals['images']:.2f} %)" in html
    assert "grouped-stratified-70-10-20" in html
    assert "<th>Problems found</th><td>7</td>" in html
    assert '<th>truncated PNG</th><td class="num">4</td>' in html
    assert '<th>not an image</th><td class="num">3</td>' in html
    assert "<h3>Problem files (first 1)</h3>" in html
    assert "<th>images/bad_001.png</th><td>truncated PNG</td><td>EOF at 812</td>" in html
    assert "labels mined from reports by NLP" in html
    train = full.card["splits"]["train"]
    assert f'<td class="num">{100 * train["prevalence"]:.2f} %</td>' in html
    assert f'<td class="num">{train["images"]:,}</td>' in html


def test_kermany_like_input_says_what_is_missing() -> None:
    frame = make_kermany(300)
    card = make_card(frame, dataset="kermany")
    html = render_report(frame, card, make_samples(), title="Kermany")
    assert_self_contained(html)
    assert "Finding labels are not available for this dataset" in html
    assert "Sex is not recorded for this dataset" in html
    assert "Age is not recorded for this dataset" in html
    assert "View position is not recorded for this dataset" in html
    assert "no patient ids" in html
    assert "not available (no ids)" in html  # summary's patient count
    assert "no: images of one patient may fall in different splits" in html
    assert "All 300 images with a recorded size are 224 x 224 px." in html
    assert len(img_sources(html)) == 5  # prevalence, intensity, 3 samples


def test_metadata_only_input_explains_the_missing_image_figures() -> None:
    frame = make_manifest(300, images=False)
    html = render_report(frame, make_card(frame, mode="metadata-only"), None, title="meta")
    assert_self_contained(html)
    assert "Metadata-only report" in html
    assert "Intensity statistics are not available" in html
    assert "Sample images are not available" in html
    assert "metadata-only mode" in html
    assert "Original image size" in html
    assert len(img_sources(html)) == 7  # no intensity figure, no samples


def test_text_from_data_is_escaped() -> None:
    frame = make_kermany(100)  # few figures: this test is about the text
    evil = "<script>alert(1)</script>"
    card = make_card(frame, dataset=evil)
    card["notes"] = [f"note {evil}"]
    card["problems"]["examples"] = [{"file": f"{evil}.png", "reason": "<b>bold</b>"}]
    card["split_method"] = evil
    card["by_sex"] = {evil: {evil: 1}}
    html = render_report(frame, card, make_samples(image_id=f"{evil}.png"), title=evil)
    assert "<script" not in html.lower()
    assert "<b>bold" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.png" in html
    assert_self_contained(html)


def test_renders_the_card_that_prepare_writes() -> None:
    frame = make_manifest(200, images=False)
    card = build_card(
        frame,
        dataset={"name": "nih", "source": "local", "layout": "nih", "location": "/data/nih"},
        mode="metadata-only",
        split_method="patient-grouped stratified, seed 42",
        patient_grouped=True,
        problems=problem_summary([]),
        notes=[],
        config={},
        listed=len(frame) + 5,
    )
    html = render_report(frame, card, None, title="from build_card")
    assert_self_contained(html)
    assert "<th>Images listed by the source</th><td>205</td>" in html
    assert "<th>Quarantined (see problems)</th><td>5</td>" in html
    assert card["manifest_hash"] in html


def test_tolerates_an_empty_card_and_a_bare_manifest() -> None:
    frame = pd.DataFrame({schema.LABEL: [0, 1, 1, 0], schema.SPLIT: ["train"] * 3 + ["test"]})
    html = render_report(frame, {}, None, title="bare")
    assert_self_contained(html)
    for heading in HEADINGS:
        assert f"<h2>{heading}</h2>" in html
    assert "Original image sizes are not recorded" in html


def test_patient_leak_between_splits_is_flagged() -> None:
    frame = make_manifest(60)
    frame.loc[frame.index[:2], schema.PATIENT_ID] = "shared"
    frame.loc[frame.index[:2], schema.SPLIT] = ["train", "test"]
    found = stats.patients(frame)
    assert found is not None
    assert found.in_several_splits == 1
    ctx = sections.Context(frame, {}, stats.labels(frame), has_images=False)
    assert "1 patients have images in more than one split" in render_block(sections.prevalence(ctx))


def test_statistics_are_consistent() -> None:
    frame = make_manifest(500)
    found = stats.findings(frame)
    assert found is not None
    assert np.array_equal(np.diag(found.cooccurrence), found.counts)
    assert np.array_equal(found.cooccurrence, found.cooccurrence.T)
    assert found.counts.tolist() == [int(frame[f].sum()) for f in schema.FINDINGS]
    label = stats.labels(frame)
    sex = stats.category_by_class(frame, schema.SEX, label, ("M", "F"))
    assert sex is not None
    assert sex.values == ("M", "F")
    assert int(sex.counts.sum()) == len(frame)
    assert int(sex.counts[:, 0].sum()) == int(frame[schema.LABEL].sum())
    rows = stats.splits(frame, label)
    assert [r.name for r in rows] == list(schema.SPLITS)
    assert sum(r.images for r in rows) == len(frame)


ISOLATION_CHECK = """
import sys
import numpy as np
import pandas as pd
import pneumo.reports.eda.page
from pneumo.data import schema
from pneumo.data.datacard import build_card
from pneumo.data.problems import summary as problem_summary

assert "matplotlib" not in sys.modules, "importing pneumo.reports.eda.page imported matplotlib"
import matplotlib

before = matplotlib.rcParams.copy()  # copy(), unlike dict(), does not resolve the backend
frame = pd.DataFrame({
    schema.LABEL: [0, 1] * 20,
    schema.SPLIT: ["train", "test"] * 20,
    schema.AGE: np.arange(40.0),
    schema.SEX: ["M", "F", "F", "M"] * 10,
})
samples = {"Pneumonia": [("a.png", np.zeros((8, 8), np.uint8))]}
pneumo.reports.eda.page.render_report(frame, {}, samples, title="t")
assert matplotlib.rcParams.copy() == before, "rendering changed rcParams"
assert "matplotlib.pyplot" not in sys.modules, "rendering imported pyplot"
print("ok")
"""


def test_import_is_cheap_and_rendering_touches_no_global_matplotlib_state() -> None:
    out = subprocess.run(
        [sys.executable, "-c", ISOLATION_CHECK], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_write_eda_report_stores_the_document_atomically(tmp_path: Path) -> None:
    html = "<!DOCTYPE html><html><body>é ü</body></html>\n"
    target = tmp_path / "reports" / "eda.html"
    write_eda_report(html, str(target))
    assert target.read_text(encoding="utf-8") == html
    assert [p.name for p in target.parent.iterdir()] == ["eda.html"]


@pytest.mark.slow
def test_renders_the_full_nih_row_count() -> None:
    frame = make_manifest(112_120, images=False)
    card = make_card(frame, mode="metadata-only")
    start = time.perf_counter()
    html = render_report(frame, card, None, title="NIH, all 112,120 label rows")
    elapsed = time.perf_counter() - start
    print(f"\nrender_report on {len(frame):,} rows: {elapsed:.2f} s, {len(html) / 1e6:.2f} MB")
    assert "112,120" in html
    assert_self_contained(html)
