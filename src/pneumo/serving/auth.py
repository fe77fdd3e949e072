"""API keys: one constant-time check, made before a protected request's body is read.

The middleware checks the ``Authorization`` header of every protected route as soon as the
request line and headers have arrived, and answers 401 without reading a byte of the body: an
unauthenticated client cannot make the service receive, buffer or parse an upload. The routes'
dependency repeats the check (defence in depth, and the OpenAPI schema shows which routes need it).
"""

from __future__ import annotations

import hmac

# Routes that need a key when keys are set; the health probes (/healthz, /readyz and the
# protocol's /v2/health/*), metrics and the page do not.
PROTECTED_PREFIXES = ("/v1/", "/v2/")
UNAUTHORIZED = "a valid API key is required: Authorization: Bearer <key>"


def is_protected(path: str) -> bool:
    if path.startswith("/v2/health/"):
        return False
    return path == "/v2" or path.startswith(PROTECTED_PREFIXES)


def key_matches(header: str, keys: tuple[str, ...]) -> bool:
    """``header`` (an Authorization value) carries one of ``keys``; every key is compared, each
    in constant time, so the answer's timing says nothing about which key came close."""
    if not keys:
        return True
    scheme, _, token = header.partition(" ")
    supplied = token.strip().encode() if scheme.lower() == "bearer" else b""
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(supplied, key.encode())
    return bool(supplied) and matched
