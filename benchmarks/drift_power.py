"""Drift detection, measured: false alarms on new images like the model's, detection on
another population, and what the checks cost the service.

    python benchmarks/drift_power.py PACKAGE_FOLDER --same kermany-224:test \\
        --same-files '../shared/data/kermany-full-res/**/*.jpeg' \\
        --shifted-files '../shared/data/nih-sample/images/*.png'

Every file goes through what `pneumo serve` does to an upload, in process (decode, the model,
the embedding projected on the model's drift reference, the input statistics). Windows of
``--window`` images (default 50, the service's) are drawn from each pool (``--windows`` of
them, seeded, without replacement inside a window) and tested as the service tests its live
window (``pneumo.monitoring.timeline.window_tests``: MMD on embeddings, KS on scores and input
statistics). Prints, per pool, the share of windows each test flags at ``--alpha``; for the
shifted pool, the smallest window that is flagged in at least 95 % of draws; and the CPU the
checks take per image against the CPU of scoring an image, both measured here.
"""

from __future__ import annotations

import argparse
import glob
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ood_refusal import split_files
from pneumo.input_settings import InputSettings
from pneumo.monitoring.baseline import DriftReference
from pneumo.monitoring.detector import DriftDetector
from pneumo.monitoring.timeline import window_tests
from pneumo.serving.inputs import ApiError, decode_upload
from pneumo.serving.model import LoadedModel, load_model
from pneumo.serving.policy import InputPolicy
from pneumo.serving.recorder import input_stats, projected

SIZES = (5, 10, 15, 20, 30, 40, 50)


def rows_of(
    files: list[bytes], model: LoadedModel, policy: InputPolicy
) -> tuple[pd.DataFrame, float]:
    """One row per scorable file (what a record holds), and the CPU seconds per image."""
    rows, start = [], time.process_time()
    for data in files:
        try:
            facts = decode_upload(data, model.spec, "file", policy)
        except ApiError:
            continue
        pixels = facts.pixels[None]
        score = model.score(pixels)[0]
        emb = projected(model, score)
        rows.append({"embedding": None if emb is None else emb.tolist(),
                     "probability": score.probability, **input_stats(pixels, facts)})  # fmt: skip
    seconds = (time.process_time() - start) / max(len(rows), 1)
    return pd.DataFrame(rows), seconds


def flag_rates(pool: pd.DataFrame, ref: DriftReference, window: int, windows: int,
               alpha: float, seed: int = 0) -> dict[str, float]:  # fmt: skip
    rng = np.random.default_rng(seed)
    flags: dict[str, list[bool]] = {}
    for i in range(windows):
        part = pool.iloc[np.sort(rng.choice(len(pool), window, replace=False))]
        results = window_tests(part, ref, i, 500)
        for test, p in results.items():
            flags.setdefault(test, []).append(p < alpha)
        flags.setdefault("any", []).append(any(p < alpha for p in results.values()))
    return {test: float(np.mean(v)) for test, v in flags.items()}


def files_of(patterns: list[str]) -> list[bytes]:
    found = sorted({p for pattern in patterns for p in glob.glob(pattern, recursive=True)})  # noqa: PTH207
    return [Path(p).read_bytes() for p in found if Path(p).is_file()]


def check_cost(ref: DriftReference, pool: pd.DataFrame, window: int, every: int) -> float:
    """CPU seconds of the service's drift checks per scored image."""
    detector = DriftDetector(ref, window=window, every=every)
    for _, row in pool.head(window).iterrows():
        emb = None if row["embedding"] is None else np.asarray(row["embedding"])
        detector.add(emb, float(row["probability"]), {k: row[k] for k in ref.stats if k in row})
    start, rounds = time.process_time(), 10
    for _ in range(rounds):
        detector.check()
    return (time.process_time() - start) / rounds / every


def main() -> None:

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", type=Path, help="a model package folder (runs/<id>/model)")
    parser.add_argument("--same", action="append", default=[], help="DATASET:SPLIT the model "
                        "never trained on (its test split)")  # fmt: skip
    parser.add_argument("--same-files", action="append", default=[], help="GLOB, same kind")
    parser.add_argument("--shifted-files", action="append", default=[], help="GLOB, another kind")
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--windows", type=int, default=40)
    parser.add_argument("--alpha", type=float, default=0.01)
    args = parser.parse_args()
    model = load_model(args.package, "pneumonia", "bench")
    ref = model.reference.drift if model.reference is not None else None
    if ref is None:
        raise SystemExit(f"{args.package} has no drift reference (register the model again)")
    policy = InputPolicy.from_settings(InputSettings())
    same_files = [f for s in args.same for f in split_files(s)] + files_of(args.same_files)
    same, serve_cpu = rows_of(same_files, model, policy)
    shifted, _ = rows_of(files_of(args.shifted_files), model, policy)
    print(f"model {args.package}: drift reference of {len(ref.scores)} validation images; "
          f"pools: same kind {len(same)} images, shifted {len(shifted)}")  # fmt: skip
    print(f"\n{args.windows} windows of {args.window}, alpha {args.alpha:g}: share flagged")
    for name, pool in (("same kind (false alarms)", same), ("shifted (detections)", shifted)):
        rates = flag_rates(pool, ref, min(args.window, len(pool)), args.windows, args.alpha)
        print(f"  {name}: " + ", ".join(f"{k} {v:.0%}" for k, v in rates.items()))
    print("\nshifted pool, by window size (embedding test; any test):")
    smallest = None
    for size in SIZES:
        rates = flag_rates(shifted, ref, min(size, len(shifted)), args.windows, args.alpha, 1)
        print(f"  {size:>3} images: {rates.get('embedding_mmd', 0):.0%}; {rates['any']:.0%}")
        if smallest is None and rates.get("embedding_mmd", 0) >= 0.95:
            smallest = size
    print(f"  smallest window flagged in >= 95 % of draws: {smallest or 'none of these'}")
    per_image = check_cost(ref, same, args.window, 25)
    ratio = per_image / serve_cpu
    print(f"\nCPU per image: scoring {serve_cpu * 1000:.1f} ms, drift checks "
          f"{per_image * 1000:.2f} ms (a check of {args.window} every 25): "
          f"ratio {ratio:.3f}")  # fmt: skip
    print(f"  at 10 requests/s: checks {10 * per_image:.1%} of a core, scoring "
          f"{10 * serve_cpu:.1%}")  # fmt: skip


if __name__ == "__main__":
    main()
