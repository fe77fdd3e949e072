"""One pure-ASGI middleware for every request: id, key check, limits, metrics, JSON log line.

What it refuses, it refuses before a byte of the body is read: a protected route without a
valid API key (401, see :mod:`pneumo.serving.auth`), more requests in flight than allowed (503
with ``Retry-After``), a declared ``Content-Length`` above the limit (413); each answered at
once and the connection closed. While the body arrives it is counted and timed: a body that
streams past the limit (chunked) is cut off with a 413, one that pauses longer than the idle
limit or takes longer than the body limit altogether gets a 408 (whatever the app would have
said is replaced). Header deadlines are the protocol's (:mod:`pneumo.serving.edge`).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pneumo.serving.api_errors import error_body
from pneumo.serving.auth import UNAUTHORIZED, is_protected, key_matches
from pneumo.serving.logs import event
from pneumo.serving.prometheus import Metrics

# A caller's X-Request-ID is kept when it is one of these (a UUID, a trace id, nginx's
# $request_id); anything else, or none, is replaced by a fresh one.
CALLER_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

Scope = dict[str, Any]
Message = dict[str, Any]
Refusal = tuple[int, dict[str, str], tuple[tuple[bytes, bytes], ...]]


@dataclass(frozen=True)
class Limits:
    body_limit: Callable[[str], int]  # bytes, by path
    keys: tuple[str, ...] = ()
    body_idle_s: float = 10.0  # longest pause between two pieces of a body
    body_timeout_s: float = 60.0  # longest a whole body may take
    max_in_flight: int = 64  # requests on the protected routes at once


def _json_response(status: int, refusal: Refusal, request_id: str, path: str) -> list[Message]:
    _status, body, extra = refusal
    payload = json.dumps(error_body(path, body["error"], body["detail"])).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"x-request-id", request_id.encode()),
        (b"connection", b"close"),
        *extra,
    ]
    return [
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": payload},
    ]


async def _drain(receive: Any, cap: int) -> None:
    """Read and discard the rest of a refused body (up to ``cap`` bytes), so the client, still
    sending, reads our answer instead of a connection reset."""
    seen = 0
    while seen <= cap:
        message = await receive()
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


class RequestMiddleware:
    def __init__(self, app: Any, metrics: Metrics, limits: Limits) -> None:
        self.app = app
        self.metrics = metrics
        self.limits = limits
        self.in_flight = 0

    def _refusal_before_body(self, scope: Scope, limit: int) -> Refusal | None:
        headers = dict(scope.get("headers", []))
        if not is_protected(scope["path"]):
            return None
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        if not key_matches(authorization, self.limits.keys):
            body = {"error": "unauthorized", "detail": UNAUTHORIZED}
            return 401, body, ((b"www-authenticate", b"Bearer"),)
        if self.in_flight >= self.limits.max_in_flight:
            body = {"error": "busy", "detail": "too many requests in flight; retry in a second"}
            return 503, body, ((b"retry-after", b"1"),)
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return 413, _too_large(limit), ()
        return None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = _request_id(scope)
        limit = self.limits.body_limit(scope["path"])
        state: dict[str, Any] = {"status": 500, "bytes": 0, "refusal": None, "started": False}
        state["route"] = _plain_route(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        try:
            refused = self._refusal_before_body(scope, limit)
            if refused is not None:
                state["status"] = refused[0]
                scope["state"]["log"] = {"error": refused[1]["error"]}
                for message in _json_response(refused[0], refused, request_id, scope["path"]):
                    await send(message)
                return
            self.in_flight += is_protected(scope["path"])
            try:
                await self._guarded(scope, receive, send, state, limit, request_id)
            finally:
                self.in_flight -= is_protected(scope["path"])
        finally:
            self._record(scope, state, request_id, time.perf_counter() - start)

    async def _guarded(
        self, scope: Scope, receive: Any, send: Any, state: dict[str, Any], limit: int, rid: str
    ) -> None:
        """The app, with its body counted and timed, and its answer replaced by a refusal."""
        deadline = time.monotonic() + self.limits.body_timeout_s

        async def limited_receive() -> Message:
            wait = min(self.limits.body_idle_s, deadline - time.monotonic())
            try:
                message: Message = await asyncio.wait_for(receive(), timeout=max(wait, 0.0))
            except TimeoutError:
                state["refusal"] = (408, _timed_out(self.limits), ())
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                state["bytes"] += len(message.get("body", b""))
                if state["bytes"] > limit:
                    state["refusal"] = (413, _too_large(limit), ())
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message: Message) -> None:
            refusal: Refusal | None = state["refusal"]
            if refusal is not None:
                if not state["started"]:
                    state["started"] = True
                    state["status"] = refusal[0]
                    if refusal[0] == 413:
                        await _drain(receive, 8 * limit)
                    for ours in _json_response(refusal[0], refusal, rid, scope["path"]):
                        await send(ours)
                return
            if message["type"] == "http.response.start":
                state["started"] = True
                state["status"] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except Exception:
            if state["refusal"] is not None and not state["started"]:
                await tracked_send({"type": "http.response.start", "status": 500})
                return
            raise

    def _record(self, scope: Scope, state: dict[str, Any], request_id: str, seconds: float) -> None:
        template = getattr(scope.get("route"), "path", None) or state["route"]
        status = str(state["status"])
        method = scope.get("method", "")
        self.metrics.requests.labels(method, template, status).inc()
        self.metrics.latency.labels(method, template, status).observe(seconds)
        extra = scope.get("state", {}).get("log", {})
        event(
            "request", request_id=request_id, method=method, route=template, status=int(status),
            latency_ms=round(seconds * 1000, 2), bytes_in=state["bytes"], **extra,
        )  # fmt: skip


def _request_id(scope: Scope) -> str:
    given = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
    return given if CALLER_ID.fullmatch(given) else uuid.uuid4().hex


def _plain_route(scope: Scope) -> str:
    """The path of the Starlette route or mount ``scope`` matches (/openapi.json, the docs'
    files under /docs-assets), matched before the router rewrites the scope; FastAPI's own
    routes name themselves in ``scope["route"]`` as they run."""
    from starlette.routing import Match

    app = scope.get("app")
    for candidate in getattr(getattr(app, "router", None), "routes", []):
        path = getattr(candidate, "path", None)
        if path and candidate.matches(scope)[0] == Match.FULL:
            return str(path)
    return "unmatched"


def _too_large(limit: int) -> dict[str, str]:
    return {
        "error": "too_large",
        "detail": f"request body above the limit of {limit / 1024 / 1024:.0f} MB",
    }


def _timed_out(limits: Limits) -> dict[str, str]:
    return {
        "error": "timeout",
        "detail": f"the request body did not arrive in time (at most {limits.body_idle_s:g} s "
        f"between two parts, {limits.body_timeout_s:g} s in all)",
    }
