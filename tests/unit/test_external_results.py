"""What a model has seen travels with it; external results read back from a version's tags; the
report's expected-vs-observed table and its caveat."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pneumo.data import schema
from pneumo.errors import PneumoError
from pneumo.packaging.external_results import one_line, result_record, results_in, tag_of
from pneumo.packaging.training_images import read_training_images, training_images_bytes
from pneumo.reports.external_text import expected_vs_observed, external_caveats, left_out


def _manifest() -> pd.DataFrame:
    return pd.DataFrame(
        {
            schema.SPLIT: ["train", "val", "test", "train"],
            schema.CONTENT_HASH: ["a1", "b2", "c3", "d4"],
            schema.PERCEPTUAL_HASH: ["f" * 64, "e" * 64, "0" * 64, "1" * 64],
        }
    )


def test_training_images_hold_train_and_val_only_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "training_images.json"
    path.write_bytes(training_images_bytes(_manifest(), "tiny", "abc"))
    seen = read_training_images(path)
    assert seen is not None
    assert seen.content_hashes == {"a1", "b2", "d4"} and seen.images == 3
    assert sorted(seen.perceptual_hashes) == sorted(["f" * 64, "e" * 64, "1" * 64])
    assert read_training_images(tmp_path / "absent.json") is None
    path.write_text('{"format": "something-else/1"}')
    with pytest.raises(PneumoError, match=r"training_images\.json is not a list of training"):
        read_training_images(path)


def _metric(value: float, low: float, high: float) -> dict[str, float]:
    return {"value": value, "ci_low": low, "ci_high": high}


SUMMARY = {
    "n": 618, "positives": 390, "threshold": 0.08,
    "auroc": _metric(0.9, 0.88, 0.92), "accuracy": _metric(0.8, 0.77, 0.83),
    "sensitivity": _metric(0.99, 0.98, 1.0), "specificity": _metric(0.55, 0.5, 0.6),
    "exclusions": {"seen_identical": 3, "seen_twins": 1, "unusable": 2, "duplicates": 0,
                   "checked_against": "the package", "training_images_known": 4411},
    "expected": {
        "validation": {"dataset": "kermany", "n": 779, "auroc": {"value": 0.999}},
        "test": {"dataset": "kermany", "n": 779, "auroc": _metric(0.998, 0.996, 1.0),
                 "specificity": _metric(0.97, 0.95, 0.99)},
    },
}  # fmt: skip


def test_a_result_round_trips_through_its_tag_and_reads_as_one_line() -> None:
    record = result_record(SUMMARY, "kermany-official", "test", "s3://b/report.md")
    key, value = tag_of("kermany-official-test", record)
    tags = {key: value, "external/broken": "{not json", "test_auroc": "0.99"}
    found = results_in(tags)
    assert list(found) == ["kermany-official-test"]
    assert found["kermany-official-test"]["auroc"] == [0.9, 0.88, 0.92]
    assert found["kermany-official-test"]["excluded"]["seen_identical"] == 3
    line = one_line("kermany-official-test", found["kermany-official-test"])
    assert line.startswith("kermany-official-test: AUROC 0.900 (0.880-0.920), accuracy 0.800")
    assert line.endswith("(n=618)")


def test_expected_beside_observed_and_the_drop_is_named() -> None:
    table = "\n".join(expected_vs_observed(SUMMARY))
    assert "Expected: kermany, validation (n=779)" in table
    assert "Observed: this dataset (n=618)" in table
    assert "| Specificity | - | 0.970 (0.950 - 0.990) | 0.550 (0.500 - 0.600) |" in table
    caveats = " ".join(external_caveats(SUMMARY))
    assert "Specificity 0.970 → 0.550" in caveats and "AUROC 0.998 → 0.900" in caveats
    assert "Sensitivity" not in caveats.split("Notably below")[1]
    lines = "\n".join(left_out(SUMMARY, 624))
    assert "| images listed | 624 |" in lines and "Checked against 4,411" in lines
    unchecked = {**SUMMARY, "exclusions": {**SUMMARY["exclusions"], "checked_against": None}}  # type: ignore[dict-item]
    assert "**Not checked" in "\n".join(left_out(unchecked, None))
