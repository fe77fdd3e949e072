"""Scoring a split of the prepared cache with a PyTorch model, as the served model would.

Float32 throughout, with neither bf16 autocast nor TF32 convolutions even on a GPU: the
probabilities (and so the threshold and the metrics an evaluation derives from them) are those
the float32 ONNX export will serve.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from pneumo.data import schema
from pneumo.data.prepared import PreparedData
from pneumo.explain.cam import ActivationMap, Explain
from pneumo.preprocess import PreprocessSpec
from pneumo.settings import Settings
from pneumo.training.loader import ShardImages, make_loader
from pneumo.training.loop import StepContext, batches_from, predict

BATCH = 64


@dataclass(frozen=True)
class Scored:
    frame: pd.DataFrame  # the split's manifest rows, in the order they were scored
    labels: np.ndarray  # int64 (N,)
    probabilities: np.ndarray  # float64 (N,)


def score_splits(
    model: torch.nn.Module,
    data: PreparedData,
    splits: tuple[str, ...],
    spec: PreprocessSpec,
    settings: Settings,
) -> dict[str, Scored]:
    """The binary head's probability for every image of each split in ``splits``."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(device)
    ctx = StepContext(spec, device, False, False)
    out: dict[str, Scored] = {}
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        for split in splits:
            ds = ShardImages(data.manifest, data.cache, [split], [schema.LABEL], settings)
            batches = batches_from(np.arange(len(ds)), BATCH, False)
            loader = make_loader(ds, batches)
            # a bar for a person at a terminal (tqdm's disable=None: off when stderr is not one)
            shown = tqdm(loader, total=len(batches), desc=f"scoring {split}", unit="batch",
                         leave=False, disable=None)  # fmt: skip
            scores, targets, _ = predict(model, shown, ctx)
            labels = targets[:, 0].astype(np.int64)
            out[split] = Scored(ds.frame, labels, scores[:, 0].astype(np.float64))
    return out


def predictor(model: torch.nn.Module, spec: PreprocessSpec) -> Callable[[np.ndarray], np.ndarray]:
    """``predict(pixels) -> probabilities`` for uint8 (N, S, S) pixels normalised by ``spec``:
    the binary head of ``model`` in float32 on the CPU, as the ONNX export computes it."""
    model = model.to("cpu").eval()

    def predict(pixels: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            logits = model(torch.from_numpy(spec.normalize(pixels)))
        return torch.sigmoid(logits.float()[:, 0]).double().numpy()

    return predict


def pixels_of(data: PreparedData, split: str, rows: list[int], settings: Settings) -> np.ndarray:
    """The cached uint8 pixels (len(rows), S, S) of ``rows`` of ``split`` (as :class:`Scored`
    orders them)."""
    ds = ShardImages(data.manifest, data.cache, [split], [schema.LABEL], settings)
    if not rows:
        size = data.image_spec.size
        return np.zeros((0, size, size), dtype=np.uint8)
    return np.asarray(ds.__getitems__(rows)[0].numpy(), dtype=np.uint8)


def explainer(model: torch.nn.Module, spec: PreprocessSpec, backbone: str) -> Explain:
    """``explain(pixels) -> maps``: Grad-CAM maps of the binary head on the CPU in float32, from
    the same cut (:class:`pneumo.models.trunk.Split`) the ONNX export computes them with."""
    from pneumo.explain.cam import activation_maps
    from pneumo.models.trunk import Split, check_split

    split = Split(model.to("cpu").eval(), backbone).eval()
    check_split(split, model, spec.image.size)

    def explain(pixels: np.ndarray) -> list[ActivationMap]:
        with torch.inference_mode():
            _, _, acts, alpha = split(torch.from_numpy(spec.normalize(pixels)))
        return activation_maps(acts.float().numpy(), alpha.float().numpy())

    return explain
