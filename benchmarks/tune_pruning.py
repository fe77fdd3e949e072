"""`pneumo tune` with pruning against the same study without, on synthetic data, same run.

    python benchmarks/tune_pruning.py [--trials 12] [--epochs 9] [--pruner halving]
        [--patients 160] [--size 48] [--backbone resnet18]

Both studies search the same space (learning rate, weight decay, dropout, rotation) with the
same TPE seed on the same prepared synthetic dataset, trial after trial in this process, each
trial a real training run tracked in MLflow, until --trials trials have finished:

unpruned    tune.pruner=none: every trial trains all --epochs.
pruned      tune.pruner=--pruner: trials whose validation AUROC trails, epoch by epoch, stop.

Targets: the pruned study's wall time <= 50 % of the unpruned one's, and its best validation
AUROC within 0.005 of (or above) the unpruned study's best.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench_support import cpu_model, usable_cores

TIME_TARGET = 0.5
AUROC_TOLERANCE = 0.005
SPACE = (
    "tune.space={train.lr: {low: 0.00003, high: 0.01, log: true}, "
    "train.weight_decay: {low: 0.000001, high: 0.01, log: true}, "
    "train.dropout: {low: 0.0, high: 0.6}, train.augment.rotation_deg: {low: 0, high: 15}}"
)


def prepared(patients: int, size: int) -> str:
    from pneumo import storage
    from pneumo.config import SyntheticConfig, load_config
    from pneumo.data.preparation import prepare
    from pneumo.data.sources import datasets, synthetic
    from pneumo.settings import get_settings

    settings = get_settings()
    dest = storage.join(settings.data, "bench")
    config = SyntheticConfig(patients=patients, max_images_per_patient=2, image_size=96, seed=3)
    synthetic.generate(dest, config, settings=settings, progress=False)
    entry = datasets.register(dest, source="synthetic", name="bench", settings=settings)
    prepare(entry, load_config(None, [f"prepare.image_size={size}"]), settings, progress=False)
    return entry.name


def study(name: str, dataset: str, pruner: str, args: argparse.Namespace) -> tuple[float, float]:
    """(wall seconds, best val AUROC) of a study of ``args.trials`` finished trials."""
    from pneumo.stages.tune import run

    overrides = [
        f"train.backbone={args.backbone}", f"train.epochs={args.epochs}",
        f"train.patience={args.epochs}", "train.batch_size=16", "train.workers=0",
        "train.checkpoint_every=1000", f"tune.pruner={pruner}", "tune.startup_trials=4", SPACE,
    ]  # fmt: skip
    start = time.perf_counter()
    tuned = run(dataset, None, overrides, study=name, trials=args.trials, progress=False)
    seconds = time.perf_counter() - start
    assert tuned.study is not None and tuned.study.best is not None
    best = tuned.study.best
    assert best.value is not None
    epochs = sum(len(t.curve) for t in tuned.study.trials)
    print(
        f"{name:<9} {seconds:7.1f} s, {epochs:3d} epochs trained, "
        f"{tuned.study.count('pruned'):2d} pruned, best val AUROC {best.value:.4f} "
        f"(trial {best.number})"
    )
    return seconds, best.value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--pruner", default="halving")
    parser.add_argument("--patients", type=int, default=160)
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--backbone", default="resnet18")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pneumo-tune-bench-") as tmp:
        os.environ["PNEUMO_ROOT"] = str(Path(tmp) / "root")
        dataset = prepared(args.patients, args.size)
        print(
            f"synthetic: {args.patients} patients at {args.size} px; {args.backbone}, "
            f"{args.trials} trials of up to {args.epochs} epochs; {cpu_model()}, "
            f"{usable_cores()} cores"
        )
        plain_s, plain_auroc = study("unpruned", dataset, "none", args)
        pruned_s, pruned_auroc = study("pruned", dataset, args.pruner, args)
    ratio = pruned_s / plain_s
    gap = plain_auroc - pruned_auroc
    time_ok = "met" if ratio <= TIME_TARGET else "MISSED"
    auroc_ok = "met" if gap <= AUROC_TOLERANCE else "MISSED"
    print(f"wall time pruned / unpruned : {ratio:6.3f}  (target <= {TIME_TARGET}: {time_ok})")
    print(f"best AUROC unpruned - pruned: {gap:+6.4f}  (target <= {AUROC_TOLERANCE}: {auroc_ok})")


if __name__ == "__main__":
    main()
