"""The FastAPI application: create_app() wires state, batcher, poller, routes and errors."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException

from pneumo import __version__
from pneumo.monitoring.records import RecordStore
from pneumo.render.html import render
from pneumo.serving.api_errors import ApiError, error_body
from pneumo.serving.batching import MicroBatcher
from pneumo.serving.feedback import router as feedback_router
from pneumo.serving.logs import event
from pneumo.serving.middleware import Limits, RequestMiddleware
from pneumo.serving.model import LoadedModel
from pneumo.serving.prometheus import Metrics
from pneumo.serving.recorder import keep_writing
from pneumo.serving.routes import router
from pneumo.serving.source import ModelSource
from pneumo.serving.state import ServiceState
from pneumo.serving.v2_routes import router as v2_router
from pneumo.settings import ServeSettings

DOCS_ASSETS = "/docs-assets"


FEEDBACK_SHAPE = (
    '(send JSON {"labels": [{"request_id": "<X-Request-ID of the prediction>", "index": 0, '
    '"label": 0 or 1}]}, 1 to 1000 labels)'
)


def _validation_message(exc: RequestValidationError, path: str) -> str:
    """Where the request is wrong, in our words (pydantic's messages name internal types)."""
    json_body = path == "/v1/feedback"
    parts = []
    for err in exc.errors():
        loc = [x for x in err.get("loc", ()) if x != "body"]
        where = "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in loc).lstrip(".")
        what = "missing" if err.get("type") == "missing" else (
            "not valid here" if json_body else "not a file upload"
        )  # fmt: skip
        parts.append(f"{where or 'request'}: {what}")
    hint = FEEDBACK_SHAPE if json_body else "(send multipart/form-data with a 'file' field)"
    return "; ".join(dict.fromkeys(parts)) + " " + hint


def _local_docs(app: FastAPI) -> None:
    """/docs with Swagger UI's files from the swagger-ui-bundle package: no CDN, works offline."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title="pneumo API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )  # fmt: skip


def create_app(
    cfg: ServeSettings, source: ModelSource, model: LoadedModel,
    stores: tuple[RecordStore, RecordStore] | None = None,
) -> FastAPI:  # fmt: skip
    """An app serving ``model`` (already loaded and verified) and polling ``source``; each
    scored image recorded, and each delayed label kept, in ``stores`` (records, labels;
    written in segments by background tasks)."""
    metrics = Metrics()
    records, labels = stores if stores else (None, None)
    state = ServiceState(cfg, source, model, metrics, records, labels)
    # Keep accepted uploads in memory (Starlette spools parts above 1 MB to temporary files):
    # radiographs may carry patient data and should not touch the disk at all.
    from starlette.formparsers import MultiPartParser

    MultiPartParser.spool_max_size = max(MultiPartParser.spool_max_size, cfg.body_limit_bytes(1))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        batcher: MicroBatcher = app.state.batcher
        batcher.start()
        poller = asyncio.create_task(state.poll()) if cfg.poll_seconds > 0 else None
        writers = [asyncio.create_task(keep_writing(s, metrics)) for s in stores or ()]
        event("service_started", model=model.name, version=model.version, keys=len(cfg.keys) > 0)
        try:
            yield
        finally:
            state.ready = False
            if poller is not None:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller
            await batcher.stop()
            await state.watch.stop()
            for writer in writers:  # what is still buffered is written first
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writer
            for store in stores or ():
                store.close()
            state.heavy.shutdown()
            event("service_stopped")

    app = FastAPI(
        title="pneumo",
        version=__version__,
        description="Pneumonia on chest X-rays: probability, decision at a validated threshold.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if cfg.serve_docs else None,
    )
    if cfg.serve_docs:
        _local_docs(app)
    app.state.service = state
    app.state.batcher = MicroBatcher(cfg.max_batch, cfg.max_wait_ms / 1000, metrics.observe_batch)
    app.state.page = render("service.html.j2")  # the web page at /, rendered once
    app.include_router(router)
    app.include_router(v2_router)
    app.include_router(feedback_router)

    def body_limit(path: str) -> int:
        if path.startswith("/v2/") and path.endswith("/infer"):
            return cfg.infer_body_limit_bytes()
        return cfg.body_limit_bytes(cfg.max_files if path.endswith("/batch") else 1)

    limits = Limits(body_limit, cfg.keys, cfg.body_idle_s, cfg.body_timeout_s, cfg.max_in_flight)
    app.add_middleware(RequestMiddleware, metrics=metrics, limits=limits)

    _answer_errors(app)
    return app


def _answer_errors(app: FastAPI) -> None:
    """Every error as JSON: ``/v1``'s ``{error, detail}``, ``/v2``'s ``{error}``."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        request.state.log = {"error": exc.code}
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        body = error_body(request.url.path, exc.code, exc.detail)
        return JSONResponse(body, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        request.state.log = {"error": "invalid_request"}
        body = error_body(
            request.url.path, "invalid_request", _validation_message(exc, request.url.path)
        )
        return JSONResponse(body, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}.get(
            exc.status_code, "http_error"
        )
        return JSONResponse(
            error_body(request.url.path, code, str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )
