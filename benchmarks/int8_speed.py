"""int8 against float32, per backbone: latency and throughput of the same model file quantised,
same run, same images, same threads.

    python benchmarks/int8_speed.py [--backbones resnet18,resnet50,densenet121,mobilenet_v3_large]
        [--size 256] [--images 64] [--rounds 3]

Each backbone is built with random weights (speed does not depend on them), exported with
``export_onnx`` and quantised by :func:`pneumo.packaging.quantize.quantize_int8` (static QDQ,
per-channel int8 weights, uint8 activations) calibrated on 32 real NIH PNGs, exactly as
`pneumo optimize` does. Both sessions are built as the service builds them (`ort_session`:
ONNX Runtime's threads sleeping between calls) and measured alternately over --rounds rounds
on the same decoded images: batch 1 (p50 latency of one call) and batches of 16 (images/s,
the median round). Targets: >= 1.5x throughput for ResNet-18 and ResNet-50; DenseNet-121 and
MobileNetV3 are reported as they come (published int8 gains for DenseNet are about 1.3x).
The largest probability difference on the images is printed too: a speed figure for a file
that computes something else would mean nothing (the accuracy gate is `pneumo optimize`'s).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from bench_support import OPSET, cpu_model, image_files, usable_cores

TARGETS = {"resnet18": 1.5, "resnet50": 1.5}
BATCH = 16


def timed(sess: Any, pixels: np.ndarray) -> tuple[float, float]:
    """(median ms of a batch-1 call, images/s in batches of BATCH)."""
    single = []
    for image in pixels[:16]:
        start = time.perf_counter()
        sess.run(["probability"], {"image": image[None, None]})
        single.append(time.perf_counter() - start)
    start = time.perf_counter()
    for i in range(0, len(pixels), BATCH):
        sess.run(["probability"], {"image": pixels[i : i + BATCH, None]})
    return float(np.median(single)) * 1000, len(pixels) / (time.perf_counter() - start)


def main() -> None:
    import torch

    from pneumo.data.decode.image import decode
    from pneumo.models.backbones import build_model
    from pneumo.packaging.export import export_onnx
    from pneumo.packaging.quantize import quantize_int8
    from pneumo.preprocess import ImageSpec, PreprocessSpec
    from pneumo.serving.model import ort_session

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backbones", default="resnet18,resnet50,densenet121,mobilenet_v3_large")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    root, files = image_files(args.images)
    spec = PreprocessSpec(ImageSpec(size=args.size), mean=0.5, std=0.25)
    pixels = np.stack([decode(f.read_bytes(), spec.image).pixels for f in files])
    print(f"machine      {usable_cores()} cores, {cpu_model()}")
    print(f"images       {len(pixels)} PNGs from {root} at {args.size} px; "
          f"{args.rounds} alternating rounds")  # fmt: skip
    print(f"\n{'backbone':20} {'float32 b1':>11} {'int8 b1':>9} {'float32/s':>10} "
          f"{'int8/s':>8} {'ratio':>6}  max |dp|")  # fmt: skip
    for backbone in args.backbones.split(","):
        torch.manual_seed(0)
        model = build_model(backbone, weights="none", num_outputs=1).eval()
        float32 = export_onnx(model, spec, OPSET, backbone)
        int8 = quantize_int8(float32, pixels[:32])
        sessions = {"f32": ort_session(float32), "int8": ort_session(int8)}
        for sess in sessions.values():
            timed(sess, pixels[:BATCH])  # warm up
        runs: dict[str, list[tuple[float, float]]] = {k: [] for k in sessions}
        for _ in range(args.rounds):
            for key, sess in sessions.items():
                runs[key].append(timed(sess, pixels))
        b1 = {k: float(np.median([r[0] for r in v])) for k, v in runs.items()}
        rate = {k: float(np.median([r[1] for r in v])) for k, v in runs.items()}
        probs = {
            k: s.run(["probability"], {"image": pixels[:BATCH, None]})[0]
            for k, s in sessions.items()
        }
        worst = float(np.abs(probs["f32"] - probs["int8"]).max())
        ratio = rate["int8"] / rate["f32"]
        target = TARGETS.get(backbone)
        verdict = (
            ""
            if target is None
            else f"  (target >= {target})" + ("" if ratio >= target else "  MISSED")
        )
        print(f"{backbone:20} {b1['f32']:8.1f} ms {b1['int8']:6.1f} ms {rate['f32']:10.1f} "
              f"{rate['int8']:8.1f} {ratio:6.2f}  {worst:.4f}{verdict}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
