"""Delayed labels: the true answer for a scored image, days later, joined to its prediction.

The service remembers its recent predictions by (request id, index in the request) in a
bounded book; a label for one of them is joined to it, once: the same label again changes
nothing, another label for an image already labelled is a conflict. Over the last ``window``
labelled images of the served version it reports AUROC and, at the carried threshold,
sensitivity and specificity, with the counts behind them. Labels for predictions this process
did not make (another replica's, or older than the book) are kept on disk all the same, for
``pneumo monitor`` to join across replicas.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Literal

import numpy as np

from pneumo.metrics.curves import roc_auc

Key = tuple[str, int]  # (request id, index of the image in its request)
Outcome = Literal["joined", "repeated", "unmatched", "conflict"]


@dataclass(frozen=True)
class Prediction:
    version: str
    probability: float


@dataclass(frozen=True)
class Performance:
    version: str
    images: int
    positives: int
    negatives: int
    auroc: float | None  # None until both classes are labelled
    sensitivity: float | None
    specificity: float | None


def labelled_metrics(
    y: np.ndarray, p: np.ndarray, threshold: float
) -> tuple[int, int, float | None, float | None, float | None]:
    """(positives, negatives, AUROC, sensitivity, specificity) of labels ``y`` and probabilities
    ``p`` at ``threshold``; each rate None while its class is missing."""
    pos, neg = int(y.sum()), int(len(y) - y.sum())
    called = p >= threshold
    return (
        pos, neg, roc_auc(y, p) if pos and neg else None,
        float(called[y == 1].mean()) if pos else None,
        float((~called[y == 0]).mean()) if neg else None,
    )  # fmt: skip


class LabelBook:
    def __init__(self, capacity: int = 100_000, window: int = 200) -> None:
        self.capacity, self.window = capacity, window
        self._predictions: OrderedDict[Key, Prediction] = OrderedDict()
        self._labels: dict[Key, int] = {}
        self._joined: deque[tuple[str, float, int]] = deque(maxlen=window)
        self._lock = threading.Lock()

    def predicted(self, key: Key, version: str, probability: float) -> None:
        with self._lock:
            self._predictions[key] = Prediction(version, probability)
            while len(self._predictions) > self.capacity:
                self._predictions.popitem(last=False)

    def prediction(self, key: Key) -> Prediction | None:
        with self._lock:
            return self._predictions.get(key)

    def outcome(self, key: Key, label: int) -> Outcome:
        """What :meth:`label` would do, without doing it."""
        with self._lock:
            return self._outcome(key, label)

    def _outcome(self, key: Key, label: int) -> Outcome:
        if key in self._labels:
            return "repeated" if self._labels[key] == label else "conflict"
        return "joined" if key in self._predictions else "unmatched"

    def label(self, key: Key, label: int) -> Outcome:
        with self._lock:
            outcome = self._outcome(key, label)
            if outcome == "joined":
                self._labels[key] = label
                found = self._predictions[key]
                self._joined.append((found.version, found.probability, label))
            elif outcome == "unmatched":
                self._labels[key] = label
            return outcome

    def performance(self, version: str, threshold: float) -> Performance:
        """Over the last ``window`` labelled predictions of ``version``."""
        with self._lock:
            rows = [(p, y) for v, p, y in self._joined if v == version]
        p = np.array([r[0] for r in rows], dtype=np.float64)
        y = np.array([r[1] for r in rows], dtype=np.int64)
        return Performance(version, len(rows), *labelled_metrics(y, p, threshold))
