"""`pneumo evaluate`: a trained model on one split, with the threshold chosen on validation.

This is the one place that reads the test split. The model checkpoint carries its own
preprocessing spec, which must match the cache it is evaluated on; the data manifest must be
the one the model was trained on (same hash), or the split could leak.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pneumo import storage
from pneumo.config import EvaluateConfig
from pneumo.data import schema
from pneumo.data.sources import datasets
from pneumo.errors import DataError, PneumoError
from pneumo.settings import Settings, get_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationResult:
    out: str
    summary: dict[str, Any]
    files: dict[str, str]


def resolve_checkpoint(ref: str, settings: Settings) -> tuple[str, str | None]:
    """(checkpoint URL, run folder or None) from a run id, a run folder or a .pt file."""
    if ref.endswith(".pt"):
        if not storage.exists(ref, settings):
            raise PneumoError(f"checkpoint not found: {ref}")
        return storage.absolute(ref), None
    from pneumo.training.runs import run_dir

    folder = run_dir(ref, settings)
    return storage.join(folder, "best.pt"), folder


def current_metrics(
    folder: str, ckpt: dict[str, Any], settings: Settings, split: str = "test"
) -> dict[str, Any] | None:
    """The metrics.json in ``folder`` if it evaluates this very checkpoint on ``split``, else None
    (missing, or written for another run, epoch, dataset or split)."""
    import json

    url = storage.join(folder, "metrics.json")
    if not storage.exists(url, settings):
        return None
    metrics: dict[str, Any] = json.loads(storage.read_text(url, settings))
    ctx = metrics.get("context", {})
    same = all(ctx.get(k) == ckpt.get(k) for k in ("run_id", "epoch", "manifest_hash"))
    return metrics if same and ctx.get("split") == split else None


def predictions(
    model: Any, frame: pd.DataFrame, cache: str, split: str, ctx: Any, settings: Settings
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    from pneumo.training.loader import ShardImages, make_loader
    from pneumo.training.loop import batches_from, predict

    ds = ShardImages(frame, cache, [split], [schema.LABEL], settings)
    loader = make_loader(ds, batches_from(np.arange(len(ds)), 64, False))
    scores, targets, _ = predict(model, loader, ctx)
    return ds.frame, targets[:, 0].astype(np.int64), scores[:, 0].astype(np.float64)


def evaluate(
    ref: str,
    cfg: EvaluateConfig,
    settings: Settings | None = None,
    *,
    dataset: str | None = None,
    out: str | None = None,
) -> EvaluationResult:
    import torch

    from pneumo.data.prepared import load_prepared
    from pneumo.metrics.summary import summarize
    from pneumo.metrics.threshold import choose_threshold, parse_threshold_rule
    from pneumo.models import checkpoint
    from pneumo.models.backbones import build_model
    from pneumo.preprocess import PreprocessSpec
    from pneumo.reports.evaluation import write_report
    from pneumo.training.loop import StepContext

    settings = settings or get_settings()
    method, target = parse_threshold_rule(cfg.threshold)
    url, folder = resolve_checkpoint(ref, settings)
    ckpt = checkpoint.load(url, settings)
    if ckpt.get("head") != "binary":
        raise PneumoError(
            "evaluate reports the binary Pneumonia head; this checkpoint is multi-label"
        )
    entry = datasets.resolve(dataset or ckpt["dataset"], settings)
    data = load_prepared(entry, settings)
    if data.card["manifest_hash"] != ckpt["manifest_hash"]:
        raise DataError(
            f"dataset '{entry.name}' is not the data this model was trained on (manifest hash "
            f"{data.card['manifest_hash'][:12]} != {ckpt['manifest_hash'][:12]}); its splits may "
            "overlap the training data",
            hint="evaluate on the prepared dataset the run used, unchanged",
        )
    spec = PreprocessSpec.from_dict(ckpt["preprocess"])
    if spec.image != data.image_spec:
        raise DataError(
            f"the cache of '{entry.name}' holds {data.image_spec}; the model expects {spec.image}",
            hint="re-run prepare with the model's image settings",
        )
    config = ckpt["model_config"]
    model = build_model(config["backbone"], weights="none", num_outputs=config["num_outputs"])
    model.load_state_dict(ckpt["model"])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(device)
    # float32 throughout, no bf16 and no TF32 convolutions even on a GPU: the probabilities (and
    # so the threshold and the metrics) are those the float32 ONNX export will serve.
    ctx = StepContext(spec, device, False, False)
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        _, y_val, p_val = predictions(model, data.manifest, data.cache, "val", ctx, settings)
        frame, y, p = predictions(model, data.manifest, data.cache, cfg.split, ctx, settings)
    threshold = choose_threshold(y_val, p_val, method, target)
    groups = frame[schema.PATIENT_ID].to_numpy() if frame[schema.PATIENT_ID].notna().all() else None
    subgroups = {
        "sex": frame[schema.SEX].astype("object").fillna("unknown").to_numpy(),
        "age band": frame[schema.AGE].map(schema.age_band).to_numpy(),
        "view": frame[schema.VIEW].astype("object").fillna("unknown").to_numpy(),
    }
    subgroups = {k: v for k, v in subgroups.items() if not (v == "unknown").all()}
    summary = summarize(
        y, p, threshold.value, groups=groups, subgroups=subgroups, n_boot=cfg.n_boot, seed=cfg.seed
    )
    summary["threshold_rule"] = {**threshold.to_dict(), "chosen_on": "val"}
    target_url = out or storage.join(folder or storage.parent_of(url), f"eval-{cfg.split}")
    context = {
        "run_id": ckpt.get("run_id"), "checkpoint": url, "split": cfg.split, "dataset": entry.name,
        "manifest_hash": ckpt["manifest_hash"], "backbone": config["backbone"],
        "epoch": ckpt.get("epoch"), "val_auroc_at_training": ckpt.get("val_auroc"),
    }  # fmt: skip
    files = write_report(
        summary,
        y,
        p,
        target_url,
        title=f"{entry.name} · {cfg.split} split",
        context=context,
        settings=settings,
    )
    table = pd.DataFrame(
        {
            schema.IMAGE_ID: frame[schema.IMAGE_ID],
            schema.PATIENT_ID: frame[schema.PATIENT_ID],
            "label": y,
            "probability": p,
        }
    )
    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    storage.write_bytes(storage.join(target_url, "predictions.parquet"), buf.getvalue(), settings)
    files["predictions.parquet"] = storage.join(target_url, "predictions.parquet")
    _log_to_mlflow(ckpt.get("run_id"), cfg.split, summary, files, settings)
    return EvaluationResult(target_url, summary, files)


def _log_to_mlflow(
    run_id: str | None,
    split: str,
    summary: dict[str, Any],
    files: dict[str, str],
    settings: Settings,
) -> None:
    if not run_id:
        return
    from pneumo.training.tracking import Tracker

    tracker = Tracker(settings)
    values: dict[str, float] = {}
    for key in ("auroc", "auprc", "accuracy", "sensitivity", "specificity", "ppv", "npv", "ece"):
        item = summary.get(key)
        value = item.get("value") if isinstance(item, dict) else item
        if value is not None:
            values[f"{split}_{key}"] = float(value)
    tracker.metrics(run_id, values, step=0)
    for name, file_url in files.items():
        tracker.artifact(run_id, storage.read_bytes(file_url, settings), name, f"eval-{split}")
