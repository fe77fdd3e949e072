"""What the service's input policy refuses: shares of real radiographs and of non-radiographs.

    python benchmarks/ood_refusal.py PACKAGE_FOLDER \\
        --split kermany-224:test --files kermany-full-res='../shared/data/kermany-full-res/**/*' \\
        --files nih-adults='../shared/data/nih-sample/images/*.png' \\
        --files pillow-tests='pillow-*/Tests/images/*'

Every file goes through what `pneumo serve` does to an upload, in process (the header rules,
the decode, the colour rule, the model and its out-of-distribution score), under the default
policy (``PNEUMO_INPUT_*`` changes it). ``--split DATASET:SPLIT`` takes the files of a split of
a prepared dataset (e.g. the children held out of a model's training). The generated set
(``generated``, always run) is gray non-radiographs drawn here: text pages, gradients,
checkerboards, noise, shapes (also reported by kind). Prints, per set, the share scored,
refused by a rule (by code) and refused as out of distribution.
"""

from __future__ import annotations

import argparse
import glob
import io
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from pneumo.input_settings import InputSettings
from pneumo.serving.inputs import ApiError, inspect_upload, prepare_upload
from pneumo.serving.model import LoadedModel, load_model
from pneumo.serving.policy import InputPolicy

BUDGET = 768 * 2**20
MAX_PIXELS = 50_000_000


def judge(data: bytes, model: LoadedModel, policy: InputPolicy) -> str:
    """ "scored", or the error code the service would answer."""
    try:
        inspect_upload(data, policy, model.spec, BUDGET, MAX_PIXELS, "file")
        array = prepare_upload(data, model.spec, "file", policy, MAX_PIXELS)
        score = model.score(array)[0]
        policy.check_ood(score.ood, policy.ood_limit(model.reference), "file")
    except ApiError as exc:
        return exc.code
    return "scored"


def generated(n: int = 200, size: int = 512, seed: int = 0) -> dict[str, list[bytes]]:
    """``n`` gray non-radiographs, by kind (text, gradient, checkerboard, noise, shapes)."""
    rng = np.random.default_rng(seed)
    kinds = ("text", "gradient", "checkerboard", "noise", "shapes")
    out: dict[str, list[bytes]] = {k: [] for k in kinds}
    for i in range(n):
        kind = i % 5
        if kind == 0:  # a text page
            img = Image.new("L", (size, size), 235)
            draw = ImageDraw.Draw(img)
            for row in range(12, size - 12, 14):
                draw.text((10, row), "".join(rng.choice(list("abcdefgh ijk"), 60)), fill=20)
        elif kind == 1:  # a gradient at a random angle
            yy, xx = np.mgrid[0:size, 0:size] / size
            angle = rng.uniform(0, np.pi)
            img = Image.fromarray(
                (255 * (np.cos(angle) * xx + np.sin(angle) * yy) / 1.5).astype(np.uint8)
            )
        elif kind == 2:  # a checkerboard
            step = int(rng.integers(8, 64))
            yy, xx = np.mgrid[0:size, 0:size] // step
            img = Image.fromarray(((yy + xx) % 2 * 255).astype(np.uint8))
        elif kind == 3:  # noise
            img = Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8))
        else:  # shapes
            img = Image.new("L", (size, size), int(rng.integers(0, 80)))
            draw = ImageDraw.Draw(img)
            for _ in range(8):
                x0, y0 = rng.integers(0, size - 64, 2)
                w, h = rng.integers(16, 200, 2)
                draw.ellipse(
                    (int(x0), int(y0), int(x0 + w), int(y0 + h)), fill=int(rng.integers(100, 255))
                )
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        out[kinds[kind]].append(buf.getvalue())
    return out


def split_files(ref: str) -> list[bytes]:
    from pneumo.data import schema
    from pneumo.data.prepared import load_prepared
    from pneumo.data.sources import datasets
    from pneumo.settings import get_settings

    name, split = ref.rsplit(":", 1)
    settings = get_settings()
    data = load_prepared(datasets.resolve(name, settings), settings, images=False)
    return [
        Path(str(p).removeprefix("file://")).read_bytes() for p in data.split(split)[schema.PATH]
    ]


def report(name: str, files: list[bytes], model: LoadedModel, policy: InputPolicy) -> None:
    counts = Counter(judge(data, model, policy) for data in files)
    n = len(files)
    rules = {k: v for k, v in counts.items() if k not in ("scored", "out_of_distribution")}
    refused = n - counts["scored"]
    rule_text = ", ".join(f"{k} {v}" for k, v in sorted(rules.items())) or "-"
    print(
        f"| {name} | {n} | {refused / n:.1%} | {sum(rules.values()) / n:.1%} ({rule_text}) "
        f"| {counts['out_of_distribution'] / n:.1%} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", type=Path, help="a model package folder (runs/<id>/model)")
    parser.add_argument("--split", action="append", default=[], help="DATASET:SPLIT")
    parser.add_argument("--files", action="append", default=[], help="NAME=GLOB")
    args = parser.parse_args()
    model = load_model(args.package, "pneumonia", "bench")
    policy = InputPolicy.from_settings(InputSettings())
    if model.reference is None:
        raise SystemExit(f"{args.package} has no out-of-distribution reference (register again)")
    print(
        f"model {args.package}: OOD threshold {model.reference.threshold:.4f} "
        f"(quantile {model.reference.quantile} of {model.reference.val_images} val images)"
    )
    print("| set | files | refused | by a rule | out of distribution |\n|---|---|---|---|---|")
    for ref in args.split:
        report(ref, split_files(ref), model, policy)
    for item in args.files:
        name, pattern = item.split("=", 1)
        paths = [p for p in sorted(glob.glob(pattern, recursive=True)) if Path(p).is_file()]  # noqa: PTH207
        report(name, [Path(p).read_bytes() for p in paths], model, policy)
    drawn = generated()
    report("generated (all)", [d for files in drawn.values() for d in files], model, policy)
    for kind, files in drawn.items():
        report(f"generated: {kind}", files, model, policy)


if __name__ == "__main__":
    main()
