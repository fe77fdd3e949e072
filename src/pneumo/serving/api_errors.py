"""The one error a route raises, and the body it is answered with on each protocol."""

from __future__ import annotations

V2_PREFIX = "/v2"


class ApiError(Exception):
    """Answered with ``status`` and :func:`error_body`."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


def error_body(path: str, code: str, detail: str) -> dict[str, str]:
    """``{"error": code, "detail": detail}`` on ``/v1`` and the rest; the Open Inference
    Protocol's ``{"error": message}`` on ``/v2`` (its clients show that message)."""
    if path == V2_PREFIX or path.startswith(f"{V2_PREFIX}/"):
        return {"error": detail}
    return {"error": code, "detail": detail}
