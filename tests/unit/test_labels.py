"""The label book: a label joins its prediction once; repeats change nothing; conflicts are
refused; the window's performance is the one computed directly."""

from __future__ import annotations

import numpy as np
import pytest

from pneumo.metrics.curves import roc_auc
from pneumo.monitoring.ground_truth import LabelBook


def test_labels_join_once_and_the_window_scores_the_served_version() -> None:
    book = LabelBook(capacity=100, window=6)
    rng = np.random.default_rng(0)
    probs = rng.random(8)
    for i, p in enumerate(probs):
        book.predicted((f"r{i}", 0), "2" if i < 7 else "3", float(p))
    labels = [1, 0, 1, 1, 0, 0, 1, 0]
    assert [book.label((f"r{i}", 0), y) for i, y in enumerate(labels)] == ["joined"] * 8
    assert book.label(("r0", 0), 1) == "repeated" and book.label(("r0", 0), 0) == "conflict"
    assert book.label(("elsewhere", 0), 1) == "unmatched"
    assert book.label(("elsewhere", 0), 1) == "repeated"  # kept, so a repeat is one
    perf = book.performance("2", threshold=0.5)
    window = list(range(2, 7))  # the last 6 joined are r2..r7; r7 is version 3
    y, p = [labels[i] for i in window], probs[window]
    assert (perf.images, perf.positives, perf.negatives) == (5, 3, 2)
    assert perf.auroc == pytest.approx(roc_auc(y, p))
    called = p >= 0.5
    assert perf.sensitivity == pytest.approx(np.mean(called[np.array(y) == 1]))
    assert perf.specificity == pytest.approx(np.mean(~called[np.array(y) == 0]))
    one_class = book.performance("3", threshold=0.5)
    assert (
        one_class.images == 1
        and one_class.auroc is None
        and one_class.specificity == (pytest.approx(float(probs[7] < 0.5)))
    )


def test_the_book_forgets_the_oldest_predictions_beyond_its_capacity() -> None:
    book = LabelBook(capacity=2)
    for i in range(3):
        book.predicted((f"r{i}", 0), "1", 0.5)
    assert book.label(("r0", 0), 1) == "unmatched"  # forgotten: kept for `pneumo monitor`
    assert book.label(("r2", 0), 1) == "joined"
