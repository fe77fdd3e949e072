"""Slow and lying clients on raw sockets (127.0.0.1): each is answered or closed within the
service's limits, while a normal client keeps being served quickly meanwhile."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.serving_support import Registered, post, running_service

pytestmark = pytest.mark.slow

LIMITS = {"header_timeout_s": "2", "body_idle_s": "2", "body_timeout_s": "4", "keepalive_s": "2"}
SLACK = 1.5  # seconds beyond a limit for the close to reach the client


def _connect(url: str) -> socket.socket:
    where = urlsplit(url)
    return socket.create_connection((where.hostname, where.port), timeout=15)


def _until_answered_or_closed(
    sock: socket.socket, feed: list[bytes], gap: float
) -> tuple[str, float]:
    """Send ``feed`` a piece every ``gap`` seconds (as long as the server lets us), then wait:
    the status line the server sent ("" if it just closed) and the seconds that took."""
    start = time.monotonic()
    sock.settimeout(gap)
    answer = b""
    pieces = iter(feed)
    while True:
        piece = next(pieces, None)
        if piece is not None:
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            if time.monotonic() - start > 30:
                raise AssertionError("never answered nor closed") from None
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        answer += chunk
        if b"\r\n\r\n" in answer:
            break
    return answer.decode("latin-1").split("\r\n", 1)[0], time.monotonic() - start


def test_slow_lying_and_idle_clients_are_cut_off_within_the_limits(
    registered: Registered, tmp_path: Path
) -> None:
    good = Path(sorted(registered.test_images)[0]).read_bytes()
    with running_service(registered.env, tmp_path / "cwd", poll_seconds="0", **LIMITS) as svc:
        where = urlsplit(svc.url).netloc
        head = f"POST /v1/predict HTTP/1.1\r\nHost: {where}\r\n"
        form = "Content-Type: multipart/form-data; boundary=xyz\r\n"
        part = (
            b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
            b"Content-Type: image/png\r\n\r\n"
        )
        latencies: list[float] = []
        stop = threading.Event()

        def normal_client() -> None:
            while not stop.is_set():
                t0 = time.monotonic()
                assert post(svc.url, good).status_code == 200
                latencies.append(time.monotonic() - t0)
                time.sleep(0.2)

        worker = threading.Thread(target=normal_client)
        worker.start()
        cases = {
            # a new connection that never sends anything
            "idle": ([], 1.0, 2),
            # headers a byte every 0.5 s (slowloris): never complete within 2 s
            "slow headers": ([bytes([b]) for b in head.encode()], 0.5, 2),
            # a Content-Length of 10,000 and 100 bytes sent: the body stalls
            "lying length": (
                [(head + form + "Content-Length: 10000\r\n\r\n").encode(), part + b"x" * 100],
                0.5,
                2,
            ),
            # a chunked body trickled 1 KB every 0.5 s: never idle, but too slow in all
            "trickle": (
                [(head + form + "Transfer-Encoding: chunked\r\n\r\n").encode()]
                + [f"{len(part):x}\r\n".encode() + part + b"\r\n"]
                + [b"400\r\n" + b"x" * 1024 + b"\r\n"] * 40,
                0.5,
                4,
            ),
        }
        results = {}
        try:
            for name, (feed, gap, limit) in cases.items():
                with _connect(svc.url) as sock:
                    status, seconds = _until_answered_or_closed(sock, feed, gap)
                results[name] = (status, seconds)
                assert seconds <= limit + SLACK, (name, status, seconds)
                assert status in ("", "HTTP/1.1 408 Request Timeout"), (name, status)
        finally:
            stop.set()
            worker.join()
        assert results["lying length"][0] == "HTTP/1.1 408 Request Timeout"
        assert results["trickle"][0] == "HTTP/1.1 408 Request Timeout"
        assert results["slow headers"][0] == "HTTP/1.1 408 Request Timeout"
        assert latencies and max(latencies) < 2.0, latencies
        assert 'status="500"' not in svc.metrics()
