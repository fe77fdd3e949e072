"""Time limits at the edge that Uvicorn does not have: a deadline for a request's headers.

Uvicorn times out an idle keep-alive connection, but not a new connection that sends nothing,
nor one that sends its headers a byte at a time (slowloris): each would hold a connection
forever. :func:`guarded_protocol` is Uvicorn's h11 protocol with a header deadline armed when a
connection opens and again after each response; a request whose headers are not complete in
time is answered 408 and its connection closed. The body's limits (idle gap, whole-body time)
are the middleware's (:mod:`pneumo.serving.middleware`), which sees the ASGI receive calls.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

_BODY = b'{"error": "timeout", "detail": "the request headers did not arrive in time"}'
TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    + f"content-length: {len(_BODY)}\r\nconnection: close\r\n\r\n".encode()
    + _BODY
)


def guarded_protocol(header_timeout: float) -> type[H11Protocol]:
    """Uvicorn's h11 protocol with a ``header_timeout`` seconds deadline on request headers."""

    class HeaderDeadlineProtocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            cycle = self.cycle
            super().data_received(data)
            if self.cycle is not cycle:  # a new request's headers are complete
                self._disarm()

        def on_response_complete(self) -> None:
            cycle = self.cycle
            super().on_response_complete()
            if self.cycle is cycle:  # no pipelined request started: the next one's deadline
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(header_timeout, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expired(self) -> None:
            self._deadline = None
            if self.transport.is_closing():
                return
            if self.cycle is None or self.cycle.response_complete:
                self.transport.write(TIMEOUT_RESPONSE)
            self.transport.close()

    return HeaderDeadlineProtocol
