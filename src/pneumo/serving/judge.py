"""Scoring one image for any route: the decode budget and lanes, the batcher, the OOD refusal.

``/v1`` (multipart uploads) and ``/v2`` (Open Inference Protocol tensors) both score through
here, so an image is judged the same way whichever protocol carried it, and shares the
micro-batches and the hot-swapped model with every other request.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any, TypeVar

import anyio
import numpy as np

from pneumo.data.decode.image import Decoded
from pneumo.serving.api_errors import ApiError
from pneumo.serving.batching import MicroBatcher
from pneumo.serving.budget import DecodeBudget
from pneumo.serving.explanation import explanation, require_maps
from pneumo.serving.inputs import decode_upload, inspect_upload
from pneumo.serving.job import Job
from pneumo.serving.model import LoadedModel, Score
from pneumo.serving.recorder import input_stats, projected, record_of
from pneumo.serving.schemas import Explanation
from pneumo.serving.state import ServiceState

T = TypeVar("T")


def too_large(state: ServiceState, label: str) -> ApiError:
    return ApiError(
        413, "too_large", f"{label}: file above the limit of {state.cfg.max_upload_mb:g} MB"
    )


async def _counted(state: ServiceState, work: Coroutine[Any, Any, T]) -> T:
    """``work``'s score; a refusal by the input policy is counted by reason."""
    try:
        return await work
    except ApiError as exc:
        if exc.status in (415, 422):
            state.metrics.refused.labels(exc.code).inc()
        raise


async def _slow_lane(state: ServiceState, job: Callable[[], Decoded]) -> Decoded:
    future = asyncio.wrap_future(state.heavy.submit(job))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:  # the client left: the decode keeps its budget until done
        await asyncio.wait([future])
        raise


async def decoded(state: ServiceState, data: bytes, model: LoadedModel, label: str) -> Decoded:
    """An encoded file (PNG, JPEG, DICOM) decoded to the model's size, under the input policy,
    inside the decode budget (big decodes in the slow lane, serving/heavy.py)."""
    if len(data) > state.cfg.max_upload_bytes:
        raise too_large(state, label)
    budget: DecodeBudget = state.budget
    policy, pixels = state.policy, state.cfg.max_image_pixels
    need = await anyio.to_thread.run_sync(
        inspect_upload, data, policy, model.spec, budget.capacity, pixels, label
    )
    job = functools.partial(decode_upload, data, model.spec, label, policy, pixels)
    async with budget.reserve(need):
        if need > state.cfg.heavy_decode_mb * 2**20:
            return await _slow_lane(state, job)
        return await anyio.to_thread.run_sync(job)


async def _judged(
    state: ServiceState, batcher: MicroBatcher, pixels: np.ndarray, model: LoadedModel, job: Job,
    facts: Decoded | None = None,
) -> Score:  # fmt: skip
    score = await batcher.submit(pixels, model, job.explain)
    policy = state.policy
    if score.ood is not None:
        state.metrics.ood.observe(score.ood)
    limit = policy.ood_limit(model.reference)
    embedding, stats = projected(model, score), input_stats(pixels, facts)
    state.watch.add(embedding, score.probability, stats)
    refused = score.ood is not None and limit is not None and score.ood > limit
    if not refused and job.request_id:  # answered: a label may come back for it
        state.book.predicted((job.request_id, job.index), model.version, score.probability)
    if state.records is not None:
        record = record_of(model, score, embedding, stats, facts, job, refused)
        kept = state.records.add(record)
        state.metrics.records.labels("kept" if kept else "dropped").inc()
    policy.check_ood(score.ood, limit, job.label)
    state.metrics.scores.observe(score.probability)
    state.metrics.predictions.labels(model.decide(score.probability)[0]).inc()
    return score


async def _from_file(
    state: ServiceState, batcher: MicroBatcher, data: bytes, model: LoadedModel, job: Job
) -> Score:
    with batcher.preparing():
        facts = await decoded(state, data, model, job.label)
    return await _judged(state, batcher, facts.pixels[None], model, job, facts)


async def _explained(
    state: ServiceState, batcher: MicroBatcher, data: bytes, model: LoadedModel, job: Job,
    drawn: bool,
) -> tuple[Score, Explanation]:  # fmt: skip
    with batcher.preparing():
        facts = await decoded(state, data, model, job.label)
    score = await _judged(state, batcher, facts.pixels[None], model, job, facts)
    assert score.cam is not None  # asked for: the batch computed it
    if not drawn:  # the grid alone: microseconds, no thread
        return score, explanation(score.cam, facts.pixels, drawn=False)
    body = await anyio.to_thread.run_sync(explanation, score.cam, facts.pixels)
    return score, body


def explain_file(
    state: ServiceState, batcher: MicroBatcher, data: bytes, model: LoadedModel, job: Job,
    drawn: bool = True,
) -> Coroutine[Any, Any, tuple[Score, Explanation]]:  # fmt: skip
    """Score an encoded file with its activation map (the overlay, when ``drawn``, drawn in a
    worker thread)."""
    require_maps(model)
    explained = _explained(state, batcher, data, model, replace(job, explain=True), drawn)
    return _counted(state, explained)


def score_file(
    state: ServiceState, batcher: MicroBatcher, data: bytes, model: LoadedModel, job: Job
) -> Coroutine[Any, Any, Score]:
    """Score an encoded file; errors name it by ``job.label``."""
    return _counted(state, _from_file(state, batcher, data, model, job))


def score_pixels(
    state: ServiceState, batcher: MicroBatcher, pixels: np.ndarray, model: LoadedModel, job: Job
) -> Coroutine[Any, Any, Score]:
    """Score uint8 pixels (1, S, S) already at the model's size (model.onnx's input, one image)."""
    return _counted(state, _judged(state, batcher, pixels, model, job))


async def score_all(jobs: list[Coroutine[Any, Any, Score]]) -> list[Score]:
    """Every job's score, scored concurrently (they share micro-batches). Any failure fails the
    whole: one error naming every bad image in the order sent, with the first one's status."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        results = await asyncio.gather(*tasks, return_exceptions=True)
    except BaseException:
        for task in tasks:
            task.cancel()
        raise
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        unexpected = [f for f in failures if not isinstance(f, ApiError)]
        if unexpected:
            raise unexpected[0]
        refusals = [f for f in failures if isinstance(f, ApiError)]
        detail = "; ".join(f.detail for f in refusals)
        raise ApiError(refusals[0].status, refusals[0].code, detail)
    return [r for r in results if isinstance(r, Score)]
