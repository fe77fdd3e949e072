"""Latency and throughput of `pneumo serve` against bare in-process ONNX Runtime, same run.

    python benchmarks/serve_latency.py [--model FOLDER] [--backbone densenet121] [--size 256]
        [--images 64] [--repeats 3] [--requests 40] [--duration 5] [--max-batch 16]
        [--max-wait-ms 5]

What is measured, on the same files (real 1024x1024 NIH PNGs from
$PNEUMO_TEST_DATA/nih-sample) and the same model package:

bare single     for each image: decode (`prepare_upload`) + one ONNX Runtime call (normalising)
                with batch 1, in this process; images/s and the median per-image latency.
bare batched    the same images in batches of --max-batch: decode each, then one
                ONNX Runtime call per batch; images/s.
service c=1     `python -m pneumo serve FOLDER` started for real as a child process
                (PNEUMO_POLL_SECONDS=0), then --requests sequential `POST /v1/predict` after a
                few warm-ups; p50/p95/p99 latency seen by the client, in ms.
service c=16    16 client threads, each with one persistent connection, posting for --duration
                seconds; images/s over the whole phase (requests in flight at the end included).

The bare session is loaded in this process with the service's own loader and settings, and sits
idle while the service is measured (and the service idles during the bare phases). The four
phases run in --repeats rounds (3 x 5 s at c=16 makes the ~15 s phase), so a burst of other work
on a shared machine hits one round, not one side: latencies are pooled over the rounds, rates
are the median round's. Each round also says how much of the CPUs other processes took during
each phase (from /proc; "NOISY" above 10%): distrust figures from a noisy run.

The load client is cheap: every multipart body is encoded once and sent with
`http.client.HTTPConnection`, so the client takes little of the CPU the service runs on (its
share of a core is printed).

How to read it: the two ratio lines at the end are what count. ``p50 / bare single`` is the
price of HTTP, multipart parsing and the batcher for one request at a time (target <= 1.3);
``c=16 / bare batched`` is how much of ONNX Runtime's batched rate the service keeps under
concurrent load (target >= 0.8). A ratio that misses its target is marked MISSED; the script
exits 0 either way, since it measures rather than tests. The lines in between (ORT time inside
the service from its own /metrics, batch sizes, ORT busy share) say where the rest of the time
goes.

Without --model the package is built in a temporary folder from a randomly initialised
``build_model(--backbone)`` exported with ``export_onnx``: speed does not depend on the weights.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench_support import NOISE, CpuWatch, build_package, cpu_model, image_files, usable_cores

LATENCY_TARGET = 1.3
THROUGHPUT_TARGET = 0.8
CONCURRENCY = 16


# ----------------------------------------------------------------------------- bare


@dataclass(frozen=True)
class Single:
    rate: float  # images/s
    totals: list[float]  # seconds per image: decode + normalise + ORT
    decodes: list[float]
    orts: list[float]


def bare_single(model: Any, images: list[bytes]) -> Single:
    """Each image: `prepare_upload` (decode), then one ORT call with batch 1 (it normalises)."""
    from pneumo.serving.inputs import prepare_upload

    totals, decodes, orts = [], [], []
    start = time.perf_counter()
    for data in images:
        t0 = time.perf_counter()
        array = prepare_upload(data, model.spec, "file")
        t1 = time.perf_counter()
        model.predict(array)
        t2 = time.perf_counter()
        totals.append(t2 - t0)
        decodes.append(t1 - t0)
        orts.append(t2 - t1)
    return Single(len(images) / (time.perf_counter() - start), totals, decodes, orts)


def bare_batched(model: Any, images: list[bytes], batch: int) -> tuple[float, float]:
    """Decode ``batch`` images, one ORT call; (images/s, median seconds per call)."""
    from pneumo.serving.inputs import prepare_upload

    calls = []
    start = time.perf_counter()
    for i in range(0, len(images), batch):
        arrays = [prepare_upload(data, model.spec, "file") for data in images[i : i + batch]]
        t0 = time.perf_counter()
        model.predict(np.concatenate(arrays))
        calls.append(time.perf_counter() - t0)
    return len(images) / (time.perf_counter() - start), float(np.median(calls))


# ----------------------------------------------------------------------------- service


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def multipart(data: bytes) -> tuple[bytes, str]:
    """One ``file`` field, encoded once: (body, content type)."""
    boundary = uuid.uuid4().hex
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="image.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return head + data + tail, f"multipart/form-data; boundary={boundary}"


class Client:
    """One persistent connection; reconnects if the server closed it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def request(
        self, method: str, path: str, body: bytes = b"", ctype: str = ""
    ) -> tuple[int, bytes]:
        headers = {"Content-Type": ctype} if ctype else {}
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=body or None, headers=headers)
                resp = self.conn.getresponse()
                payload = resp.read()
                if resp.getheader("connection", "").lower() == "close":
                    self.conn.close()
                return resp.status, payload
            except (http.client.RemoteDisconnected, ConnectionError, http.client.CannotSendRequest):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def predict(self, body: tuple[bytes, str]) -> float:
        """Seconds one `POST /v1/predict` took; raises on anything but 200."""
        start = time.perf_counter()
        status, payload = self.request("POST", "/v1/predict", body[0], body[1])
        seconds = time.perf_counter() - start
        if status != 200:
            raise RuntimeError(f"POST /v1/predict answered {status}: {payload[:300]!r}")
        return seconds

    def close(self) -> None:
        self.conn.close()


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def logs(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def metrics(self) -> dict[str, float]:
        client = Client(self.port)
        try:
            _, payload = client.request("GET", "/metrics")
        finally:
            client.close()
        out: dict[str, float] = {}
        for line in payload.decode().splitlines():
            if line.startswith("pneumo_inference_"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out


@contextlib.contextmanager
def running_service(folder: Path, workdir: Path, settings: dict[str, str]) -> Iterator[Service]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PNEUMO_")}
    env.update({f"PNEUMO_{k.upper()}": v for k, v in settings.items()})
    env["PNEUMO_ROOT"] = str(workdir)
    log = workdir / "serve.log"
    args = [sys.executable, "-m", "pneumo", "serve", str(folder), "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(args, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
    service = Service(process, port, log)
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise SystemExit(
                    f"pneumo serve exited with {process.returncode}:\n{service.logs()}"
                )
            with contextlib.suppress(OSError, http.client.HTTPException):
                client = Client(port)
                try:
                    if client.request("GET", "/readyz")[0] == 200:
                        break
                finally:
                    client.close()
            if time.monotonic() > deadline:
                raise SystemExit(f"pneumo serve not ready after 180 s:\n{service.logs()}")
            time.sleep(0.2)
        yield service
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def sequential(port: int, bodies: list[tuple[bytes, str]], n: int, warmup: int) -> list[float]:
    client = Client(port)
    try:
        for i in range(warmup):
            client.predict(bodies[i % len(bodies)])
        return [client.predict(bodies[(warmup + i) % len(bodies)]) for i in range(n)]
    finally:
        client.close()


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    latencies: list[float]
    errors: list[str]


def concurrent(
    service: Service, bodies: list[tuple[bytes, str]], threads: int, duration: float
) -> tuple[Load, dict[str, float]]:
    """The load, and the service's metrics once every thread has warmed up."""
    clients = [Client(service.port) for _ in range(threads)]
    barrier = threading.Barrier(threads + 1)
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors: list[str] = []
    deadline = [0.0]

    def worker(k: int) -> None:
        client = clients[k]
        i = k
        try:
            client.predict(bodies[i % len(bodies)])  # warm-up: connection, first batch
            barrier.wait()
            barrier.wait()  # the main thread has set the deadline
            while time.perf_counter() < deadline[0]:
                i += threads
                latencies[k].append(client.predict(bodies[i % len(bodies)]))
        except Exception as exc:  # reported, not raised: the other threads go on
            errors.append(f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.abort()

    pool = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(threads)]
    for t in pool:
        t.start()
    before: dict[str, float] = {}
    try:
        barrier.wait()  # every warm-up answered: nothing in flight
        before = service.metrics()
        start = time.perf_counter()
        deadline[0] = start + duration
        barrier.wait()
    except threading.BrokenBarrierError:
        start = time.perf_counter()
    for t in pool:
        t.join()
    seconds = time.perf_counter() - start
    for client in clients:
        client.close()
    flat = [x for per in latencies for x in per]
    return Load(len(flat), seconds, flat, errors), before


def delta(after: dict[str, float], before: dict[str, float], key: str) -> float:
    return after.get(key, 0.0) - before.get(key, 0.0)


def batch_histogram(after: dict[str, float], before: dict[str, float]) -> str:
    """Batch sizes of the phase, from the cumulative Prometheus buckets: '1:3 2-4:1 ...'."""
    prefix = 'pneumo_inference_batch_size_bucket{le="'
    edges = sorted(
        (float(k[len(prefix) : -2]), delta(after, before, k))
        for k in after
        if k.startswith(prefix) and not k.endswith('"+Inf"}')
    )
    parts, low, seen = [], 1.0, 0.0
    for edge, cumulative in edges:
        count = cumulative - seen
        if count:
            label = f"{low:g}" if low == edge else f"{low:g}-{edge:g}"
            parts.append(f"{label}:{count:g}")
        seen, low = cumulative, edge + 1
    return " ".join(parts) or "none"


# ----------------------------------------------------------------------------- report


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q)) if values else float("nan")


def ratio_line(label: str, value: float, target: float, above: bool) -> str:
    met = value >= target if above else value <= target
    sign = ">=" if above else "<="
    return f"{label}  {value:6.2f}  (target {sign} {target:.2f})" + ("" if met else "  MISSED")


@dataclass
class Round:
    single: Single
    seq: list[float]
    seq_ort_ms: float  # mean ORT call inside the service at c=1, from its /metrics
    batched: float
    batch_ort: float
    load: Load
    batches: str  # the c=16 phase's batch sizes, ORT busy share, client CPU
    noise: list[str]

    @property
    def rate(self) -> float:
        """Images/s at c=16."""
        return self.load.requests / max(self.load.seconds, 1e-9)


def one_round(
    watch: CpuWatch,
    model: Any,
    service: Service,
    images: list[bytes],
    bodies: list[tuple[bytes, str]],
    args: argparse.Namespace,
) -> Round:
    noise = []
    watch.mark()
    single = bare_single(model, images)
    noise.append(watch.other())

    m0 = service.metrics()
    watch.mark()
    seq = sequential(service.port, bodies, args.requests, args.warmup)
    noise.append(watch.other())
    m1 = service.metrics()
    calls = delta(m1, m0, "pneumo_inference_duration_seconds_count")
    seq_ort = delta(m1, m0, "pneumo_inference_duration_seconds_sum") / max(calls, 1) * 1000

    watch.mark()
    batched, batch_ort = bare_batched(model, images, args.max_batch)
    noise.append(watch.other())

    cpu0 = time.process_time()
    watch.mark()
    load, m2 = concurrent(service, bodies, CONCURRENCY, args.duration)
    noise.append(watch.other())
    client = (time.process_time() - cpu0) / max(load.seconds, 1e-9)
    m3 = service.metrics()
    n = delta(m3, m2, "pneumo_inference_batch_size_count")
    imgs = delta(m3, m2, "pneumo_inference_batch_size_sum")
    busy = delta(m3, m2, "pneumo_inference_duration_seconds_sum")
    batches = (
        f"{n:g} ORT calls, mean batch {imgs / max(n, 1):.1f} [sizes {batch_histogram(m3, m2)}], "
        f"ORT busy {busy / max(load.seconds, 1e-9):.0%}; load client {client:.0%} of a core"
    )
    return Round(single, seq, seq_ort, batched, batch_ort, load, batches, noise)


def main() -> None:
    from pneumo.config import ExperimentConfig

    defaults = ExperimentConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", type=Path, help="a package folder from `pneumo register`")
    parser.add_argument("--backbone", default=defaults.train.backbone)
    parser.add_argument("--size", type=int, default=defaults.prepare.image_size)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument(
        "--repeats", type=int, default=3, help="rounds, alternating bare and service"
    )
    parser.add_argument("--requests", type=int, default=40, help="sequential requests per round")
    parser.add_argument("--warmup", type=int, default=3, help="c=1 warm-up requests per round")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds at c=16 per round")
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    args = parser.parse_args()

    import onnxruntime as ort

    from pneumo.serving.model import load_model
    from pneumo.settings import ServeSettings

    root, files = image_files(args.images)
    images = [p.read_bytes() for p in files]
    bodies = [multipart(data) for data in images]
    threads = int(os.environ.get("PNEUMO_ORT_THREADS", "0") or 0)
    began = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="pneumo-serve-bench-") as tmp:
        work = Path(tmp)
        if args.model is not None:
            folder = args.model.expanduser().resolve()
            card = json.loads((folder / "card.json").read_text())
            backbone = str((card.get("model") or {}).get("backbone", "unknown"))
            size = int(card["preprocessing"]["image"]["size"])
            origin = f"package {folder}"
        else:
            folder = work / "model"
            backbone, size = args.backbone, args.size
            print(f"building a package: {backbone} at {size} px, random weights ...", flush=True)
            seconds = build_package(folder, backbone, size, images)
            origin = f"random weights, exported in {seconds:.0f} s (speed does not depend on them)"

        print(f"machine      {usable_cores()} cores, {cpu_model()}")
        print(f"runtime      onnxruntime {ort.__version__}, Python {sys.version.split()[0]}")
        print(f"model        {backbone} at {size}x{size} px; {origin}")
        print(
            f"service      max batch {args.max_batch}, max wait {args.max_wait_ms:g} ms, "
            f"ORT threads {threads or 'all'}, "
            f"spinning {'on' if ServeSettings().ort_spin else 'off'}, poll off"
        )
        mean_kb = sum(len(d) for d in images) / len(images) / 1024
        print(f"images       {len(images)} PNGs from {root} (mean {mean_kb:.0f} KB)")
        print(
            f"rounds       {args.repeats} x (bare single, c=1 {args.requests} requests, bare "
            f"batched, c={CONCURRENCY} {args.duration:g} s)",
            flush=True,
        )

        # The same session options as the service's; idle while the service is measured.
        spin = ServeSettings().ort_spin  # PNEUMO_ORT_SPIN, as the service reads it
        model = load_model(folder, "bench", "bare", threads=threads, warm=args.max_batch, spin=spin)
        for data in images[:3]:
            bare_single(model, [data])
        settings = {
            "poll_seconds": "0",
            "max_batch": str(args.max_batch),
            "max_wait_ms": f"{args.max_wait_ms:g}",
            "ort_threads": str(threads),
        }
        start = time.perf_counter()
        rounds: list[Round] = []
        watch = CpuWatch()
        with running_service(folder, work, settings) as service:
            print(
                f"service      ready in {time.perf_counter() - start:.1f} s (port {service.port})"
            )
            watch.pids.append(service.process.pid)
            print()
            for r in range(args.repeats):
                rd = one_round(watch, model, service, images, bodies, args)
                rounds.append(rd)
                single_ms, seq_ms = pct(rd.single.totals, 50), pct(rd.seq, 50)
                print(
                    f"round {r + 1}  single {rd.single.rate:5.1f}/s {single_ms:6.1f} ms | "
                    f"c=1 p50 {seq_ms:6.1f} ms | batched {rd.batched:5.1f}/s | "
                    f"c={CONCURRENCY} {rd.rate:5.1f}/s | ratios {seq_ms / single_ms:.2f} "
                    f"{rd.rate / rd.batched:.2f}"
                )
                single_n, seq_n, batched_n, load_n = rd.noise
                print(
                    f"         other load: single {single_n} | c=1 {seq_n} | batched {batched_n}"
                    f" | c={CONCURRENCY} {load_n}",
                    flush=True,
                )
                for err in rd.load.errors[:3]:
                    print(f"         error: {err}")

        # Pooled latencies and the median round's rates: robust to one disturbed round.
        totals = [x for rd in rounds for x in rd.single.totals]
        seq = [x for rd in rounds for x in rd.seq]
        by_rate = sorted(rounds, key=lambda rd: rd.rate)
        mid = by_rate[len(by_rate) // 2]
        single_ms = pct(totals, 50)
        single_rate = float(np.median([rd.single.rate for rd in rounds]))
        batched = float(np.median([rd.batched for rd in rounds]))
        batch_ort = float(np.median([rd.batch_ort for rd in rounds])) * 1000
        rate = float(np.median([rd.rate for rd in rounds]))
        seq_ort = float(np.median([rd.seq_ort_ms for rd in rounds]))
        decodes = [x for rd in rounds for x in rd.single.decodes]
        orts = [x for rd in rounds for x in rd.single.orts]

        print(f"\nall {len(rounds)} rounds (latencies pooled, rates: the median round)")
        print(
            f"bare single      {single_rate:7.2f} images/s   median {single_ms:6.1f} ms"
            f"  (decode+normalise {pct(decodes, 50):.1f} ms, ORT batch 1 {pct(orts, 50):.1f} ms)"
        )
        print(
            f"bare batched     {batched:7.2f} images/s   (batches of {args.max_batch}; "
            f"ORT {batch_ort:.0f} ms per call)"
        )
        print(
            f"service c=1      p50 {pct(seq, 50):6.1f} ms   p95 {pct(seq, 95):6.1f} ms   "
            f"p99 {pct(seq, 99):6.1f} ms  ({len(seq)} requests; ORT inside the service "
            f"{seq_ort:.1f} ms per call)"
        )
        lat16 = [x for rd in rounds for x in rd.load.latencies]
        print(
            f"service c={CONCURRENCY}     {rate:7.2f} images/s   p50 {pct(lat16, 50):6.0f} ms   "
            f"p95 {pct(lat16, 95):6.0f} ms  ({sum(rd.load.requests for rd in rounds)} requests)"
        )
        print(f"                 median round: {mid.batches}")

        print()
        print(
            ratio_line(
                "latency ratio     p50 / bare single   ",
                pct(seq, 50) / single_ms,
                LATENCY_TARGET,
                False,
            )
        )
        print(
            ratio_line(
                f"throughput ratio  c={CONCURRENCY} / bare batched ",
                rate / batched,
                THROUGHPUT_TARGET,
                True,
            )
        )
        if watch.worst > NOISE:
            print(
                f"\nWARNING: other processes took up to {watch.worst:.0%} of the CPUs during a "
                "phase (NOISY above); pooling the rounds limits the damage, but compare "
                "with a run on an idle machine"
            )
        print(f"\n(whole run {time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
