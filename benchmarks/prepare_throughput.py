"""Throughput of `pneumo prepare` against a bare Pillow decode+resize loop, same cores, same run.

    python benchmarks/prepare_throughput.py [DATASET_DIR] [--repeats 3]

DATASET_DIR defaults to $PNEUMO_TEST_DATA/nih-sample (300 real 1024x1024 NIH PNGs). Each repeat
prepares the dataset from scratch into a fresh temporary folder (manifest, split, validation,
hashing, cache shards, data card) and, alternately, runs the baseline: a process pool with the
same number of workers doing only `Image.open → convert("L") → resize` on the same files.
Prints images/s of both (best of the repeats) and their ratio; the target is >= 0.8.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from pneumo.config import load_config
from pneumo.data.decode.pool import worker_count
from pneumo.data.preparation import prepare
from pneumo.data.sources.datasets import register
from pneumo.settings import Settings

SIZE = 256


def bare_decode(path: str) -> int:
    with Image.open(path) as img:
        small = img.convert("L").resize((SIZE, SIZE), Image.Resampling.BILINEAR)
    return small.size[0]


def run_bare(files: list[str], workers: int) -> float:
    start = time.perf_counter()
    chunk = max(1, min(16, len(files) // (workers * 8)))
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for _ in pool.imap(bare_decode, files, chunksize=chunk):
            pass
    return len(files) / (time.perf_counter() - start)


def run_pipeline(dataset: str, n_images: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(root=tmp)
        entry = register(dataset, source="local", settings=settings)
        config = load_config(None, [f"prepare.image_size={SIZE}"])
        start = time.perf_counter()
        result = prepare(entry, config, settings, progress=False)
        elapsed = time.perf_counter() - start
    assert result.card["totals"]["images"] == n_images, result.card["totals"]
    return n_images / elapsed


def run_cli(dataset: str, n_images: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PNEUMO_ROOT": tmp}
        cmd = [sys.executable, "-m", "pneumo", "prepare", "--quiet", "--dataset", dataset]
        start = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        return n_images / (time.perf_counter() - start)


def _runs(values: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


def main() -> None:
    default = Path(os.environ.get("PNEUMO_TEST_DATA", "../shared/data")) / "nih-sample"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", nargs="?", default=str(default))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    files = sorted(str(p) for p in Path(args.dataset).rglob("*.png"))
    if not files:
        raise SystemExit(f"no PNG files under {args.dataset}")
    workers = worker_count(0)
    print(f"{len(files)} images from {args.dataset}; {workers} worker(s); {SIZE} px")
    bare, pipe, cli = [], [], []
    for _ in range(args.repeats):
        bare.append(run_bare(files, workers))
        pipe.append(run_pipeline(args.dataset, len(files)))
        cli.append(run_cli(args.dataset, len(files)))
    b, p, c = max(bare), max(pipe), max(cli)
    print(f"bare Pillow decode+resize : {b:8.1f} images/s  (runs: {_runs(bare)})")
    print(f"pneumo prepare (library)  : {p:8.1f} images/s  (runs: {_runs(pipe)})")
    print(f"pneumo prepare (CLI)      : {c:8.1f} images/s  (process start included)")
    print(f"ratio prepare/bare        : {p / b:8.3f}  (target >= 0.8)")
    print(f"ratio CLI/bare            : {c / b:8.3f}")


if __name__ == "__main__":
    main()
