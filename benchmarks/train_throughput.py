"""End-to-end training throughput against the bare model step, same model, same run.

    python benchmarks/train_throughput.py [--dataset NAME_OR_PATH] [--backbone densenet121]
        [--size 224] [--batch 64] [--steps 200] [--compile] [--json FILE] [--profile DIR]

End to end: cached shards → DataLoader (persistent workers, pinned memory) → on-device
augmentation and normalisation → forward, backward and fused AdamW step (bf16 autocast,
channels_last and cuDNN autotuning on a GPU), exactly as `pneumo train` does it. Bare: the same
model and optimizer stepping on a uint8 batch already on the device. Prints both rates in
images/s and their ratio (target on a GPU: >= 0.85). Without --dataset it builds a synthetic
dataset at --size in a temporary folder first (at most 2,000 patients; batches cycle over it).
--profile DIR then profiles a few steps of each with torch.profiler: a Chrome trace per variant
in DIR, the operators that take the most time, and the share of wall time the GPU was busy
(a low share means the step is bound by the host: Python and kernel launches).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pneumo.config import load_config
from pneumo.data.prepared import load_prepared
from pneumo.data.sources import datasets
from pneumo.settings import Settings
from pneumo.training import setup
from pneumo.training.distributed import pick_device
from pneumo.training.loader import EpochBatches, loader_workers, make_loader
from pneumo.training.loop import StepContext, batches_from, train_epoch


def synthetic_dataset(root: str, size: int, patients: int) -> datasets.Dataset:
    from pneumo.config import SyntheticConfig
    from pneumo.data.preparation import prepare
    from pneumo.data.sources import synthetic

    settings = Settings(root=root)
    dest = f"{settings.data}/bench"
    synthetic.generate(
        dest,
        SyntheticConfig(patients=patients, image_size=max(64, size)),
        settings=settings,
        progress=False,
    )
    entry = datasets.register(dest, "synthetic", "bench", settings)
    prepare(entry, load_config(None, [f"prepare.image_size={size}"]), settings, progress=False)
    return entry


def rate(run: Any, steps: int, batch: int, device: torch.device) -> float:
    run(5)  # warm-up: cuDNN autotuning, compilation, loader workers starting
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    run(steps)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - start)


def profile(run: Any, steps: int, device: torch.device, trace: Path) -> float | None:
    """Profile ``run(steps)``; print the costliest operators; return the GPU-busy share."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as profiler

    gpu = device.type == "cuda"
    activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if gpu else [])]
    with profiler(activities=activities) as prof:
        start = time.perf_counter()
        run(steps)
        if gpu:
            torch.cuda.synchronize()
        wall_us = (time.perf_counter() - start) * 1e6
    prof.export_chrome_trace(str(trace))
    events = prof.key_averages()
    key = "self_device_time_total" if gpu else "self_cpu_time_total"
    print(events.table(sort_by=key, row_limit=12))
    calls = sum(e.count for e in events if e.key.startswith("aten::")) / steps
    line = f"{trace.name}: {wall_us / steps / 1000:.1f} ms/step, {calls:,.0f} operator calls/step"
    if not gpu:
        print(line)
        return None
    busy = sum(e.self_device_time_total for e in events) / wall_us
    print(f"{line}, GPU busy {busy:.0%} of it")
    return float(busy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset")
    parser.add_argument("--backbone", default=None)
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--rounds", type=int, default=2, help="alternating bare/end-to-end runs")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--profile", help="folder for profiler traces of a few steps of each")
    args = parser.parse_args()
    device = pick_device(args.device, 0)
    gpu = device.type == "cuda"
    backbone = args.backbone or ("densenet121" if gpu else "resnet18")
    size = args.size or (224 if gpu else 64)
    batch = args.batch or (64 if gpu else 16)
    steps = args.steps or (200 if gpu else 40)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(root=os.environ.get("PNEUMO_ROOT", tmp))
        patients = min(2000, max(40, (steps + 5) * batch // 2))
        entry = (
            datasets.resolve(args.dataset, settings)
            if args.dataset
            else synthetic_dataset(tmp, size, patients)
        )
        settings = Settings(root=tmp) if not args.dataset else settings
        cfg = load_config(
            None,
            [
                f"train.backbone={backbone}",
                f"train.batch_size={batch}",
                f"train.compile={args.compile}",
            ],
        ).train
        data = load_prepared(entry, settings)
        train_ds, _ = setup.datasets(data, ["label"], settings)
        spec = setup.preprocess_spec(cfg, data)
        from pneumo.models.backbones import build_model

        model = (
            build_model(backbone, num_outputs=1).to(device).to(memory_format=torch.channels_last)
        )
        setup.configure_backends(device)
        net: torch.nn.Module = torch.compile(model) if args.compile else model  # type: ignore[assignment]
        opt = setup.optimisation(cfg, model, 1000, torch.nn.BCEWithLogitsLoss())
        ctx = StepContext(spec, device, gpu, True, cfg.augment, 0)
        workers = loader_workers(-1, 1)
        order = np.random.default_rng(0).permutation(len(train_ds))
        epoch_batches = EpochBatches()
        loader = make_loader(train_ds, epoch_batches, workers, gpu)  # one, as in `pneumo train`

        def run(batches: Any, step_ctx: StepContext) -> None:
            """The same training steps for both measurements; only the batches differ."""
            train_epoch(net, batches, opt, step_ctx)

        def end_to_end(steps: int) -> None:
            epoch_batches.batches = batches_from(np.resize(order, steps * batch), batch, True)
            run(loader, ctx)

        pixels = torch.randint(
            0,
            256,
            (batch, data.image_spec.size, data.image_spec.size),
            dtype=torch.uint8,
            device=device,
        )
        target = torch.randint(0, 2, (batch, 1), device=device).float()
        bare_ctx = StepContext(spec, device, gpu, True, None, 0)

        def bare(steps: int) -> None:
            run([(pixels, target)] * steps, bare_ctx)

        name = (
            torch.cuda.get_device_name(device)
            if gpu
            else f"CPU ({torch.get_num_threads()} threads)"
        )
        print(f"{backbone} at {data.image_spec.size} px, batch {batch}, {steps} steps on {name}")
        print(f"loader workers {workers}, torch.compile {args.compile}, bf16 {gpu}")
        bares, ends = [], []
        for i in range(max(1, args.rounds)):  # alternated, so drift hits both alike
            bares.append(rate(bare, steps, batch, device))
            ends.append(rate(end_to_end, steps, batch, device))
            print(f"round {i + 1}: bare {bares[-1]:8.1f} images/s, end-to-end {ends[-1]:8.1f}")
        b, e = float(np.mean(bares)), float(np.mean(ends))
        print(f"bare step on in-memory tensors : {b:9.1f} images/s (mean of {len(bares)})")
        print(f"end-to-end training            : {e:9.1f} images/s (mean of {len(ends)})")
        print(f"ratio end-to-end/bare          : {e / b:9.3f}  (target on a GPU >= 0.85)")
        busy: dict[str, float | None] = {}
        if args.profile:
            folder = Path(args.profile)
            folder.mkdir(parents=True, exist_ok=True)
            for label, fn in (("bare", bare), ("end-to-end", end_to_end)):
                busy[label] = profile(fn, 10, device, folder / f"{label}-trace.json")
        if args.json:
            figures = {
                "device": name, "backbone": backbone, "size": data.image_spec.size, "batch": batch,
                "steps": steps, "workers": workers, "compile": args.compile, "bf16": gpu,
                "torch": torch.__version__, "bare_images_per_s": b,
                "end_to_end_images_per_s": e, "ratio": e / b, "rounds_bare": bares,
                "rounds_end_to_end": ends, "device_busy": busy,
            }  # fmt: skip
            Path(args.json).write_text(json.dumps(figures, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
