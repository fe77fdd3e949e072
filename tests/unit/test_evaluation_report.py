"""The evaluation report: every file written, strict JSON, an honest and complete report.md."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pytest
from PIL import Image

from pneumo import storage
from pneumo.metrics.summary import summarize
from pneumo.metrics.threshold import Method, choose_threshold
from pneumo.reports.evaluation import FIGURES, FILES, jsonable, write_evaluation_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CONTEXT = {
    "run_id": "run-20240601-abc",
    "checkpoint": "/runs/run-20240601-abc/best.pt",
    "split": "test",
    "dataset": "nih",
    "manifest_hash": "0123456789abcdef",
}


def dataset(n_patients: int = 400, seed: int = 0) -> dict[str, Any]:
    """Validation and test predictions of a decent model, with patients and subgroups."""
    rng = np.random.default_rng(seed)
    per_patient = rng.integers(1, 4, n_patients)
    groups = np.repeat(np.arange(n_patients), per_patient)
    n = groups.size
    y = (rng.random(n_patients) < 0.3).astype(np.int64)[groups]
    p = 1 / (1 + np.exp(-(rng.normal(-1.0, 1.0, n) + 2.2 * y)))
    sex = np.array(["M", "F"], dtype=object)[rng.integers(0, 2, n_patients)][groups]
    age = np.array(["0-17", "18-39", "40-59", "60-79", "80+"], dtype=object)[rng.integers(0, 5, n)]
    age[:4] = "unknown"  # a subgroup too small to judge
    view = np.where(rng.random(n) < 0.5, "AP", "PA").astype(object)
    return {
        "y": y,
        "p": p,
        "groups": groups,
        "subgroups": {"sex": sex, "age band": age, "view": view},
    }


def strict(text: str) -> Any:
    def refuse(constant: str) -> Any:
        raise AssertionError(f"{constant} in metrics.json")

    return json.loads(text, parse_constant=refuse)


def build(
    method: Method = "youden", target: float | None = None, *, groups: bool = True
) -> tuple[dict[str, Any], dict[str, Any]]:
    val, test = dataset(seed=1), dataset(seed=2)
    threshold = choose_threshold(val["y"], val["p"], method, target)
    summary = summarize(
        test["y"],
        test["p"],
        threshold.value,
        groups=test["groups"] if groups else None,
        subgroups=test["subgroups"],
        n_boot=200,
    )
    summary["threshold_rule"] = threshold.to_dict()
    return summary, test


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], dict[str, Any]]:
    summary, test = build()
    out = tmp_path_factory.mktemp("eval") / "eval-test"
    files = write_evaluation_report(
        summary, test["y"], test["p"], str(out), title="nih · test", context=CONTEXT
    )
    return out, files, summary


def test_every_file_is_written_and_returned(report: tuple[Path, dict[str, str], Any]) -> None:
    out, files, _ = report
    assert set(files) == set(FILES)
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)  # no temporaries left
    for name, url in files.items():
        assert Path(url) == out / name


def test_metrics_json_is_strict_and_carries_the_context(
    report: tuple[Path, dict[str, str], dict[str, Any]],
) -> None:
    out, _, summary = report
    document = strict((out / "metrics.json").read_text())
    assert document["context"] == CONTEXT and document["title"] == "nih · test"
    assert document["auroc"]["value"] == pytest.approx(summary["auroc"]["value"])
    assert document["threshold_rule"]["method"] == "youden"
    assert document["resampling"] == "patient"
    assert document["subgroups"]["age band"]["unknown"]["auroc"]["value"] is None


def test_figures_are_pngs_of_a_readable_size(report: tuple[Path, dict[str, str], Any]) -> None:
    out, _, _ = report
    for name in FIGURES:
        data = (out / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE), name
        width, height = Image.open(io.BytesIO(data)).size
        assert width >= 500 and height >= 400, name


def test_markdown_states_what_how_and_every_subgroup(
    report: tuple[Path, dict[str, str], dict[str, Any]],
) -> None:
    out, _, summary = report
    text = (out / "report.md").read_text()
    for value in CONTEXT.values():
        assert value in text
    assert "Youden" in text and "chosen on the **val** split" in text
    rule = summary["threshold_rule"]
    assert f"sensitivity {rule['val_sensitivity']:.3f}" in text
    assert f"specificity {rule['val_specificity']:.3f}" in text
    assert "resamples of **patients**" in text
    for name, values in summary["subgroups"].items():
        assert f"| {name} |" in text
        for value in values:
            assert f"| {value} |" in text
    assert "age band = unknown (only 4 images" in text
    assert f"{summary['auroc']['value']:.3f} | {summary['auroc']['ci_low']:.3f}" in text
    for figure in FIGURES:
        assert f"]({figure})" in text
    assert "nan" not in text.lower()


def test_sensitivity_rule_and_image_level_caveat(tmp_path: Path) -> None:
    summary, test = build("sensitivity", 0.95, groups=False)
    write_evaluation_report(
        summary, test["y"], test["p"], str(tmp_path), title="t", context={"split": "val"}
    )
    text = (tmp_path / "report.md").read_text()
    assert "highest threshold whose sensitivity is >= 0.95" in text
    assert "Patient ids are unknown" in text and "too narrow" in text
    assert "This is the validation split" in text
    short = summary["sensitivity"]["value"] < 0.95
    assert ("falls short of the 0.95 target" in text) == short


def test_single_class_split_still_reports(tmp_path: Path) -> None:
    y = np.zeros(30, dtype=np.int64)
    p = np.linspace(0.05, 0.7, 30)
    summary = summarize(y, p, 0.5, n_boot=50)
    files = write_evaluation_report(summary, y, p, str(tmp_path), title="negatives only")
    document = strict((tmp_path / "metrics.json").read_text())
    assert document["auroc"]["value"] is None and document["auroc"]["reason"]
    text = (tmp_path / "report.md").read_text()
    assert "| AUROC | n/a |" in text and "not recorded" in text and "Only 0 positive" in text
    assert all(Path(url).stat().st_size > 0 for url in files.values())


def test_report_goes_through_fsspec_urls(tmp_path: Path) -> None:
    summary, test = build()
    url = "memory://pneumo-test/eval-test"
    try:
        files = write_evaluation_report(summary, test["y"], test["p"], url, title="remote")
        assert set(storage.find(url)) == set(FILES)
        assert storage.read_bytes(files["roc.png"]).startswith(PNG_SIGNATURE)
    finally:
        fsspec.filesystem("memory").rm("/pneumo-test", recursive=True)


def test_mismatched_arrays_are_refused(tmp_path: Path) -> None:
    summary, test = build()
    with pytest.raises(ValueError, match="summary is for"):
        write_evaluation_report(summary, test["y"][:-1], test["p"][:-1], str(tmp_path), title="t")


def test_jsonable_makes_strict_json() -> None:
    value = {
        "a": np.float32(np.nan),
        "b": np.int64(3),
        "c": (np.inf, 1.5),
        "d": np.array([1.0, np.nan]),
        "e": np.bool_(True),
        4: Path("x"),
    }
    expected = {"a": None, "b": 3, "c": [None, 1.5], "d": [1.0, None], "e": True, "4": "x"}
    assert jsonable(value) == expected
    json.dumps(jsonable(value), allow_nan=False)


def test_no_torch_no_pyplot_and_lazy_matplotlib(tmp_path: Path) -> None:
    """The evaluation code must run where torch is absent and never touch pyplot's global state."""
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        from pneumo.metrics import calibration, threshold
        from pneumo.metrics import summary as metrics
        from pneumo.reports import evaluation as report
        assert "matplotlib" not in sys.modules, "matplotlib imported at import time"
        y = np.array([0, 1] * 20)
        p = np.linspace(0.01, 0.99, 40)
        summary = metrics.summarize(y, p, 0.5, n_boot=20)
        report.write_evaluation_report(summary, y, p, {str(tmp_path)!r}, title="t")
        assert "matplotlib.pyplot" not in sys.modules, "pyplot imported"
        assert "torch" not in sys.modules, "torch imported"
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_confident_well_separated_scores_draw_their_calibration(tmp_path: Path) -> None:
    # Bins whose observed rate is exactly 0 or 1 (a good model): the interval bars must still draw.
    # 11 negatives alone in the lowest bin and 6 positives alone in the highest: counts at which
    # the Wilson bounds round past 0 and 1.
    y = np.array([0] * 11 + [1] * 6 + [0, 1] * 10)
    p = np.concatenate([np.full(11, 0.02), np.full(6, 0.98), np.linspace(0.3, 0.7, 20)])
    summary = summarize(y, p, 0.5, n_boot=20)
    write_evaluation_report(summary, y, p, str(tmp_path), title="separated")
    assert (tmp_path / "reliability.png").read_bytes()[:4] == b"\x89PNG"


def test_headline_and_roc_points_for_pipelines(tmp_path: Path) -> None:
    summary, test = build()
    write_evaluation_report(
        summary,
        test["y"],
        test["p"],
        str(tmp_path),
        title="t",
        context={"val_auroc_at_training": 0.91},
    )
    headline = json.loads((tmp_path / "headline.json").read_text())
    assert headline == {
        "auroc": summary["auroc"]["value"], "accuracy": summary["accuracy"]["value"],
        "sensitivity": summary["sensitivity"]["value"],
        "specificity": summary["specificity"]["value"], "threshold": summary["threshold"],
        "val_auroc": 0.91,
    }  # fmt: skip
    points = json.loads((tmp_path / "roc.json").read_text())
    fpr = [r["fpr"] for r in points]
    tpr = [r["tpr"] for r in points]
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert fpr == sorted(fpr) and tpr == sorted(tpr)
    steps = zip(fpr[:-1], fpr[1:], tpr[:-1], tpr[1:], strict=True)
    area = sum((b - a) * (c + d) / 2 for a, b, c, d in steps)
    assert abs(area - summary["auroc"]["value"]) < 1e-4  # the curve is the AUROC's
