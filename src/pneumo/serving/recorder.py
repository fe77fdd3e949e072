"""The service's side of the prediction records: one per scored image, written off the loop.

See :mod:`pneumo.monitoring.records` for what a record holds and how segments are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import anyio
import numpy as np

from pneumo.data.decode.image import Decoded
from pneumo.monitoring.records import Record, RecordStore
from pneumo.serving.job import Job
from pneumo.serving.logs import event
from pneumo.serving.model import LoadedModel, Score
from pneumo.serving.prometheus import Metrics


def projected(model: LoadedModel, score: Score) -> np.ndarray | None:
    """The image's embedding on the model's drift reference (None without one)."""
    drift = model.reference.drift if model.reference is not None else None
    if drift is None or score.embedding is None:
        return None
    out: np.ndarray = drift.projection(score.embedding[None])[0]
    return out


def input_stats(pixels: np.ndarray, facts: Decoded | None) -> dict[str, float | None]:
    """The statistics the drift reference holds, for one decoded image."""
    return {
        "mean_intensity": float(pixels.mean()), "std_intensity": float(pixels.std()),
        "orig_width": float(facts.orig_width) if facts else None,
        "orig_height": float(facts.orig_height) if facts else None,
    }  # fmt: skip


def record_of(
    model: LoadedModel,
    score: Score,
    embedding: np.ndarray | None,
    stats: dict[str, float | None],
    facts: Decoded | None,
    job: Job,
    refused: bool,
) -> Record:
    """The record of one scored image: no pixels, no names; the embedding projected."""
    width, height = stats["orig_width"], stats["orig_height"]
    return Record(
        time=time.time(), model_version=model.version, request_id=job.request_id,
        index=job.index,
        probability=score.probability, positive=model.decide(score.probability)[1],
        ood_score=score.ood, embedding=None if embedding is None else embedding.tolist(),
        mean_intensity=float(stats["mean_intensity"] or 0.0),
        std_intensity=float(stats["std_intensity"] or 0.0),
        orig_width=None if width is None else int(width),
        orig_height=None if height is None else int(height),
        src_mode=facts.src_mode if facts else None, refused=refused,
    )  # fmt: skip


async def _write(store: RecordStore, metrics: Metrics) -> bool:
    try:
        await anyio.to_thread.run_sync(store.flush)
    except Exception as exc:
        metrics.segments.labels("failed").inc()
        event("records_write_failed", logging.WARNING, folder=store.folder, error=str(exc)[:300])
        return False
    metrics.segments.labels("written").inc()
    return True


async def keep_writing(store: RecordStore, metrics: Metrics, every: float = 1.0) -> None:
    """Write a segment whenever one is due, until cancelled; then write what is left."""
    try:
        while True:
            await asyncio.sleep(every)
            if store.due():
                await _write(store, metrics)
    finally:
        with contextlib.suppress(Exception):
            while store.pending and await asyncio.shield(_write(store, metrics)):
                pass
