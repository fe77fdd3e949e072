"""The HTTP routes. Handlers are thin: decode in a thread, infer through the batcher."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response

from pneumo.packaging.card_fields import public_fields
from pneumo.reports.modelcard_page import render_html
from pneumo.serving.auth import UNAUTHORIZED, key_matches
from pneumo.serving.batching import MicroBatcher
from pneumo.serving.inputs import ApiError
from pneumo.serving.job import Job
from pneumo.serving.judge import explain_file, score_all, score_file, too_large
from pneumo.serving.model import LoadedModel, Score
from pneumo.serving.schemas import (
    BatchItem,
    BatchPrediction,
    ErrorBody,
    Explained,
    Health,
    ModelInfo,
    ModelRef,
    Monitoring,
    Prediction,
)
from pneumo.serving.state import ServiceState

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 413, 415, 422)
}
EXPLAIN_ERRORS: dict[int | str, dict[str, Any]] = {**ERRORS, 409: {"model": ErrorBody}}

router = APIRouter()


def service(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


def require_key(request: Request) -> None:
    keys: tuple[str, ...] = request.app.state.service.cfg.keys
    if not key_matches(request.headers.get("authorization", ""), keys):
        raise ApiError(401, "unauthorized", UNAUTHORIZED)


Protected = Annotated[None, Depends(require_key)]


async def _read(
    state: ServiceState, batcher: MicroBatcher, upload: UploadFile, label: str
) -> bytes:
    if upload.size is not None and upload.size > state.cfg.max_upload_bytes:
        raise too_large(state, label)
    with batcher.preparing():
        return await upload.read()


async def _score(
    state: ServiceState, batcher: MicroBatcher, upload: UploadFile, model: LoadedModel, job: Job
) -> Score:
    data = await _read(state, batcher, upload, job.label)
    return await score_file(state, batcher, data, model, job)


@router.post(
    "/v1/predict", response_model=Explained | Prediction, responses=ERRORS, tags=["predict"]
)
async def predict(
    request: Request, _: Protected, file: UploadFile = File(...), explain: bool = False,
    overlay: bool = True,
) -> Explained | Prediction:  # fmt: skip
    """Probability of pneumonia for one chest radiograph (PNG, JPEG or DICOM); with
    ``explain=true``, also where the model looked (as ``/v1/explain``)."""
    if explain:
        return await explain_image(request, _, file, overlay)
    start = time.perf_counter()
    state = service(request)
    await _one_file(request)
    model = state.model  # read once: this request uses this model to the end
    job = Job("file", request.state.request_id)
    score = await _score(state, request.app.state.batcher, file, model, job)
    return _prediction(request, model, score, start)


@router.post("/v1/explain", response_model=Explained, responses=EXPLAIN_ERRORS, tags=["predict"])
async def explain_image(
    request: Request, _: Protected, file: UploadFile = File(...), overlay: bool = True
) -> Explained:
    """The prediction plus its activation map (Grad-CAM, exact for the model's head): a grid
    of numbers and a PNG overlay, base64 in the body (``overlay=false``: the grid alone, for
    a client that draws its own). 409 for a version registered without maps."""
    start = time.perf_counter()
    state = service(request)
    await _one_file(request)
    model = state.model
    job = Job("file", request.state.request_id)
    batcher: MicroBatcher = request.app.state.batcher
    data = await _read(state, batcher, file, job.label)
    score, body = await explain_file(state, batcher, data, model, job, drawn=overlay)
    answer = _prediction(request, model, score, start)
    return Explained(**answer.model_dump(), explanation=body)


async def _one_file(request: Request) -> None:
    if len((await request.form()).getlist("file")) > 1:  # the form is parsed once, cached
        raise ApiError(
            422, "invalid_request", "several 'file' parts: send one, or use /v1/predict/batch"
        )


def _prediction(request: Request, model: LoadedModel, score: Score, start: float) -> Prediction:
    label, positive = model.decide(score.probability)
    request.state.log = {"model_version": model.version, "images": 1}
    return Prediction(
        probability=score.probability, label=label, positive=positive, threshold=model.threshold,
        model=ModelRef(**model.ident), latency_ms=round((time.perf_counter() - start) * 1000, 2),
        ood_score=score.ood, ood_threshold=service(request).policy.ood_limit(model.reference),
    )  # fmt: skip


@router.post(
    "/v1/predict/batch", response_model=BatchPrediction, responses=ERRORS, tags=["predict"]
)
async def predict_batch(
    request: Request, _: Protected, files: list[UploadFile] = File(...)
) -> BatchPrediction:
    """Several radiographs in one request; any bad file fails the request, naming it."""
    start = time.perf_counter()
    state = service(request)
    if len(files) > state.cfg.max_files:
        raise ApiError(
            413, "too_many_files", f"{len(files)} files; at most {state.cfg.max_files} per request"
        )
    model = state.model
    batcher: MicroBatcher = request.app.state.batcher
    scores = await score_all(
        [
            _score(state, batcher, f, model, Job(f"files[{i}]", request.state.request_id, i))
            for i, f in enumerate(files)
        ]
    )
    decisions = [model.decide(s.probability) for s in scores]
    items = [
        BatchItem(
            index=i, probability=s.probability, label=label, positive=positive, ood_score=s.ood
        )
        for i, (s, (label, positive)) in enumerate(zip(scores, decisions, strict=True))
    ]
    request.state.log = {"model_version": model.version, "images": len(items)}
    return BatchPrediction(
        predictions=items, threshold=model.threshold, model=ModelRef(**model.ident),
        latency_ms=round((time.perf_counter() - start) * 1000, 2),
        ood_threshold=state.policy.ood_limit(model.reference),
    )  # fmt: skip


@router.get("/v1/model", response_model=ModelInfo, responses=ERRORS, tags=["model"])
async def model_card(request: Request, _: Protected) -> ModelInfo:
    """The served model's card: preprocessing, threshold, metrics with intervals, data, limits."""
    model = service(request).model
    card = public_fields(model.card.to_dict())  # cards registered before paths were cut
    return ModelInfo(
        name=model.name, version=model.version, card=card, monitoring=_monitoring(model)
    )


def _monitoring(model: LoadedModel) -> Monitoring:
    drift = model.reference.drift if model.reference is not None else None
    if drift is None:
        return Monitoring(
            drift_detection=False,
            detail="registered before drift references: no drift detection for this version "
            "(register the model again to get one)",
        )
    return Monitoring(
        drift_detection=True,
        detail=f"drift reference: {len(drift.scores)} validation images, "
        f"{drift.projection.components.shape[0]} embedding components",
    )


@router.get("/v1/model/card", response_class=HTMLResponse, tags=["model"])
async def model_card_page(request: Request, _: Protected) -> HTMLResponse:
    """The model card as a readable page."""
    model = service(request).model
    return HTMLResponse(render_html(public_fields(model.card.to_dict()), model.version))


@router.get("/auth", status_code=204, responses={401: ERRORS[401]}, tags=["health"])
async def auth(_: Protected) -> Response:
    """204 when the request carries a valid key (or no keys are set), else 401: for a reverse
    proxy to check a request's key before it reads the body (deploy/nginx)."""
    return Response(status_code=204)


@router.get("/healthz", response_model=Health, tags=["health"])
async def healthz() -> Health:
    """Alive (the process answers)."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}}, tags=["health"])
async def readyz(request: Request) -> Any:
    """Ready: a verified model is loaded and warm."""
    state = service(request)
    if not state.ready:
        return JSONResponse({"status": "not ready"}, status_code=503)
    return Health(status="ready", model=ModelRef(**state.model.ident))


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    body = service(request).metrics.render()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page(request: Request) -> HTMLResponse:
    return HTMLResponse(request.app.state.page)
