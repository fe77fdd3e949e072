"""Training streamed from an S3 server against the same training from local disk, same run.

    python benchmarks/stream_train.py [--patients 1200] [--size 64] [--shard-size 128]
        [--epochs 3] [--keep 4] [--backbone resnet18] [--workers -1]

The same synthetic dataset is prepared twice, under a local root and under ``s3://`` on moto's
S3 server on 127.0.0.1 (a real S3-protocol server in its own process, as MinIO or Scaleway
would be), then trained with the same config from each. Reported: training images/s (the mean
over epochs after the first, which warms up), their ratio (target >= 0.9), and the peak local
disk the stream's shard folder held (sampled every 5 ms) against the size of the whole train
cache, which a full download first would have needed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench_support import cpu_model, usable_cores

TARGET = 0.9


def prepared(args: argparse.Namespace) -> Any:
    from pneumo import storage
    from pneumo.config import SyntheticConfig, load_config
    from pneumo.data.preparation import prepare
    from pneumo.data.sources import datasets, synthetic
    from pneumo.settings import get_settings

    settings = get_settings()
    dest = storage.join(settings.data, "bench")
    config = SyntheticConfig(
        patients=args.patients, max_images_per_patient=2, image_size=96, seed=3
    )
    synthetic.generate(dest, config, settings=settings, progress=False)
    entry = datasets.register(dest, source="synthetic", name="bench", settings=settings)
    overrides = [f"prepare.image_size={args.size}", f"prepare.shard_size={args.shard_size}"]
    prepare(entry, load_config(None, overrides), settings, progress=False)
    return entry


def folder_bytes(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*.npy"):
        with contextlib.suppress(FileNotFoundError):  # deleted between listing and stat
            total += path.stat().st_size
    return total


def trained(label: str, args: argparse.Namespace, shards: Path) -> tuple[float, int]:
    """(images/s after the first epoch, peak bytes in the shard folder) of one training."""
    from pneumo import storage
    from pneumo.config import load_config
    from pneumo.settings import get_settings
    from pneumo.training.fit import train

    entry = prepared(args)
    peak, done = [0], threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], folder_bytes(shards))
            time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    overrides = [
        f"train.backbone={args.backbone}", f"train.epochs={args.epochs}",
        f"train.patience={args.epochs}", "train.batch_size=32", f"train.workers={args.workers}",
        "train.checkpoint_every=100000", "train.augment.enabled=true",
    ]  # fmt: skip
    try:
        result = train(entry, load_config(None, overrides), progress=False)
    finally:
        done.set()
        watcher.join()
    history = storage.read_json(storage.join(result.run_dir, "history.json"), get_settings())
    rates = [row["images_per_s"] for row in history[1:]] or [history[0]["images_per_s"]]
    rate = statistics.mean(rates)
    print(f"{label:<6} {rate:8.1f} images/s (epochs 2-{len(history)}), peak shard folder "
          f"{peak[0] / 1e6:6.1f} MB")  # fmt: skip
    return rate, peak[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1200)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--shard-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--keep", type=int, default=4)
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--workers", type=int, default=-1)
    args = parser.parse_args()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    # Its own process, as a remote server would be: serving requests from a thread of this
    # process would take the training's interpreter lock.
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    for key, value in {
        "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1", "PNEUMO_S3_ENDPOINT_URL": endpoint,
        "PNEUMO_STREAM_SHARDS": str(args.keep),
    }.items():  # fmt: skip
        os.environ[key] = value
    try:
        import s3fs

        fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint})
        for _ in range(100):
            with contextlib.suppress(Exception):
                fs.mkdir("bench")
                break
            time.sleep(0.2)
        with tempfile.TemporaryDirectory(prefix="pneumo-stream-bench-") as tmp:
            shards = Path(tmp) / "shards"
            os.environ["PNEUMO_STREAM_CACHE"] = str(shards)
            os.environ["HOME"] = str(Path(tmp) / "home")  # MLflow's SQLite file for the s3 root
            print(
                f"synthetic: {args.patients} patients at {args.size} px, {args.shard_size} "
                f"images a shard; {args.backbone}, {args.epochs} epochs, at most {args.keep} "
                f"shards on disk; {cpu_model()}, {usable_cores()} cores; S3 at {endpoint}"
            )
            os.environ["PNEUMO_ROOT"] = str(Path(tmp) / "local")
            local_rate, _ = trained("local", args, shards)
            train_cache = sum(
                p.stat().st_size
                for p in (Path(tmp) / "local" / "prepared" / "bench" / "cache").glob("train-*.npy")
            )
            os.environ["PNEUMO_ROOT"] = "s3://bench/work"
            s3_rate, peak = trained("s3", args, shards)
    finally:
        server.terminate()
        server.wait()
    ratio = s3_rate / local_rate
    verdict = "met" if ratio >= TARGET else "MISSED"
    print(f"images/s s3 / local : {ratio:6.3f}  (target >= {TARGET}: {verdict})")
    print(
        f"peak local disk     : {peak / 1e6:.1f} MB of a {train_cache / 1e6:.1f} MB train cache "
        f"({peak / max(train_cache, 1):.1%})"
    )


if __name__ == "__main__":
    main()
