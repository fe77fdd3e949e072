"""`pneumo predict` images/s against bare decode + ONNX Runtime on the same files, same run.

    python benchmarks/predict_throughput.py [--model FOLDER] [--backbone resnet18] [--size 256]
        [--images 300] [--batch 32] [--rounds 3]

On real 1024x1024 NIH PNGs ($PNEUMO_TEST_DATA/nih-sample), alternately in each round:

bare        the same decode pool `predict` uses (one process per core), each image normalised and
            scored by ONNX Runtime in batches of --batch, in this process; nothing is written.
predict     `pneumo.stages.predict.predict` on the folder: input expansion, the pool, batches,
            the chunked resumable rows, the Parquet and CSV tables.

Both use one model package, loaded once with the service's loader (built from a randomly
initialised --backbone when no --model is given: speed does not depend on the weights). The
ratio predict / bare is what counts (target >= 0.9); rates are the median round's.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench_support import CpuWatch, build_package, cpu_model, image_files, usable_cores

if TYPE_CHECKING:
    from pneumo.serving.model import LoadedModel

TARGET = 0.9


def bare(model: LoadedModel, files: list[Path], batch: int, workers: int) -> float:
    """images/s of pool decode + normalise + batched ONNX Runtime, nothing written."""
    from pneumo.data.decode.pool import decode_many

    start = time.perf_counter()
    stream = decode_many([str(f) for f in files], model.spec.image, workers, len(files), clean=True)
    pending: list[np.ndarray] = []
    for _, pixels in stream:
        if pixels is not None:
            pending.append(pixels)
        if len(pending) == batch:
            model.predict(np.stack(pending))
            pending = []
    if pending:
        model.predict(np.stack(pending))
    return len(files) / (time.perf_counter() - start)


def through_predict(model: LoadedModel, folder: Path, out: Path, batch: int) -> float:
    from pneumo.stages.predict import predict

    start = time.perf_counter()
    done = predict([str(folder)], model, str(out), batch=batch, progress=False)
    seconds = time.perf_counter() - start
    if done.failed:
        raise SystemExit(f"{done.failed} file(s) could not be scored: see {done.out}")
    return done.rows / seconds


def main() -> None:
    from pneumo.serving.model import load_model
    from pneumo.settings import get_settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a package folder from `pneumo register`")
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    folder, files = image_files(args.images)
    workers = get_settings().workers or usable_cores()
    with tempfile.TemporaryDirectory(prefix="pneumo-predict-bench-") as tmp:
        package = args.model or Path(tmp) / "package"
        if args.model is None:
            build_package(package, args.backbone, args.size, [f.read_bytes() for f in files])
        model = load_model(package, "benchmark", "1")
        inputs = Path(tmp) / "inputs"
        inputs.mkdir()
        for f in files:  # the same files, in a folder of their own
            (inputs / f.name).symlink_to(f)
        print(f"{len(files)} NIH PNGs from {folder}; {cpu_model()}, {usable_cores()} cores")
        print(
            f"model {package} ({model.spec.image.size} px), batch {args.batch}, {workers} workers"
        )
        watch = CpuWatch()
        bares, predicts = [], []
        for i in range(args.rounds):
            watch.mark()
            bares.append(bare(model, files, args.batch, workers))
            noise_bare = watch.other()
            predicts.append(
                through_predict(model, inputs, Path(tmp) / f"out-{i}.parquet", args.batch)
            )
            noise = watch.other()
            print(
                f"round {i + 1}: bare {bares[-1]:6.1f} images/s (others {noise_bare or '?'}), "
                f"predict {predicts[-1]:6.1f} images/s (others {noise or '?'})"
            )
    b, p = statistics.median(bares), statistics.median(predicts)
    ratio = p / b
    print(f"bare decode + ONNX Runtime : {b:7.1f} images/s (median of {len(bares)})")
    print(f"pneumo predict             : {p:7.1f} images/s (median of {len(predicts)})")
    verdict = "met" if ratio >= TARGET else "MISSED"
    print(f"ratio predict / bare       : {ratio:7.3f}  (target >= {TARGET}: {verdict})")


if __name__ == "__main__":
    main()
