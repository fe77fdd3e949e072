"""The request middleware's refusals, driven through its ASGI interface with a real app."""

from __future__ import annotations

import asyncio
from typing import Any

from pneumo.serving.middleware import Limits, RequestMiddleware
from pneumo.serving.prometheus import Metrics


class SlowApp:
    """Reads the whole body, then waits on ``release`` before answering 200."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.bodies = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        self.bodies += 1
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def _scope(path: str = "/v1/predict", headers: list[tuple[bytes, bytes]] | None = None) -> Any:
    return {"type": "http", "method": "POST", "path": path, "headers": headers or []}


async def _call(
    middleware: RequestMiddleware, scope: Any, chunks: list[bytes], complete: bool = True
) -> list[Any]:
    """The messages the middleware sent for a body of ``chunks`` (``complete=False``: the
    client stops sending after them, mid-body)."""
    sent: list[Any] = []
    queue = [
        {"type": "http.request", "body": c, "more_body": not complete or i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]

    async def receive() -> Any:
        if queue:
            return queue.pop(0)
        await asyncio.sleep(3600)  # the client sends nothing more

    async def send(message: Any) -> None:
        sent.append(message)

    await middleware(scope, receive, send)
    return sent


def _status(sent: list[Any]) -> tuple[int, dict[bytes, bytes]]:
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], dict(start.get("headers", []))


def test_past_the_requests_in_flight_a_503_with_retry_after() -> None:
    async def scenario() -> None:
        app = SlowApp()
        middleware = RequestMiddleware(app, Metrics(), Limits(lambda _: 1000, max_in_flight=1))
        first = asyncio.create_task(_call(middleware, _scope(), [b"a"]))
        await asyncio.sleep(0.05)
        status, headers = _status(await _call(middleware, _scope(), [b"b"]))
        assert status == 503 and headers[b"retry-after"] == b"1"
        assert app.bodies == 1  # the refused request's body was never read
        # health probes are not counted, so they still answer while /v1/ is full
        probe = asyncio.create_task(_call(middleware, _scope("/healthz"), [b""]))
        await asyncio.sleep(0.05)
        app.release.set()
        assert _status(await first)[0] == 200
        assert _status(await probe)[0] == 200
        assert middleware.in_flight == 0

    asyncio.run(scenario())


def test_a_body_that_stalls_gets_a_408() -> None:
    async def scenario() -> None:
        app = SlowApp()
        app.release.set()
        limits = Limits(lambda _: 1000, body_idle_s=0.2, body_timeout_s=5)
        middleware = RequestMiddleware(app, Metrics(), limits)
        # the two pieces arrive, then the client stalls mid-body: cut off after 0.2 s
        sent = await asyncio.wait_for(_call(middleware, _scope(), [b"a", b"b"], False), 3)
        assert _status(sent)[0] == 408
        assert b"did not arrive in time" in sent[-1]["body"]
        # a body that completes is served
        assert _status(await _call(middleware, _scope(), [b"a", b"b"]))[0] == 200

    asyncio.run(scenario())


def test_a_body_past_the_limit_is_cut_off_with_a_413() -> None:
    async def scenario() -> None:
        app = SlowApp()
        app.release.set()
        middleware = RequestMiddleware(app, Metrics(), Limits(lambda _: 10))
        sent = await _call(middleware, _scope(), [b"x" * 8, b"x" * 8, b""])
        assert _status(sent)[0] == 413

    asyncio.run(scenario())
