"""What activation maps cost the service: `/v1/predict` with and without them in the model file,
and `/v1/explain` against `/v1/predict`, same run.

    python benchmarks/explain_latency.py [--backbone densenet121] [--size 256] [--images 32]
        [--repeats 3] [--requests 30]

Two packages of the same randomly initialised model (speed does not depend on the weights):
``maps``, as `pneumo register` writes it today (probability, embedding, activations and their
Grad-CAM weights), and ``plain``, the same file cut back to probability and embedding with only
the nodes they need (onnx.utils.Extractor): the model file as it was before it carried maps.
Both are served by real `pneumo serve` processes; in --repeats interleaved rounds each takes
--requests sequential requests (c=1) on the same real NIH PNGs: ``plain`` `/v1/predict`,
``maps`` `/v1/predict`, ``maps`` `/v1/explain` (the map, its grid and a base64 PNG overlay) and
``maps`` `/v1/explain?overlay=false` (the grid alone).
Latencies are the clients', pooled over the rounds. The same four are timed in process too
(decode, ONNX Runtime, and for explain the map and the overlay PNG) to show where the time goes.

Targets: predict with maps / predict plain <= 1.05 (the default path pays nothing for maps);
explain / predict <= 1.15 (a map costs at most 15 % of a prediction) on 2 cores. A missed
target is marked MISSED; the script exits 0 either way, since it measures rather than tests.
"""

from __future__ import annotations

import argparse
import base64
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench_support import CpuWatch, build_package, cpu_model, image_files, usable_cores
from serve_latency import Client, multipart, pct, ratio_line, running_service

UNCHANGED = 1.05
OVERHEAD = 1.15


def timed(client: Client, path: str, bodies: list[tuple[bytes, str]], n: int) -> list[float]:
    out = []
    for i in range(n):
        body, ctype = bodies[i % len(bodies)]
        start = time.perf_counter()
        status, payload = client.request("POST", path, body, ctype)
        out.append(time.perf_counter() - start)
        if status != 200:
            raise SystemExit(f"POST {path} answered {status}: {payload[:300]!r}")
    return out


def in_process(model: Any, images: list[bytes], mode: str, pause: float = 0.0) -> list[float]:
    """Seconds per image: decode + ONNX Runtime, then for ``explain`` the map, its overlay and
    the PNG (base64, as the service sends it), or for ``pause`` a sleep of ``pause`` seconds
    (a control: the same gap after each call, with no work in it). ``render`` times the map's
    work alone."""
    from pneumo.explain.overlay import overlay, overlay_side, png
    from pneumo.serving.inputs import prepare_upload

    out = []
    for data in images:
        start = time.perf_counter()
        pixels = prepare_upload(data, model.spec, "file")
        score = model.score(pixels, [mode in ("explain", "render", "grid")])[0]
        if mode == "render":
            start = time.perf_counter()
        if mode in ("explain", "render") and score.cam is not None:
            side = overlay_side(pixels.shape[-1])
            base64.b64encode(png(overlay(pixels[0], score.cam.upsampled(side))))
        elif mode == "grid" and score.cam is not None:
            np.round(score.cam.scaled.astype(np.float64), 4).tolist()
        elif mode == "pause":
            time.sleep(pause)
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    from pneumo.config import ExperimentConfig
    from pneumo.serving.model import load_model

    defaults = ExperimentConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backbone", default=defaults.train.backbone)
    parser.add_argument("--size", type=int, default=defaults.prepare.image_size)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--requests", type=int, default=30, help="per kind and round")
    args = parser.parse_args()

    root, files = image_files(args.images)
    images = [p.read_bytes() for p in files]
    bodies = [multipart(data) for data in images]
    with tempfile.TemporaryDirectory(prefix="pneumo-explain-bench-") as tmp:
        work = Path(tmp)
        print(f"building two packages: {args.backbone} at {args.size} px ...", flush=True)
        build_package(work / "maps", args.backbone, args.size, images)
        build_package(work / "plain", args.backbone, args.size, images, maps=False)
        print(f"machine      {usable_cores()} cores, {cpu_model()}")
        print(f"images       {len(images)} PNGs from {root}")
        bare = {k: load_model(work / k, "bench", k) for k in ("maps", "plain")}
        settings = {"poll_seconds": "0"}
        kinds = (
            ("plain", "/v1/predict"), ("maps", "/v1/predict"), ("maps", "/v1/explain"),
            ("maps", "/v1/explain?overlay=false"),
        )  # fmt: skip
        served: dict[tuple[str, str], list[float]] = {k: [] for k in kinds}
        local: dict[tuple[str, str], list[float]] = {k: [] for k in kinds}
        render: list[float] = []  # the map's own work, in process
        pause: list[float] = []  # predict, then a sleep as long as that work
        watch = CpuWatch()
        (work / "a").mkdir()
        (work / "b").mkdir()
        with (
            running_service(work / "plain", work / "a", settings) as plain,
            running_service(work / "maps", work / "b", settings) as maps,
        ):
            watch.pids += [plain.process.pid, maps.process.pid]
            clients = {"plain": Client(plain.port), "maps": Client(maps.port)}
            for name, path in kinds:  # warm-up
                timed(clients[name], path, bodies, 3)
            for r in range(args.repeats):
                noise = []
                for key in kinds:
                    name, path = key
                    watch.mark()
                    served[key] += timed(clients[name], path, bodies, args.requests)
                    mode = "explain" if path.endswith("explain") else "predict"
                    mode = "grid" if path.endswith("false") else mode
                    local[key] += in_process(bare[name], images, mode)
                    noise.append(watch.other())
                render += in_process(bare["maps"], images, "render")
                pause += in_process(bare["maps"], images, "pause", float(np.median(render)))
                cells = " | ".join(
                    f"{n} {p} {pct(served[(n, p)][-args.requests :], 50):6.1f} ms" for n, p in kinds
                )
                print(f"round {r + 1}  {cells}  (other load {', '.join(noise)})", flush=True)
            for client in clients.values():
                client.close()

    print(f"\nall {args.repeats} rounds, c=1, p50 (p95) of the client's latency; in process:")
    for key in kinds:
        name, path = key
        print(f"{name:6} {path:12} {pct(served[key], 50):7.1f} ms ({pct(served[key], 95):6.1f})"
              f"   in process {pct(local[key], 50):6.1f} ms")  # fmt: skip
    predict_local = pct(local[kinds[1]], 50)
    print(
        f"the map's own work (upsample, overlay, PNG, base64) {pct(render, 50):.1f} ms "
        f"= {pct(render, 50) / predict_local:.2f} of an in-process predict"
    )
    print(
        f"control: predict, then a sleep as long      {pct(pause, 50):6.1f} ms in process "
        f"(predict {predict_local:.1f} ms): the cost of a pause between ONNX Runtime calls"
    )
    base = pct(served[kinds[0]], 50)
    predict = pct(served[kinds[1]], 50)
    explain = pct(served[kinds[2]], 50)
    print(ratio_line("predict with maps / predict plain", predict / base, UNCHANGED, False))
    print(ratio_line("explain / predict (same model)    ", explain / predict, OVERHEAD, False))
    grid = pct(served[kinds[3]], 50)
    print(ratio_line("explain, grid alone / predict     ", grid / predict, OVERHEAD, False))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
