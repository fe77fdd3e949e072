"""What the running service holds: the current model, and the poller that hot-swaps it.

The current model is one reference, replaced in a single assignment once a new version has
been downloaded, loaded and verified off the event loop. Requests read it once when they start
and keep that model to the end, so a swap never fails or mixes an in-flight request. A version
that fails to load or verify is refused and remembered; the old model keeps serving, and the
version is not retried until the alias moves to another one.
"""

from __future__ import annotations

import asyncio
import logging
import time

import anyio

from pneumo.errors import PneumoError
from pneumo.input_settings import InputSettings
from pneumo.monitor_settings import MonitorSettings
from pneumo.monitoring.ground_truth import LabelBook
from pneumo.monitoring.records import RecordStore
from pneumo.serving.budget import DecodeBudget
from pneumo.serving.drift_watch import DriftWatch
from pneumo.serving.heavy import HeavyLane
from pneumo.serving.logs import event
from pneumo.serving.model import LoadedModel, load_model
from pneumo.serving.policy import InputPolicy
from pneumo.serving.prometheus import Metrics
from pneumo.serving.source import ModelSource
from pneumo.settings import ServeSettings


def load_version(source: ModelSource, version: str, cfg: ServeSettings) -> LoadedModel:
    folder = source.fetch(version)
    return load_model(
        folder, source.name, version, threads=cfg.ort_threads, warm=cfg.max_batch,
        spin=cfg.ort_spin,
    )  # fmt: skip


def load_current(source: ModelSource, cfg: ServeSettings) -> LoadedModel:
    """Resolve, download, verify and load what the source points at now (at start-up)."""
    start = time.perf_counter()
    version = source.current()
    model = load_version(source, version, cfg)
    event(
        "model_loaded", model=source.name, version=version, source=source.description,
        seconds=round(time.perf_counter() - start, 3),
    )  # fmt: skip
    return model


class ServiceState:
    def __init__(
        self,
        cfg: ServeSettings,
        source: ModelSource,
        model: LoadedModel,
        metrics: Metrics,
        records: RecordStore | None = None,
        labels: RecordStore | None = None,
    ) -> None:
        self.cfg = cfg
        self.records = records  # None: no prediction records kept
        self.labels = labels  # where delayed labels are kept (beside the records)
        self.book = LabelBook()
        self.source = source
        self.model = model
        self.metrics = metrics
        self.budget = DecodeBudget(cfg.decode_budget_bytes)
        self.policy = InputPolicy.from_settings(InputSettings())
        self.heavy = HeavyLane(cfg.heavy_decode_share)
        self.refused: set[str] = set()
        self.watch = DriftWatch(metrics, MonitorSettings())
        self.watch.use(model)
        self.ready = True
        metrics.serving(model.name, model.version)

    async def check_once(self) -> None:
        """Swap to the version the source points at, if it changed and loads cleanly."""
        try:
            version = await anyio.to_thread.run_sync(self.source.current)
        except Exception as exc:
            event("model_source_unreachable", logging.WARNING, error=_reason(exc))
            return
        if version == self.model.version or version in self.refused:
            return
        try:
            new = await anyio.to_thread.run_sync(load_version, self.source, version, self.cfg)
        except Exception as exc:
            self.refused.add(version)
            self.metrics.load_failures.inc()
            event(
                "model_refused", logging.ERROR, version=version, serving=self.model.version,
                error=_reason(exc),
            )  # fmt: skip
            return
        old, self.model = self.model, new
        self.watch.use(new)
        self.metrics.swaps.inc()
        self.metrics.serving(new.name, new.version)
        event("model_swapped", previous=old.version, version=new.version)

    async def poll(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.poll_seconds)
            await self.check_once()


def _reason(exc: BaseException) -> str:
    text = exc.message if isinstance(exc, PneumoError) else f"{type(exc).__name__}: {exc}"
    return text.splitlines()[0] if text else type(exc).__name__
