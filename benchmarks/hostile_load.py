"""Good requests' throughput while 10 % of the uploads are hostile, against a clean run.

    python benchmarks/hostile_load.py [--model FOLDER] [--threads 8] [--duration 15]
        [--repeats 2] [--hostile-share 0.1]

One `pneumo serve` process (default settings, poll off) and, in rounds alternating the two
phases so that a burst of other work hits one round rather than one side:

clean   --threads client threads, each with a persistent connection, post real 1024x1024 NIH
        PNGs for --duration seconds: good requests/s.
mixed   the same good clients, plus hostile uploads started at a rate that makes them
        --hostile-share of all requests at the clean rate (each in its own connection, so
        a slow one never holds a good client back), cycling through: a 36-megapixel RGBA PNG
        (140 KB, ~500 MB to decode: within the limits, the costliest upload there is), a PNG
        claiming 83 million pixels (the BLP fuzz file's claim), a JPEG claiming 60000x60000, a
        body declared 1 MB of which 10 KB are sent before stalling, a body trickled 1 KB per
        0.5 s, a GIF, and noise bytes.

Prints both rates, their ratio (target >= 0.8: the issue's check), the good requests' p50/p99
latency in each phase, what the hostile ones got (status counts) and the service's peak RSS.
Without --model the package is a randomly initialised ResNet-18 at 128 px (speed does not
depend on the weights; no out-of-distribution reference, so every good image is scored).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import socket
import struct
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from bench_support import build_package, cpu_model, image_files, usable_cores
from serve_latency import Client, Service, multipart, pct, running_service

TARGET = 0.8


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def rgba_png(width: int, height: int, rows: int | None = None) -> bytes:
    line = b"\x00" * (1 + 4 * width)
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(line) for _ in range(height if rows is None else rows))
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", idat + packer.flush()) + _png_chunk(b"IEND", b"")
    )  # fmt: skip


def jpeg_claiming(side: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (64, 64), 90).save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = side.to_bytes(2, "big") * 2
    return bytes(data)


def _raw(port: int, head: bytes, send: Callable[[socket.socket], None]) -> int:
    """Send ``head`` then whatever ``send`` does on a raw socket; the status answered (0: none)."""
    with socket.create_connection(("127.0.0.1", port), timeout=90) as sock:
        sock.sendall(head)
        with contextlib.suppress(OSError):
            send(sock)
        with contextlib.suppress(OSError):
            answer = sock.recv(64)
            return int(answer.split()[1]) if answer.startswith(b"HTTP/") else 0
    return 0


PART = (
    b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
    b"Content-Type: image/png\r\n\r\n"
)


def _stall(port: int) -> int:
    head = (
        b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
        b"boundary=b\r\nContent-Length: 1048576\r\n\r\n"
    )
    return _raw(port, head, lambda s: s.sendall(PART + b"\x00" * 10240))


def _trickle(port: int) -> int:
    head = (
        b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
        b"boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n"
    )

    def send(sock: socket.socket) -> None:
        sock.sendall(f"{len(PART):x}\r\n".encode() + PART + b"\r\n")
        for _ in range(200):  # 1 KB each 0.5 s until the service gives up on it
            sock.sendall(b"400\r\n" + b"\x00" * 1024 + b"\r\n")
            time.sleep(0.5)

    return _raw(port, head, send)


def hostile_kinds(port: int) -> list[tuple[str, Callable[[], int]]]:
    def upload(data: bytes) -> Callable[[], int]:
        body = multipart(data)

        def send() -> int:
            client = Client(port)
            try:
                return client.request("POST", "/v1/predict", body[0], body[1])[0]
            finally:
                client.close()

        return send

    gif = io.BytesIO()
    Image.new("L", (64, 64)).save(gif, format="GIF")
    noise = np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes()
    return [
        ("36 MP RGBA PNG", upload(rgba_png(6000, 6000))),
        ("PNG claiming 83 M pixels", upload(rgba_png(1, 83_886_338, rows=1))),
        ("JPEG claiming 60000x60000", upload(jpeg_claiming(60000))),
        ("stalled body", lambda: _stall(port)),
        ("trickled body", lambda: _trickle(port)),
        ("GIF", upload(gif.getvalue())),
        ("noise bytes", upload(noise)),
    ]


def good_load(
    port: int, bodies: list[tuple[bytes, str]], threads: int, duration: float
) -> tuple[int, float, list[float], list[str]]:
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors: list[str] = []
    deadline = time.perf_counter() + duration

    def worker(k: int) -> None:
        client, i = Client(port), k
        try:
            while time.perf_counter() < deadline:
                latencies[k].append(client.predict(bodies[i % len(bodies)]))
                i += threads
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            client.close()

    start = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    flat = [x for per in latencies for x in per]
    return len(flat), time.perf_counter() - start, flat, errors


def hostile_load(
    kinds: list[tuple[str, Callable[[], int]]],
    rate: float,
    duration: float,
    answers: Counter[str],
) -> list[threading.Thread]:
    """Start hostile requests at ``rate`` per second for ``duration`` s (own threads)."""
    started: list[threading.Thread] = []

    def one(name: str, send: Callable[[], int]) -> None:
        try:
            answers[f"{name}: {send()}"] += 1
        except Exception as exc:
            answers[f"{name}: {type(exc).__name__}"] += 1

    def dispatcher() -> None:
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < duration:
            name, send = kinds[n % len(kinds)]
            t = threading.Thread(target=one, args=(name, send), daemon=True)
            t.start()
            started.append(t)
            n += 1
            time.sleep(max(0.0, start + n / rate - time.perf_counter()))

    d = threading.Thread(target=dispatcher, daemon=True)
    d.start()
    started.append(d)
    return started


def peak_rss_mb(service: Service) -> float:
    for line in Path(f"/proc/{service.process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", type=Path, help="a package folder from `pneumo register`")
    parser.add_argument("--threads", type=int, default=8, help="good client threads")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds a phase")
    parser.add_argument("--repeats", type=int, default=2, help="rounds of (clean, mixed)")
    parser.add_argument("--hostile-share", type=float, default=0.1)
    args = parser.parse_args()

    root, files = image_files(64)
    images = [p.read_bytes() for p in files]
    bodies = [multipart(data) for data in images]
    with tempfile.TemporaryDirectory(prefix="pneumo-hostile-") as tmp:
        work = Path(tmp)
        folder = args.model.expanduser().resolve() if args.model else work / "model"
        if args.model is None:
            print("building a package: resnet18 at 128 px, random weights ...", flush=True)
            build_package(folder, "resnet18", 128, images)
        print(f"machine  {usable_cores()} cores, {cpu_model()}; Python {sys.version.split()[0]}")
        print(f"good     {args.threads} threads posting {len(images)} PNGs from {root}")
        print(f"hostile  {args.hostile_share:.0%} of the requests at the clean rate", flush=True)
        clean_rates, mixed_rates = [], []
        clean_lat: list[float] = []
        mixed_lat: list[float] = []
        answers: Counter[str] = Counter()
        with running_service(folder, work, {"poll_seconds": "0"}) as service:
            kinds = hostile_kinds(service.port)  # encoded once, before anything is measured
            good_load(service.port, bodies, args.threads, 2.0)  # warm-up
            for r in range(args.repeats):
                n, secs, lat, errors = good_load(service.port, bodies, args.threads, args.duration)
                clean_rates.append(n / secs)
                clean_lat += lat
                share = args.hostile_share
                rate = clean_rates[-1] * share / (1 - share)
                hostile = hostile_load(kinds, rate, args.duration, answers)
                m, msecs, mlat, merrors = good_load(
                    service.port, bodies, args.threads, args.duration
                )
                mixed_rates.append(m / msecs)
                mixed_lat += mlat
                for t in hostile:
                    t.join(timeout=120)
                print(
                    f"round {r + 1}: clean {clean_rates[-1]:.1f} good/s, mixed "
                    f"{mixed_rates[-1]:.1f} good/s ({rate:.1f} hostile/s started); errors: "
                    f"{len(errors) + len(merrors)}",
                    flush=True,
                )
            peak = peak_rss_mb(service)
        clean, mixed = float(np.median(clean_rates)), float(np.median(mixed_rates))
        print(f"\ngood requests/s   clean {clean:.1f}   mixed {mixed:.1f}")
        print(
            f"good latency ms   clean p50 {pct(clean_lat, 50):.0f} p99 "
            f"{pct(clean_lat, 99):.0f}   mixed p50 {pct(mixed_lat, 50):.0f} p99 "
            f"{pct(mixed_lat, 99):.0f}"
        )
        print("hostile answers   " + ", ".join(f"{k} x{v}" for k, v in sorted(answers.items())))
        print(f"service peak RSS  {peak:.0f} MB")
        verdict = "" if mixed / clean >= TARGET else "  MISSED"
        print(f"ratio mixed / clean = {mixed / clean:.2f} (target >= {TARGET}){verdict}")


if __name__ == "__main__":
    main()
