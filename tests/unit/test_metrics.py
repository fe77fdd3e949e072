"""Evaluation metrics: sklearn-exact curves and areas, bootstrap CIs, threshold, calibration."""

from __future__ import annotations

import io
import json
import logging
import sys
import time
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from pneumo.metrics.calibration import brier, expected_calibration_error, reliability
from pneumo.metrics.curves import average_precision, confusion_at, pr_curve, roc_auc, roc_curve
from pneumo.metrics.names import MetricName
from pneumo.metrics.summary import summarize
from pneumo.metrics.threshold import Threshold, choose_threshold, parse_threshold_rule
from tests.metric_support import bootstrap_ci, bootstrap_interval

Arrays = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]
TOL = 1e-12

# Ties within and across classes, a tie at the top score, and a threshold equal to a score.
Y_TIES = np.array([0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0], dtype=np.int64)
P_TIES = np.array([0.1, 0.4, 0.35, 0.8, 0.4, 0.4, 0.1, 0.9, 0.35, 0.2, 0.9, 0.9])


@pytest.fixture(scope="module")
def sk() -> ModuleType:
    module: ModuleType = pytest.importorskip("sklearn.metrics", reason="a test dependency")
    return module


def random_case(seed: int) -> Arrays:
    """Seeds cycle through continuous scores, scores rounded to 2 decimals and integer scores."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(30, 3000))
    y = (rng.random(n) < rng.uniform(0.05, 0.6)).astype(np.int64)
    y[:2] = [0, 1]
    p = 1 / (1 + np.exp(-(rng.normal(0, 1.5, n) + rng.uniform(0, 2) * y)))
    if seed % 3 == 1:
        p = np.round(p, 2)
    elif seed % 3 == 2:
        p = np.floor(p * 5) / 5
    return y, p


CASES = [pytest.param(Y_TIES, P_TIES, id="ties")] + [
    pytest.param(*random_case(seed), id=f"seed{seed}") for seed in range(9)
]


def correlated_patients(n_patients: int, per_patient: int, seed: int = 0) -> tuple[Any, ...]:
    """Images of one patient share label and (almost) score: strongly clustered data."""
    rng = np.random.default_rng(seed)
    label = (rng.random(n_patients) < 0.4).astype(np.int64)
    score = 1 / (1 + np.exp(-(rng.normal(0, 1.2, n_patients) + 1.2 * label)))
    groups = np.repeat(np.arange(n_patients), per_patient)
    p = np.clip(score[groups] + rng.normal(0, 0.01, groups.size), 0, 1)
    return label[groups], p, groups


# --- sklearn agreement -------------------------------------------------------------------


@pytest.mark.parametrize(("y", "p"), CASES)
def test_areas_match_sklearn(sk: ModuleType, y: Any, p: Any) -> None:
    assert abs(roc_auc(y, p) - sk.roc_auc_score(y, p)) < TOL
    assert abs(average_precision(y, p) - sk.average_precision_score(y, p)) < TOL


@pytest.mark.parametrize(("y", "p"), CASES)
def test_curves_match_sklearn(sk: ModuleType, y: Any, p: Any) -> None:
    for drop in (False, True):
        ours = roc_curve(y, p, drop_intermediate=drop)
        theirs = sk.roc_curve(y, p, drop_intermediate=drop)
        for a, b in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=TOL)
    for a, b in zip(pr_curve(y, p), sk.precision_recall_curve(y, p), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=TOL)


@pytest.mark.parametrize(("y", "p"), CASES)
def test_confusion_matches_sklearn(sk: ModuleType, y: Any, p: Any) -> None:
    for threshold in (float(np.median(p)), float(p[3]), 0.5, 1.01):
        c = confusion_at(y, p, threshold)
        predicted = (p >= threshold).astype(np.int64)
        tn, fp, fn, tp = sk.confusion_matrix(y, predicted, labels=[0, 1]).ravel()
        assert (c["tn"], c["fp"], c["fn"], c["tp"]) == (tn, fp, fn, tp)
        assert c["sensitivity"] == pytest.approx(sk.recall_score(y, predicted), abs=TOL)
        assert c["accuracy"] == pytest.approx(sk.accuracy_score(y, predicted), abs=TOL)
        if tp + fp:
            assert c["ppv"] == pytest.approx(sk.precision_score(y, predicted), abs=TOL)
            assert c["f1"] == pytest.approx(sk.f1_score(y, predicted), abs=TOL)
        else:
            assert c["ppv"] is None
        assert c["specificity"] == pytest.approx(tn / (tn + fp), abs=TOL)
        assert c["npv"] == (tn / (tn + fn) if tn + fn else None)


def test_a_score_equal_to_the_threshold_is_positive() -> None:
    c = confusion_at([0, 1, 1], [0.2, 0.5, 0.7], 0.5)
    assert (c["tp"], c["fp"], c["tn"], c["fn"]) == (2, 0, 1, 0)


def test_undefined_ratios_are_none_and_serialise() -> None:
    c = confusion_at([0, 0, 0], [0.1, 0.2, 0.3], 0.9)
    assert c["sensitivity"] is None and c["ppv"] is None and c["f1"] is None
    assert c["specificity"] == 1.0 and c["npv"] == 1.0
    json.dumps(c, allow_nan=False)


@pytest.mark.parametrize(
    ("y", "p", "message"),
    [
        ([1, 1, 1], [0.1, 0.2, 0.3], "both classes"),
        ([0, 1, 2], [0.1, 0.2, 0.3], "0/1 labels"),
        ([0, 1, 1], [0.1, np.nan, 0.3], "non-finite"),
        ([0, 1], [0.1, 0.2, 0.3], "differ in length"),
        ([], [], "empty"),
    ],
)
def test_bad_inputs_are_refused(y: Any, p: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        roc_auc(y, p)


# --- bootstrap ---------------------------------------------------------------------------


def test_interval_contains_the_point_estimate() -> None:
    y, p = random_case(3)
    for metric in ("auroc", "auprc"):
        low, high = bootstrap_ci(y, p, metric, n_boot=300)
        point = roc_auc(y, p) if metric == "auroc" else average_precision(y, p)
        assert low is not None and high is not None
        assert low < point < high
    c = confusion_at(y, p, 0.5)
    low, high = bootstrap_ci(y, p, "sensitivity", threshold=0.5, n_boot=300)
    assert low is not None and high is not None and c["sensitivity"] is not None
    assert low < c["sensitivity"] < high


def test_interval_narrows_with_more_images() -> None:
    widths = []
    for n_patients in (60, 600, 6000):
        y, p, _ = correlated_patients(n_patients, 1, seed=1)
        low, high = bootstrap_ci(y, p, "auroc", n_boot=300)
        assert low is not None and high is not None
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2]
    assert widths[0] > 5 * widths[2]  # ~ 1/sqrt(n): a factor of 10 expected


def test_patient_bootstrap_is_wider_when_images_of_a_patient_are_correlated() -> None:
    y, p, groups = correlated_patients(150, 20)
    widths = []
    for ids in (None, groups):
        low, high = bootstrap_ci(y, p, "auroc", groups=ids, n_boot=400)
        assert low is not None and high is not None
        widths.append(high - low)
    image_width, patient_width = widths
    # 20 near-copies per patient: the honest interval is ~sqrt(20) = 4.5 times wider.
    assert patient_width > 3 * image_width


def test_patient_ids_may_be_strings_but_not_missing() -> None:
    y, p, groups = correlated_patients(40, 3)
    ids = np.array([f"patient-{g:04d}" for g in groups], dtype=object)  # same order
    assert bootstrap_ci(y, p, "auroc", groups=ids, n_boot=50) == bootstrap_ci(
        y, p, "auroc", groups=groups, n_boot=50
    )
    ids[5] = None
    with pytest.raises(ValueError, match="missing patient id"):
        bootstrap_ci(y, p, "auroc", groups=ids, n_boot=50)


def test_a_seed_reproduces_the_interval() -> None:
    y, p, groups = correlated_patients(80, 4)
    first = bootstrap_ci(y, p, "auroc", groups=groups, n_boot=200, seed=7)
    assert first == bootstrap_ci(y, p, "auroc", groups=groups, n_boot=200, seed=7)
    assert first != bootstrap_ci(y, p, "auroc", groups=groups, n_boot=200, seed=8)


def test_single_class_resamples_are_skipped_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    y = np.array([1] + [0] * 11)
    p = np.linspace(0.9, 0.1, 12)
    interval = bootstrap_interval(y, p, "auroc", n_boot=500)
    # P(no positive drawn) = (11/12)^12 = 35 %: about 175 resamples have a single class.
    assert 120 < interval.skipped < 230
    with caplog.at_level(logging.WARNING):
        bootstrap_ci(y, p, "auroc", n_boot=500)
    assert "skipped" in caplog.text


def test_vectorised_resamples_agree_with_sklearn_on_each_resample(sk: ModuleType) -> None:
    """The weight-matrix kernels against sklearn, called on each materialised resample.

    Scores are pre-sorted, so both paths draw the same images from the same seed.
    """
    y, p = random_case(4)
    order = np.argsort(-p, kind="stable")
    y, p = y[order], p[order]
    pairs: tuple[tuple[MetricName, Any], ...] = (
        ("auroc", sk.roc_auc_score),
        ("auprc", sk.average_precision_score),
    )
    for metric, reference in pairs:

        def call(y: Any, p: Any, reference: Any = reference) -> float:
            return float(reference(y, p))

        fast = bootstrap_interval(y, p, metric, n_boot=60, seed=3)
        slow = bootstrap_interval(y, p, call, n_boot=60, seed=3)
        assert fast.skipped == slow.skipped == 0
        assert fast.low == pytest.approx(slow.low, abs=TOL)
        assert fast.high == pytest.approx(slow.high, abs=TOL)


def test_bootstrap_of_22k_images_is_fast() -> None:
    rng = np.random.default_rng(0)
    n = 22_000
    y = (rng.random(n) < 0.2).astype(np.int64)
    p = 1 / (1 + np.exp(-(rng.normal(0, 1, n) + 2 * y)))
    groups = rng.integers(0, 9_000, n)
    start = time.perf_counter()
    low, high = bootstrap_ci(y, p, "auroc", groups=groups, n_boot=1000)
    elapsed = time.perf_counter() - start
    assert low is not None and high is not None and low < roc_auc(y, p) < high
    assert elapsed < 10, f"1000 patient resamples of 22k images took {elapsed:.1f} s"


def test_bad_bootstrap_arguments_are_refused() -> None:
    y, p = random_case(0)
    with pytest.raises(ValueError, match="need a finite threshold"):
        bootstrap_ci(y, p, "sensitivity")
    with pytest.raises(ValueError, match="unknown metric"):
        bootstrap_ci(y, p, "auc")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_ci(y, p, "auroc", n_boot=0)


# --- summarize ---------------------------------------------------------------------------


def strict_json(value: Any) -> Any:
    def refuse(constant: str) -> Any:
        raise AssertionError(f"{constant} in JSON")

    return json.loads(json.dumps(value), parse_constant=refuse)


def test_summary_is_complete_and_strict_json() -> None:
    y, p, groups = correlated_patients(300, 3, seed=2)
    rng = np.random.default_rng(0)
    sex = rng.choice(np.array(["M", "F"], dtype=object), y.size)
    view = np.array(["AP"] * (y.size - 4) + ["PA"] * 4, dtype=object)
    summary = strict_json(
        summarize(y, p, 0.5, groups=groups, subgroups={"sex": sex, "view": view}, n_boot=200)
    )
    assert summary["n"] == y.size and summary["positives"] == int(y.sum())
    assert summary["resampling"] == "patient" and summary["n_patients"] == 300
    assert summary["auroc"]["value"] == pytest.approx(roc_auc(y, p), abs=TOL)
    assert summary["auprc"]["value"] == pytest.approx(average_precision(y, p), abs=TOL)
    c = confusion_at(y, p, 0.5)
    assert summary["confusion"] == {"tp": c["tp"], "fp": c["fp"], "tn": c["tn"], "fn": c["fn"]}
    for name in ("auroc", "auprc", "sensitivity", "specificity", "ppv", "npv", "accuracy", "f1"):
        entry = summary[name]
        assert entry["ci_low"] <= entry["value"] <= entry["ci_high"], name
    assert summary["ece"] == pytest.approx(expected_calibration_error(y, p), abs=TOL)
    assert summary["brier"] == pytest.approx(brier(y, p), abs=TOL)
    assert set(summary["subgroups"]) == {"sex", "view"}
    assert list(summary["subgroups"]["sex"]) == ["F", "M"]
    pa = summary["subgroups"]["view"]["PA"]
    assert pa["n"] == 4 and pa["auroc"]["value"] is None and "fewer than 10" in pa["reason"]
    assert summary["subgroups"]["view"]["AP"]["auroc"]["ci_low"] is not None


def test_summary_marks_undefined_metrics_with_a_reason() -> None:
    y = np.zeros(50, dtype=np.int64)
    p = np.linspace(0.0, 0.6, 50)
    summary = strict_json(summarize(y, p, 0.5, n_boot=50))
    assert summary["resampling"] == "image" and summary["n_patients"] is None
    assert summary["auroc"]["value"] is None and "negative" in summary["auroc"]["reason"]
    assert summary["sensitivity"]["value"] is None
    assert summary["specificity"]["value"] == pytest.approx(41 / 50)
    assert summary["specificity"]["ci_low"] is not None


def test_single_class_subgroup_has_no_auroc_but_keeps_specificity() -> None:
    y, p = random_case(0)
    age = np.where(y == 1, "40-59", "0-17").astype(object)
    age[: y.size // 2][y[: y.size // 2] == 0] = "80+"
    summary = summarize(y, p, 0.5, subgroups={"age band": age}, n_boot=50)
    table = summary["subgroups"]["age band"]
    assert list(table) == ["0-17", "40-59", "80+"]  # age order, not alphabetical
    children = table["0-17"]
    assert children["positives"] == 0 and children["auroc"]["value"] is None
    assert "no positive" in children["reason"]
    assert children["specificity"]["ci_low"] is not None


def test_summary_without_resamples_has_no_intervals() -> None:
    y, p = random_case(1)
    summary = summarize(y, p, 0.5, n_boot=0)
    assert summary["auroc"]["ci_low"] is None and summary["bootstrap"]["skipped"] == {}


# --- threshold ---------------------------------------------------------------------------

# Validation example: thresholds 0.7 and 0.4 both give Youden's J = 0.75.
Y_VAL = np.array([0, 0, 0, 0, 1, 1, 1, 1])
P_VAL = np.array([0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9])


def test_youden_maximises_j_and_prefers_the_higher_threshold_on_a_tie() -> None:
    t = choose_threshold(Y_VAL, P_VAL, "youden")
    assert t == Threshold(0.7, "youden", None, 0.75, 1.0, 8)
    assert "Youden" in t.describe() and t.to_dict()["chosen_on"] == "val"


@pytest.mark.parametrize(
    ("target", "value", "sensitivity", "specificity"),
    [(0.9, 0.4, 1.0, 0.75), (0.75, 0.7, 0.75, 1.0), (0.5, 0.8, 0.5, 1.0), (1.0, 0.4, 1.0, 0.75)],
)
def test_sensitivity_rule_takes_the_highest_threshold_meeting_the_target(
    target: float, value: float, sensitivity: float, specificity: float
) -> None:
    t = choose_threshold(Y_VAL, P_VAL, "sensitivity", target)
    assert (t.value, t.val_sensitivity, t.val_specificity) == (value, sensitivity, specificity)
    assert t.target == target


@pytest.mark.parametrize("seed", range(6))
def test_sensitivity_target_is_met_on_validation_and_is_tight(seed: int) -> None:
    y, p = random_case(seed)
    for target in (0.8, 0.9, 0.95):
        t = choose_threshold(y, p, "sensitivity", target)
        met = confusion_at(y, p, t.value)["sensitivity"]
        assert met is not None and met >= target and met == t.val_sensitivity
        higher = p[p > t.value]
        if higher.size:  # the next distinct score up misses the target
            below = confusion_at(y, p, float(higher.min()))["sensitivity"]
            assert below is not None and below < target


def test_threshold_needs_both_classes() -> None:
    with pytest.raises(ValueError, match="validation split needs both classes"):
        choose_threshold([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="target"):
        choose_threshold(Y_VAL, P_VAL, "sensitivity", 1.5)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("youden", ("youden", None)),
        (" Youden ", ("youden", None)),
        ("sensitivity:0.90", ("sensitivity", 0.9)),
        ("sensitivity: 0.95", ("sensitivity", 0.95)),
        ("sensitivity:95%", ("sensitivity", 0.95)),
        ("sensitivity", ("sensitivity", 0.9)),
    ],
)
def test_threshold_rules_parse(rule: str, expected: tuple[str, float | None]) -> None:
    method, target = parse_threshold_rule(rule)
    assert method == expected[0]
    assert target == pytest.approx(expected[1]) if expected[1] else target is None


@pytest.mark.parametrize(
    "rule", ["", "youden:0.9", "sensitivity:1.5", "sensitivity:0", "sens:0.9", "spec:0.9", "x"]
)
def test_bad_threshold_rules_are_refused(rule: str) -> None:
    with pytest.raises(ValueError, match="threshold rule"):
        parse_threshold_rule(rule)


# --- calibration -------------------------------------------------------------------------


def test_ece_is_zero_for_perfectly_calibrated_bins() -> None:
    # 20 images per bin at a predicted probability equal to the bin's positive rate.
    rates = (0.05, 0.25, 0.55, 0.95)
    p = np.repeat(rates, 20)
    y = np.concatenate([np.arange(20) < round(r * 20) for r in rates]).astype(np.int64)
    assert expected_calibration_error(y, p) == pytest.approx(0.0, abs=TOL)


def test_ece_and_brier_known_values() -> None:
    y = np.array([0, 0, 1, 1, 1])
    p = np.array([0.1, 0.3, 0.35, 0.7, 0.9])
    # Bin [0, 0.5): mean p 0.25, rate 1/3, weight 3/5; bin [0.5, 1]: mean 0.8, rate 1, weight 2/5.
    assert expected_calibration_error(y, p, n_bins=2) == pytest.approx(
        3 / 5 * (1 / 3 - 0.25) + 2 / 5 * 0.2, abs=TOL
    )
    assert brier([0, 1], [0.2, 0.6]) == pytest.approx(0.1, abs=TOL)


def test_reliability_bins() -> None:
    bins = reliability([0, 1, 1, 0], [0.3, 0.31, 1.0, 0.0], n_bins=10)
    assert bins["edges"][3] == 0.3 and len(bins["edges"]) == 11
    assert bins["counts"] == [1, 0, 0, 2, 0, 0, 0, 0, 0, 1]  # 0.3 in [0.3, 0.4); 1.0 in last
    assert bins["mean_predicted"][3] == pytest.approx(0.305) and bins["observed"][3] == 0.5
    assert bins["mean_predicted"][1] is None and bins["observed"][1] is None
    json.dumps(bins, allow_nan=False)


def test_calibration_needs_probabilities() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        expected_calibration_error([0, 1], [0.2, 1.2])


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_the_bootstrap_draws_a_bar_only_at_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from pneumo.metrics.resampling import bootstrap

    rng = np.random.default_rng(3)
    y = rng.random(80) < 0.4
    p = np.clip(y * 0.3 + rng.random(80) * 0.7, 0, 1)
    drawn = {}
    for tty in (False, True):
        stream = _Stream(tty)
        monkeypatch.setattr(sys, "stderr", stream)
        drawn[tty] = (bootstrap(y, p, ["auroc"], n_boot=300, seed=4), stream.getvalue())
    assert drawn[False][1] == "" and "bootstrap (80 images)" in drawn[True][1]
    assert drawn[False][0] == drawn[True][0]  # the bar changes nothing
