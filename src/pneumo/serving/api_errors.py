"""The one error a route raises: answered as ``{"error": code, "detail": detail}``."""

from __future__ import annotations


class ApiError(Exception):
    """Answered as ``{"error": code, "detail": detail}`` with ``status``."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
