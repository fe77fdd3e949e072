"""The Open Inference Protocol v2 (KServe, Triton, MLServer, Seldon) on the same service.

Health, server and model metadata, model readiness and inference, as the KServe/Triton REST
spec defines them; the model is the one ``/v1`` serves (same hot swap), its images scored
through :mod:`pneumo.serving.judge` (same input policy, budget, micro-batches, OOD refusal).
Errors are the protocol's ``{"error": message}`` (see ``app.py``) with ``/v1``'s statuses.
"""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from pneumo import __version__
from pneumo.packaging.signature import INPUT_NAME
from pneumo.serving.api_errors import ApiError
from pneumo.serving.batching import MicroBatcher
from pneumo.serving.job import Job
from pneumo.serving.judge import score_all, score_file, score_pixels
from pneumo.serving.model import LoadedModel
from pneumo.serving.routes import Protected, service
from pneumo.serving.state import ServiceState
from pneumo.serving.v2_codec import HEADER_LENGTH, OUTPUTS, encode_response, parse_request

router = APIRouter(tags=["open inference protocol v2"])
PLATFORM = "onnxruntime_onnx"
MODEL = "/v2/models/{name}"
VERSION = "/v2/models/{name}/versions/{version}"


def _served(state: ServiceState, name: str, version: str | None) -> LoadedModel:
    model = state.model
    if name != model.name:
        raise ApiError(404, "not_found", f"no model '{name}' here: this service serves "
                       f"'{model.name}'")  # fmt: skip
    if version is not None and version != model.version:
        raise ApiError(404, "not_found", f"'{name}' version {version} is not served (version "
                       f"{model.version} is)")  # fmt: skip
    return model


@router.get("/v2")
async def server_metadata(_: Protected) -> dict[str, Any]:
    """The server's name, version and protocol extensions."""
    return {"name": "pneumo", "version": __version__, "extensions": ["binary_tensor_data"]}


@router.get("/v2/health/live")
async def live() -> dict[str, bool]:
    """The process answers."""
    return {"live": True}


@router.get("/v2/health/ready")
async def ready(request: Request) -> Any:
    """A verified model is loaded and warm (503 until then)."""
    is_ready = service(request).ready
    return JSONResponse({"ready": is_ready}, status_code=200 if is_ready else 503)


def _metadata(model: LoadedModel) -> dict[str, Any]:
    size = model.spec.image.size
    return {
        "name": model.name,
        "versions": [model.version],
        "platform": PLATFORM,
        "inputs": [  # one input, two forms: the request's datatype says which
            {
                "name": INPUT_NAME,
                "datatype": "BYTES",
                "shape": [-1],
                "parameters": {"content": "encoded PNG, JPEG or DICOM files, one per element"},
            },
            {
                "name": INPUT_NAME,
                "datatype": "UINT8",
                "shape": [-1, 1, size, size],
                "parameters": {
                    "content": "grayscale pixels at the model's size (model.onnx's input)"
                },
            },
        ],
        "outputs": [{"name": n, "datatype": t, "shape": [-1]} for n, t in OUTPUTS.items()],
    }


@router.get(MODEL)
@router.get(VERSION)
async def model_metadata(
    request: Request, _: Protected, name: str, version: str | None = None
) -> dict[str, Any]:
    """The model's versions, platform, inputs and outputs."""
    return _metadata(_served(service(request), name, version))


@router.get(f"{MODEL}/ready")
@router.get(f"{VERSION}/ready")
async def model_ready(request: Request, _: Protected, name: str, version: str | None = None) -> Any:
    """200 when this model (and version) is served and ready."""
    state = service(request)
    _served(state, name, version)
    return JSONResponse(
        {"name": name, "ready": state.ready}, status_code=200 if state.ready else 503
    )


@router.post(f"{MODEL}/infer")
@router.post(f"{VERSION}/infer")
async def infer(request: Request, _: Protected, name: str, version: str | None = None) -> Response:
    """Probabilities and labels for a batch of images (encoded files or pixels)."""
    state = service(request)
    model = _served(state, name, version)  # read once: this request uses it to the end
    if request.headers.get("content-encoding", "identity").lower() != "identity":
        raise ApiError(415, "unsupported_encoding", "compressed request bodies are not accepted")
    body = await request.body()
    parsed = await anyio.to_thread.run_sync(
        parse_request, body, request.headers.get(HEADER_LENGTH), model.spec.image.size,
        state.cfg.infer_json_limit_bytes(),
    )  # fmt: skip
    if parsed.count == 0:
        raise ApiError(422, "invalid_request", "inputs[0]: no images")
    if parsed.count > state.cfg.max_files:
        raise ApiError(413, "too_many_files", f"{parsed.count} images; at most "
                       f"{state.cfg.max_files} per request")  # fmt: skip
    batcher: MicroBatcher = request.app.state.batcher
    rid = parsed.id or request.state.request_id
    if parsed.files is not None:
        jobs = [
            score_file(state, batcher, f, model, Job(f"image[{i}]", rid, i))
            for i, f in enumerate(parsed.files)
        ]
    else:
        assert parsed.pixels is not None
        jobs = [
            score_pixels(state, batcher, p[None], model, Job(f"image[{i}]", rid, i))
            for i, p in enumerate(parsed.pixels)
        ]
    scores = await score_all(jobs)
    probabilities = [s.probability for s in scores]
    request.state.log = {"model_version": model.version, "images": len(scores), "protocol": "v2"}
    head: dict[str, Any] = {"model_name": model.name, "model_version": model.version}
    if parsed.id is not None:
        head["id"] = parsed.id
    params: dict[str, Any] = {"threshold": model.threshold}
    limit = state.policy.ood_limit(model.reference)
    if limit is not None:
        params["ood_threshold"] = limit
    head["parameters"] = params
    labels = [model.decide(p)[0] for p in probabilities]
    content, json_size = encode_response(head, probabilities, labels, parsed.outputs)
    if json_size is None:
        return Response(content, media_type="application/json")
    return Response(content, media_type="application/octet-stream",
                    headers={"Inference-Header-Content-Length": str(json_size)})  # fmt: skip
