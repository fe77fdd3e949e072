"""Cold start of the service: process start to the first answered prediction, float32 and int8.

    python benchmarks/cold_start.py [--backbone resnet18] [--size 256] [--starts 5]

What a serverless platform with ``min-scale=0`` makes its first caller wait for, less the image
pull: `python -m pneumo serve FOLDER` started as a new process (imports, the package's checksum
and verification images, the warm-up batch, Uvicorn), then one `POST /v1/predict` of a real NIH
PNG sent as soon as the port accepts connections; the figure is the time from the process
start to that answer. The package is built here from a randomly initialised backbone (speed
does not depend on the weights), once as float32 and once quantised to int8 as `pneumo optimize`
does; the two are started alternately, --starts times each, and the medians are printed with
the package sizes. Target (issue 17): <= 1.5 s on 2 cores with the int8 ResNet-18. The
container image's size cannot be measured on a machine without a Docker engine: the script
says so rather than guess.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench_support import build_package, cpu_model, image_files, usable_cores
from serve_latency import free_port, multipart

TARGET_S = 1.5


def first_answer(folder: Path, work: Path, body: tuple[bytes, str]) -> float:
    """Seconds from starting `pneumo serve` to its first 200 on /v1/predict."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PNEUMO_")}
    env.update(PNEUMO_ROOT=str(work), PNEUMO_POLL_SECONDS="0")
    args = [sys.executable, "-m", "pneumo", "serve", str(folder), "--port", str(port)]
    start = time.perf_counter()
    process = subprocess.Popen(
        args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work
    )
    try:
        while time.perf_counter() - start < 120:
            if process.poll() is not None:
                raise SystemExit(f"pneumo serve exited with {process.returncode}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("POST", "/v1/predict", body=body[0],
                             headers={"Content-Type": body[1]})  # fmt: skip
                status = conn.getresponse().status
                conn.close()
            except OSError:
                time.sleep(0.01)
                continue
            if status == 200:
                return time.perf_counter() - start
            time.sleep(0.01)  # 503 while the model loads
        raise SystemExit("no answer within 120 s")
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def main() -> None:
    from pneumo.packaging.package import read_package
    from pneumo.packaging.quantize import quantize_int8

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args()

    _, files = image_files(32)
    images = [p.read_bytes() for p in files]
    body = multipart(images[0])
    with tempfile.TemporaryDirectory(prefix="pneumo-cold-") as tmp:
        work = Path(tmp)
        folders = {"float32": work / "float32", "int8": work / "int8"}
        print(f"building {args.backbone} at {args.size} px (float32, then int8) ...", flush=True)
        build_package(folders["float32"], args.backbone, args.size, images)
        _int8_package(folders["float32"], folders["int8"], images, args.size, quantize_int8)
        read_package(folders["int8"])  # as the service will
        print(f"machine      {usable_cores()} cores, {cpu_model()}")
        print("image size   not measured: no Docker engine on this machine")
        times: dict[str, list[float]] = {k: [] for k in folders}
        for _ in range(args.starts):
            for name, folder in folders.items():
                times[name].append(first_answer(folder, work, body))
        for name, folder in folders.items():
            size = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
            t = np.asarray(times[name])
            verdict = ""
            if name == "int8":
                verdict = f"  (target <= {TARGET_S} s)" + ("" if np.median(t) <= TARGET_S
                                                           else "  MISSED")  # fmt: skip
            print(f"{name:8} package {size:5.1f} MB   first answer median {np.median(t):.2f} s "
                  f"(min {t.min():.2f}, max {t.max():.2f}, {len(t)} starts){verdict}")  # fmt: skip


def _int8_package(
    source: Path, target: Path, images: list[bytes], size: int,
    quantize: Callable[[bytes, np.ndarray], bytes],
) -> None:  # fmt: skip
    """The float32 benchmark package with its model file quantised (the verification images
    re-scored by the int8 file, as `pneumo optimize` records them)."""
    import json

    import onnxruntime as ort

    from pneumo import paths
    from pneumo.data.decode.image import decode
    from pneumo.packaging.package import (
        Verification,
        read_package,
        sha256_bytes,
        verification_bytes,
        write_files,
    )
    from pneumo.preprocess import ImageSpec

    pkg = read_package(source)
    calibration = np.stack([decode(b, ImageSpec(size=size)).pixels for b in images])
    onnx = quantize(pkg.onnx, calibration)
    session = ort.InferenceSession(onnx, providers=["CPUExecutionProvider"])
    pixels = pkg.verification.pixels
    probs = session.run(["probability"], {"image": pixels[:, None]})[0][:, 0]
    card = json.loads((source / paths.CARD_FILE).read_text())
    card["model_sha256"] = sha256_bytes(onnx)
    card["parity"] = {**card["parity"], "tolerance": 2e-3}
    shutil.copytree(source, target)
    check = Verification(pixels, probs.astype(np.float64))
    write_files(target, {
        paths.MODEL_FILE: onnx, paths.CARD_FILE: json.dumps(card, indent=2).encode(),
        paths.VERIFICATION_FILE: verification_bytes(check),
    })  # fmt: skip


if __name__ == "__main__":
    main()
