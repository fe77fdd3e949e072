"""Do the maps point at the disease? The pointing game on NIH's boxes, and the randomisation check.

    python benchmarks/pointing_game.py [--data ../shared/data] [--root DIR] [--seeds 3]

Trains what the tests train (the NIH sample, 300 real radiographs, at 128 px; ResNet-18 from
scratch, 8 epochs, about a minute on two cores; `pneumo fetch/prepare/train/register` in a fresh
PNEUMO_ROOT), then, with the registered model's maps as the service computes them (ONNX
Runtime, numpy):

- the pointing game: for each Pneumonia box of NIH's ``BBox_List_2017.csv`` whose image is in
  the sample (11), whether the map's maximum falls inside the box, beside a location prior (the
  best fixed point, chosen with hindsight on these very boxes: an upper bound for any map that
  ignores the image) and the image centre;
- the randomisation check (Adebayo et al., 2018): SSIM between the trained model's maps and
  those of the same architecture re-initialised (``--seeds`` initialisations), over the test
  split's images. Low is good: the maps depend on what was learnt.

Eleven boxes measure little: one hit is 9 points of hit rate. A model trained on 300 images is
not expected to localise pneumonia; the figures say what it does, not what a good model does.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from pneumo.data.decode.pool import decode_file
from pneumo.explain.agreement import ssim
from pneumo.explain.pointing import Box, best_fixed_point, box_on_input, hits, peak_pixel
from pneumo.serving.model import LoadedModel, load_model

SIZE = 128  # as the tests train: a 4 x 4 grid of features
RECIPE = [
    "train.backbone=resnet18", "train.epochs=8", "train.lr=0.001", "train.workers=0",
    "train.checkpoint_every=1000",
]  # fmt: skip
BOXES = "nih-metadata/BBox_List_2017.csv.gz"


def pneumo(root: Path, *args: str) -> None:
    env = {**os.environ, "PNEUMO_ROOT": str(root)}
    cmd = [sys.executable, "-m", "pneumo", *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"pneumo {' '.join(args)} failed:\n{proc.stderr[-3000:]}")


def train(root: Path, data: Path, size: int) -> tuple[str, LoadedModel]:
    pneumo(root, "fetch", "local", str(data / "nih-sample"))
    pneumo(root, "prepare", "-d", "nih-sample", f"prepare.image_size={size}")
    pneumo(root, "train", "-d", "nih-sample", "--quiet", *RECIPE)
    run = max((root / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
    pneumo(root, "register", run.name)
    package = run / "model"
    return run.name, load_model(package, "pneumonia", "1")


def boxes(data: Path, manifest: pd.DataFrame) -> pd.DataFrame:
    table = pd.read_csv(data / BOXES)
    table = table.rename(columns={"Bbox [x": "x", "y": "y", "w": "w", "h]": "h"})
    table = table[table["Finding Label"] == "Pneumonia"]
    return table.merge(manifest, left_on="Image Index", right_on="image_id")


def pointing(model: LoadedModel, rows: pd.DataFrame) -> tuple[list[Box], list[bool]]:
    spec = model.spec.image
    placed, hit = [], []
    print(f"{'image':18} {'split':5} {'p':>6}  {'box (rows, cols) on the input':32} peak   hit")
    for row in rows.to_dict("records"):
        _, pixels = decode_file(str(row["path"]), spec)
        assert pixels is not None, row["path"]
        score = model.score(pixels[None], [True])[0]
        assert score.cam is not None
        heat = score.cam.upsampled(spec.size)
        x, y, w, h = (float(row[k]) for k in ("x", "y", "w", "h"))
        box = box_on_input(x, y, w, h, int(row["orig_width"]), int(row["orig_height"]), spec)
        flat = score.cam.peak <= 0  # nothing raised the probability: no point, a miss
        placed.append(box)
        hit.append(not flat and hits(heat, box))
        where = f"{box.top:5.1f}-{box.bottom:5.1f}, {box.left:5.1f}-{box.right:5.1f}"
        r, c = peak_pixel(heat)
        peak = "  flat " if flat else f"{r:3.0f},{c:3.0f}"
        print(f"{row['image_id']:18} {row['split']:5} {score.probability:6.3f}  {where:32} "
              f"{peak} {'yes' if hit[-1] else 'no'}")  # fmt: skip
    return placed, hit


def randomisation(root: Path, run: str, model: LoadedModel, files: list[str], seeds: int) -> None:
    import torch

    from pneumo.models import checkpoint
    from pneumo.models.backbones import build_model
    from pneumo.training.scoring import explainer

    spec = model.spec
    pixels = np.stack([p for p in (decode_file(f, spec.image)[1] for f in files) if p is not None])
    trained = [s.cam for s in model.score(pixels, [True] * len(pixels))]
    ckpt = checkpoint.load(str(root / "runs" / run / "best.pt"))
    backbone = ckpt.meta.model.backbone
    means = []
    for seed in range(1, seeds + 1):
        torch.manual_seed(seed)
        random = explainer(build_model(backbone, num_outputs=1), spec, backbone)(pixels)
        values = [
            ssim(a.upsampled(spec.image.size), b.upsampled(spec.image.size))
            for a, b in zip(trained, random, strict=True)
            if a is not None
        ]
        means.append(float(np.mean(values)))
        print(
            f"  re-initialisation seed {seed}: mean SSIM {means[-1]:.3f} over {len(values)} images"
        )
    print(f"randomisation check: mean SSIM {np.mean(means):.3f} (sd {np.std(means, ddof=1):.3f} "
          f"over {seeds} re-initialisations; the check asks < 0.5)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("PNEUMO_TEST_DATA", default))
    )
    parser.add_argument("--root", type=Path, default=None, help="keep the run here")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--size", type=int, default=SIZE, help="model input (px); grid = size/32")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        size = args.size
        print(f"training ResNet-18 on the NIH sample at {size} px in {root} ...", flush=True)
        run, model = train(root, args.data, size)
        manifest = pd.read_parquet(root / "prepared" / "nih-sample" / "manifest.parquet")
        rows = boxes(args.data, manifest)
        print(f"\npointing game: {len(rows)} Pneumonia boxes of {BOXES} in the sample")
        placed, hit = pointing(model, rows)
        n = len(placed)
        best, point = best_fixed_point(placed, size)
        centre = sum(b.holds(size / 2, size / 2) for b in placed)
        print(f"\nhit rate: {sum(hit)}/{n} = {sum(hit) / n:.2f} (by split: "
              + ", ".join(f"{s} {sum(h for h, r in zip(hit, rows['split'], strict=True) if r == s)}"
                          f"/{int((rows['split'] == s).sum())}" for s in sorted(set(rows["split"])))
              + ")")  # fmt: skip
        print(
            f"best fixed point ({point[0]:.0f}, {point[1]:.0f}), chosen on these boxes: "
            f"{best}/{n} = {best / n:.2f}"
        )
        print(f"image centre: {centre}/{n} = {centre / n:.2f}\n")
        tests = manifest.loc[manifest["split"] == "test", "path"].astype(str).tolist()
        randomisation(root, run, model, tests, args.seeds)


if __name__ == "__main__":
    main()
