"""One pure-ASGI middleware for every request: id, key check, body-size limit, metrics, log.

Both checks act before a byte of the body is read: a protected route without a valid API key
is answered 401 (see :mod:`pneumo.serving.auth`), and a declared ``Content-Length`` above the
limit 413, at once, and the connection closed. A body that streams past the limit without
declaring it (chunked) is cut off at the limit and answered 413 too (whatever the app would
have said is replaced).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from pneumo.serving.auth import UNAUTHORIZED, is_protected, key_matches
from pneumo.serving.logs import event
from pneumo.serving.prometheus import Metrics

Scope = dict[str, Any]
Message = dict[str, Any]


def _json_response(
    status: int, body: dict[str, Any], request_id: str, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> list[Message]:
    payload = json.dumps(body).encode()
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
    sending, reads our 413 instead of a connection reset."""
    seen = 0
    while seen <= cap:
        message = await receive()
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


class RequestMiddleware:
    def __init__(
        self,
        app: Any,
        metrics: Metrics,
        body_limit: Callable[[str], int],
        keys: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.body_limit = body_limit
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = uuid.uuid4().hex
        limit = self.body_limit(scope["path"])
        state: dict[str, Any] = {"status": 500, "bytes": 0, "too_large": False, "started": False}
        scope.setdefault("state", {})["request_id"] = request_id
        too_large = {
            "error": "too_large",
            "detail": f"request body above the limit of {limit / 1024 / 1024:.0f} MB",
        }
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length")
        try:
            if is_protected(scope["path"]) and not key_matches(
                headers.get(b"authorization", b"").decode("latin-1"), self.keys
            ):
                state["status"] = 401
                scope["state"]["log"] = {"error": "unauthorized"}
                denied = {"error": "unauthorized", "detail": UNAUTHORIZED}
                extra = ((b"www-authenticate", b"Bearer"),)
                for message in _json_response(401, denied, request_id, extra):
                    await send(message)
                return
            if declared is not None and declared.isdigit() and int(declared) > limit:
                state["status"] = 413
                for message in _json_response(413, too_large, request_id):
                    await send(message)
                return

            async def limited_receive() -> Message:
                message: Message = await receive()
                if message["type"] == "http.request":
                    state["bytes"] += len(message.get("body", b""))
                    if state["bytes"] > limit:
                        state["too_large"] = True
                        return {"type": "http.disconnect"}
                return message

            async def tracked_send(message: Message) -> None:
                if state["too_large"]:
                    if not state["started"]:
                        state["started"] = True
                        state["status"] = 413
                        await _drain(receive, 8 * limit)
                        for ours in _json_response(413, too_large, request_id):
                            await send(ours)
                    return
                if message["type"] == "http.response.start":
                    state["started"] = True
                    state["status"] = message["status"]
                    message["headers"] = [
                        *message.get("headers", []),
                        (b"x-request-id", request_id.encode()),
                    ]
                await send(message)

            try:
                await self.app(scope, limited_receive, tracked_send)
            except Exception:
                if state["too_large"] and not state["started"]:
                    await tracked_send({"type": "http.response.start", "status": 413})
                    return
                raise
        finally:
            self._record(scope, state, request_id, time.perf_counter() - start)

    def _record(self, scope: Scope, state: dict[str, Any], request_id: str, seconds: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        status = str(state["status"])
        method = scope.get("method", "")
        self.metrics.requests.labels(method, template, status).inc()
        self.metrics.latency.labels(method, template, status).observe(seconds)
        extra = scope.get("state", {}).get("log", {})
        event(
            "request", request_id=request_id, method=method, route=template, status=int(status),
            latency_ms=round(seconds * 1000, 2), bytes_in=state["bytes"], **extra,
        )  # fmt: skip
