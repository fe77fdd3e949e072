"""What the benchmarks share: real NIH images, the machine's description, a CPU-noise watch and
a model package of a randomly initialised backbone (speed does not depend on the weights)."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

OPSET = 18
VERIFICATION_IMAGES = 4
PARITY_TOLERANCE = 1e-4
NOISE = 0.1  # other processes' share of the CPUs above which a phase is flagged


def image_files(n: int) -> tuple[Path, list[Path]]:
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    root = Path(os.environ.get("PNEUMO_TEST_DATA", default)) / "nih-sample"
    files = sorted(root.rglob("*.png")) if root.is_dir() else []
    if not files:
        raise SystemExit(
            f"no PNG images under {root}: set PNEUMO_TEST_DATA to the folder holding "
            "nih-sample/ (real NIH chest X-rays; default ../shared/data next to the repository)"
        )
    return root, files[:n]


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    import platform

    return platform.processor() or "unknown CPU"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class CpuWatch:
    """The share of the machine's CPUs that went to anything but this script, its service and
    their child processes (decode workers).

    On a shared machine (tests or training running beside the benchmark) the figures mean little;
    this says so. Linux only (/proc); elsewhere it reports nothing.
    """

    def __init__(self) -> None:
        self.pids = [os.getpid()]
        self.worst = 0.0
        self._mark = self._read()

    @staticmethod
    def _processes() -> dict[int, tuple[int, int]]:
        """{pid: (parent pid, CPU jiffies of it and its reaped children)} of every process."""
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue  # gone meanwhile
            # ppid is field 4; utime, stime, cutime, cstime fields 14 to 17 (1-based)
            found[int(entry.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]))
        return found

    def _ours(self) -> int:
        """CPU jiffies of this script, its service and their descendants (decode workers)."""
        table = self._processes()
        children: dict[int, list[int]] = {}
        for pid, (parent, _) in table.items():
            children.setdefault(parent, []).append(pid)
        todo, total = list(self.pids), 0
        while todo:
            pid = todo.pop()
            if pid in table:
                total += table[pid][1]
                todo.extend(children.get(pid, []))
        return total

    def _read(self) -> tuple[float, int, int] | None:
        try:
            values = [int(x) for x in Path("/proc/stat").read_text().split()[1:9]]
            busy = sum(values) - values[3] - values[4]  # all but idle and iowait (steal counts)
            ours = self._ours()
        except (OSError, ValueError, IndexError):
            return None
        return time.monotonic(), busy, ours

    def mark(self) -> None:
        self._mark = self._read()

    def other(self) -> str:
        """'N%' of the CPUs used by other processes since the last mark (and a new mark)."""
        now, then = self._read(), self._mark
        self._mark = now
        if now is None or then is None or now[0] <= then[0]:
            return ""
        capacity = (now[0] - then[0]) * os.sysconf("SC_CLK_TCK") * (os.cpu_count() or 1)
        share = max(0.0, ((now[1] - then[1]) - (now[2] - then[2])) / capacity)
        self.worst = max(self.worst, share)
        return f"{share:.0%}" + (" NOISY" if share > NOISE else "")


def without_maps(onnx: bytes) -> bytes:
    """``onnx`` with only its probability and embedding outputs, and only the nodes they need:
    the model file as it was before it carried activation maps (the baseline they are timed
    against)."""
    import onnx as onnx_lib
    from onnx.utils import Extractor

    from pneumo.packaging.signature import EMBEDDING_NAME, INPUT_NAME, OUTPUT_NAME

    model = onnx_lib.load_from_string(onnx)
    kept = Extractor(model).extract_model([INPUT_NAME], [OUTPUT_NAME, EMBEDDING_NAME])
    kept.metadata_props.extend(model.metadata_props)
    return bytes(kept.SerializeToString())


def build_package(
    folder: Path, backbone: str, size: int, images: list[bytes], *, maps: bool = True
) -> float:
    """A package of a randomly initialised model (without its activation-map outputs unless
    ``maps``); returns the seconds export took."""
    import torch

    from pneumo.data.decode.image import decode
    from pneumo.models.backbones import build_model
    from pneumo.packaging.export import export_onnx, parity
    from pneumo.packaging.modelcard import FORMAT, ModelCard
    from pneumo.packaging.package import Verification, package_files, sha256_bytes, write_files
    from pneumo.packaging.signature import INPUT_NAME, OUTPUT_NAME
    from pneumo.preprocess import ImageSpec, PreprocessSpec
    from pneumo.reports import modelcard_page as cards

    torch.manual_seed(0)
    model = build_model(backbone, weights="none", num_outputs=1).eval()
    spec = PreprocessSpec(ImageSpec(size=size), mean=0.5, std=0.25)
    start = time.perf_counter()
    onnx = export_onnx(model, spec, OPSET, backbone)
    seconds = time.perf_counter() - start
    onnx = onnx if maps else without_maps(onnx)
    pixels = np.stack([decode(data, spec.image).pixels for data in images[:VERIFICATION_IMAGES]])
    with torch.inference_mode():
        check = parity(model, onnx, pixels, spec)
    worst = check.max_abs_diff
    if not worst <= PARITY_TOLERANCE:
        raise SystemExit(
            f"ONNX and PyTorch disagree on {backbone}: max |dp| {worst:.2e} > {PARITY_TOLERANCE}"
        )
    card: dict[str, Any] = {
        "format": FORMAT,
        "name": "pneumonia-benchmark",
        "model": {
            "backbone": backbone,
            "weights": "random (benchmark: speed does not depend on them)",
            "input": {"name": INPUT_NAME, "shape": ["batch", 1, size, size], "dtype": "uint8"},
            "output": {"name": OUTPUT_NAME, "shape": ["batch", 1], "meaning": "P(pneumonia)"},
            "onnx_opset": OPSET,
        },
        "preprocessing": {**spec.to_dict(), "steps": "decode → resize → x/255 → (x-mean)/std"},
        "threshold": {"value": 0.5, "chosen_on": "none (benchmark)"},
        "parity": {
            "images": len(pixels),
            "split": "nih-sample",
            "max_abs_diff": worst,
            "tolerance": PARITY_TOLERANCE,
        },
        "model_sha256": sha256_bytes(onnx),
        "intended_use": "Benchmarking only: random weights, meaningless predictions.",
        "limitations": ["Random weights: the probabilities mean nothing."],
    }
    check_set = Verification(pixels, check.torch_probabilities)
    typed = ModelCard.from_dict(card, "the benchmark's card")
    write_files(folder, package_files(onnx, typed, cards.render_html(card), check_set))
    return seconds
