"""Recipe ablations: each variant of a config trained over several seeds, judged on validation.

    python benchmarks/ablation.py -d kermany-224 -c configs/kermany.yaml --seeds 0 1 2 \\
        [--external kermany-full-res] [--out ablation.json] [KEY=VALUE ...]

Every variant (see VARIANTS; ``--only NAME`` picks some) is the config plus its overrides plus
the KEY=VALUE given here (e.g. ``train.epochs=6`` for a shorter protocol), trained once per seed
(``train.seed``; the prepared split stays the same, patient-grouped). For each run: the best
validation AUROC (the selection metric; the test split is never opened) and, with
``--external``, the AUROC and accuracy on that dataset at the threshold the model carries. The
table prints mean and sd over seeds; the JSON keeps every run. Not a speed benchmark: it lives
here because it is a script that prints figures measured in the same run against a baseline
(the ``baseline`` variant).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

# Augmentation that models another scanner or archive (pneumo.training.photometric).
PHOTOMETRIC = [
    "train.augment.gamma=0.3", "train.augment.noise=0.03", "train.augment.blur_sigma=1.0",
    "train.augment.jpeg_quality=60", "train.augment.photometric_share=0.5",
]  # fmt: skip
VARIANTS: dict[str, list[str]] = {
    "baseline": [],
    "photometric": PHOTOMETRIC,
    "per_image": ["train.intensity=per_image"],
    "ema": ["train.ema_decay=0.995"],  # an average over the last ~200 steps (~2 epochs)
    "label_smoothing": ["train.label_smoothing=0.1"],
}


def one_run(
    dataset: str, config: str | None, overrides: list[str], external: str | None
) -> dict[str, Any]:
    from pneumo.config import load_config
    from pneumo.data.sources import datasets
    from pneumo.settings import get_settings
    from pneumo.stages import external as outside
    from pneumo.training.fit import train

    settings = get_settings()
    cfg = load_config(config, overrides)
    start = time.perf_counter()
    result = train(datasets.resolve(dataset, settings), cfg, settings, progress=False)
    row: dict[str, Any] = {
        "run_id": result.run_id, "val_auroc": result.best_val_auroc,
        "best_epoch": result.best_epoch + 1, "epochs": result.epochs_run,
        "minutes": (time.perf_counter() - start) / 60,
    }  # fmt: skip
    if external:
        found = outside.run(result.run_id, external, config, overrides)
        row["external_auroc"] = found.metrics["auroc"]["value"]
        row["external_accuracy"] = found.metrics["accuracy"]["value"]
    return row


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {sd:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-d", "--dataset", required=True)
    parser.add_argument("-c", "--config")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", nargs="+", choices=sorted(VARIANTS))
    parser.add_argument("--external")
    parser.add_argument("--out", type=Path, default=Path("ablation.json"))
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    results: dict[str, list[dict[str, Any]]] = (
        json.loads(args.out.read_text()) if args.out.exists() else {}
    )
    for name in args.only or list(VARIANTS):
        done = {r["seed"] for r in results.get(name, [])}
        for seed in args.seeds:
            if seed in done:  # an interrupted ablation goes on where it stopped
                continue
            overrides = [*VARIANTS[name], *args.overrides, f"train.seed={seed}"]
            row = one_run(args.dataset, args.config, overrides, args.external)
            results.setdefault(name, []).append({"seed": seed, **row})
            args.out.write_text(json.dumps(results, indent=1))
            print(f"{name} seed {seed}: {json.dumps(row)}", flush=True)
    print(f"\n{'variant':<12} {'runs':>4}  {'val AUROC (mean ± sd)':<22} external AUROC / accuracy")
    for name, rows in results.items():
        ext = [r["external_auroc"] for r in rows if "external_auroc" in r]
        acc = [r["external_accuracy"] for r in rows if "external_accuracy" in r]
        val = spread([r["val_auroc"] for r in rows])
        print(f"{name:<12} {len(rows):>4}  {val:<22} {spread(ext)} / {spread(acc)}")


if __name__ == "__main__":
    main()
