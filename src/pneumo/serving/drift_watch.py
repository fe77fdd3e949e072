"""The service's drift checks: recent images against the served model's drift reference.

Each scored image is added to the served version's :class:`DriftDetector`; when a check is
due it runs in a worker thread (one at a time; the next due check waits for the next image),
and its p-values, statistics and flags become Prometheus series (``pneumo_drift_*``). A swap
starts a new window against the new version's reference; a version without one has no checks
and its series read NaN.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import anyio
import numpy as np

from pneumo.monitor_settings import MonitorSettings
from pneumo.monitoring.detector import DriftCheck, DriftDetector
from pneumo.serving.logs import event
from pneumo.serving.model import LoadedModel
from pneumo.serving.prometheus import DRIFT_TESTS, Metrics


class DriftWatch:
    def __init__(self, metrics: Metrics, cfg: MonitorSettings) -> None:
        self.metrics = metrics
        self.cfg = cfg
        self.detector: DriftDetector | None = None
        self._task: asyncio.Task[None] | None = None
        self.last: DriftCheck | None = None

    def use(self, model: LoadedModel) -> None:
        """Watch ``model`` from now on (at start and after a swap): a new, empty window."""
        drift = model.reference.drift if model.reference is not None else None
        self.detector = None
        if self.cfg.drift and drift is not None:
            self.detector = DriftDetector(
                drift, self.cfg.window, self.cfg.check_every, self.cfg.alpha,
                self.cfg.permutations, self.cfg.check_seconds,
            )  # fmt: skip
        for test in DRIFT_TESTS:
            for gauge in (self.metrics.drift_p, self.metrics.drift_statistic, self.metrics.drift):
                gauge.labels(test).set(float("nan"))

    def add(
        self, embedding: np.ndarray | None, probability: float, stats: Mapping[str, float | None]
    ) -> None:
        detector = self.detector
        if detector is None or not detector.add(embedding, probability, stats):
            return
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._check(detector))

    async def _check(self, detector: DriftDetector) -> None:
        try:
            result = await anyio.to_thread.run_sync(detector.check)
        except Exception as exc:  # a check must never take the service down
            event("drift_check_failed", logging.ERROR, error=f"{type(exc).__name__}: {exc}")
            return
        if detector is not self.detector:  # the model was swapped meanwhile
            return
        self.last = result
        self.metrics.drift_checks.inc()
        for r in result.results:
            self.metrics.drift_p.labels(r.name).set(r.p_value)
            self.metrics.drift_statistic.labels(r.name).set(r.statistic)
            self.metrics.drift.labels(r.name).set(float(r.drifted(result.alpha)))
        if result.drifted:
            event(
                "drift_detected", logging.WARNING, tests=result.drifted, images=result.images,
                p_values={r.name: round(r.p_value, 5) for r in result.results},
            )  # fmt: skip

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            await asyncio.wait([self._task])
