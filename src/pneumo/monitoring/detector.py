"""Drift of a served model's recent inputs from its drift reference, tested as they arrive.

The service adds each scored image's projected embedding, probability and input statistics;
every ``every`` images, or when ``seconds`` have passed since the last check and new images
came in (once ``window`` are in), the last ``window`` are tested against the reference
(:mod:`pneumo.monitoring.drift`): MMD on the embeddings, KS on the scores and on each input
statistic the reference holds. A test flags drift when its p-value is below ``alpha``.
Adding is cheap and thread-safe; :meth:`DriftDetector.check` (milliseconds) runs off the
event loop.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from pneumo.monitoring.baseline import DriftReference
from pneumo.monitoring.drift import TestResult, ks_test, mmd_test

EMBEDDING_TEST = "embedding_mmd"
SCORE_TEST = "score_ks"


def stat_test(name: str) -> str:
    return f"{name}_ks"


def window_results(
    ref: DriftReference, embeddings: list[np.ndarray], probabilities: np.ndarray,
    stats: Mapping[str, np.ndarray], seed: int, permutations: int,
) -> list[TestResult]:  # fmt: skip
    """Every drift test of one window against ``ref``: MMD on the (projected) embeddings, KS on
    the probabilities and on each input statistic the reference holds (2+ values needed)."""
    results = []
    if len(embeddings) >= 2:
        results.append(mmd_test(ref.embeddings, np.stack(embeddings), permutations, seed))
    results.append(ks_test(ref.scores, probabilities, SCORE_TEST))
    for name, values in sorted(ref.stats.items()):
        seen = stats.get(name)
        if seen is not None and len(seen) >= 2:
            results.append(ks_test(values, seen, stat_test(name)))
    return results


@dataclass(frozen=True)
class DriftCheck:
    results: list[TestResult]
    alpha: float
    images: int  # in the window tested

    @property
    def drifted(self) -> list[str]:
        return [r.name for r in self.results if r.drifted(self.alpha)]


class DriftDetector:
    def __init__(
        self, reference: DriftReference, window: int = 50, every: int = 25, alpha: float = 0.01,
        permutations: int = 500, seconds: float = 300.0,
    ) -> None:  # fmt: skip
        if window < 2 or every < 1 or not 0 < alpha < 1:
            raise ValueError(f"window {window} (2+), every {every} (1+), alpha {alpha} (0-1)")
        self.reference = reference
        self.window, self.every, self.alpha = window, every, alpha
        self.permutations = permutations
        self.seconds = seconds
        self._last: float | None = None  # when the last check was due (the first image before)
        self._rows: deque[tuple[np.ndarray | None, float, dict[str, float | None]]] = deque(
            maxlen=window
        )
        self._since = 0
        self._lock = threading.Lock()
        self.checks = 0

    def add(
        self, embedding: np.ndarray | None, probability: float, stats: Mapping[str, float | None],
        now: float | None = None,
    ) -> bool:  # fmt: skip
        """Add one image; True when a check is due (``now``: a monotonic time, for tests)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._rows.append((embedding, probability, dict(stats)))
            self._since += 1
            self._last = now if self._last is None else self._last
            late = now - self._last >= self.seconds
            due = len(self._rows) >= self.window and (self._since >= self.every or late)
            if due:
                self._since, self._last = 0, now
            return due

    def check(self) -> DriftCheck:
        """Test the current window against the reference."""
        with self._lock:
            rows = list(self._rows)
        stats = {
            name: np.array([v for _, _, s in rows if (v := s.get(name)) is not None], np.float64)
            for name in self.reference.stats
        }
        results = window_results(
            self.reference, [e for e, _, _ in rows if e is not None],
            np.array([p for _, p, _ in rows], np.float64), stats, self.checks, self.permutations,
        )  # fmt: skip
        self.checks += 1
        return DriftCheck(results, self.alpha, len(rows))
