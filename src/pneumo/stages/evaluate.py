"""`pneumo evaluate`: a trained model on one split, with the threshold chosen on validation.

This is the one place that reads the test split. The model checkpoint carries its own
preprocessing spec, which must match the cache it is evaluated on; the data manifest must be
the one the model was trained on (same hash), or the split could leak.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from pneumo import paths, storage
from pneumo.config import EvaluateConfig, load_config
from pneumo.data import schema
from pneumo.data.prepared import PreparedData, load_prepared
from pneumo.data.sources import datasets
from pneumo.data.sources.datasets import Dataset
from pneumo.errors import DataError, PneumoError
from pneumo.metrics.names import LOGGED
from pneumo.metrics.summary import summarize
from pneumo.metrics.threshold import choose_threshold, parse_threshold_rule
from pneumo.models import checkpoint
from pneumo.models.meta import CheckpointMeta
from pneumo.reports.error_analysis import ErrorAnalysis, analyse_errors, worst_errors
from pneumo.reports.evaluation import write_evaluation_report
from pneumo.reports.terminal import evaluation_summary
from pneumo.settings import Settings, get_settings
from pneumo.training.runs import checkpoint_of
from pneumo.training.scoring import Scored, explainer, pixels_of, score_splits
from pneumo.training.tracking import Tracker

AGE_BAND_ORDER = tuple(band for band, _, _ in schema.AGE_BANDS)


@dataclass(frozen=True)
class EvaluationResult:
    out: str
    metrics: dict[str, Any]  # the summary; metrics.json adds the title and the context
    files: dict[str, str]

    def summary(self) -> str:
        report = self.files.get(paths.REPORT_MD, self.out)
        return evaluation_summary(self.metrics, self.out, report)


def current_evaluation(
    folder: str, meta: CheckpointMeta, settings: Settings, split: str = "test"
) -> dict[str, Any] | None:
    """The metrics.json in ``folder`` if it evaluates this very checkpoint on ``split``, else None
    (missing, or written for another run, epoch, dataset or split)."""
    url = storage.join(folder, paths.METRICS)
    if not storage.exists(url, settings):
        return None
    metrics: dict[str, Any] = storage.read_json(url, settings)
    ctx = metrics.get("context", {})
    ours = {"run_id": meta.run_id or None, "epoch": meta.epoch, "manifest_hash": meta.manifest_hash}
    same = all(ctx.get(k) == v for k, v in ours.items())
    return metrics if same and ctx.get("split") == split else None


def check_data(entry: Dataset, data: PreparedData, meta: CheckpointMeta) -> None:
    ours, theirs = data.card["manifest_hash"], meta.manifest_hash
    if ours != theirs:
        raise DataError(
            f"dataset '{entry.name}' is not the data this model was trained on (manifest hash "
            f"{ours[:12]} != {theirs[:12]}); its splits may overlap the training data",
            hint="evaluate on the prepared dataset the run used, unchanged",
        )
    if meta.preprocess.image != data.image_spec:
        raise DataError(
            f"the cache of '{entry.name}' holds {data.image_spec}; the model expects "
            f"{meta.preprocess.image}",
            hint="re-run prepare with the model's image settings",
        )


def _subgroups(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    columns = {
        "sex": frame[schema.SEX].astype("object").fillna("unknown").to_numpy(),
        "age band": frame[schema.AGE].map(schema.age_band).to_numpy(),
        "view": frame[schema.VIEW].astype("object").fillna("unknown").to_numpy(),
    }
    return {k: v for k, v in columns.items() if not (v == "unknown").all()}


def _summarize(cfg: EvaluateConfig, val: Scored, scored: Scored) -> dict[str, Any]:
    method, target = parse_threshold_rule(cfg.threshold)
    threshold = choose_threshold(val.labels, val.probabilities, method, target)
    frame = scored.frame
    patients = frame[schema.PATIENT_ID]
    summary = summarize(
        scored.labels, scored.probabilities, threshold.value,
        groups=patients.to_numpy() if patients.notna().all() else None,
        subgroups=_subgroups(frame), orders={"age band": AGE_BAND_ORDER},
        n_boot=cfg.n_boot, seed=cfg.seed,
    )  # fmt: skip
    summary["threshold_rule"] = {**threshold.to_dict(), "chosen_on": "val"}
    return summary


def evaluate(
    ref: str,
    cfg: EvaluateConfig,
    settings: Settings | None = None,
    *,
    dataset: str | None = None,
    out: str | None = None,
) -> EvaluationResult:
    settings = settings or get_settings()
    parse_threshold_rule(cfg.threshold)  # a bad rule fails before any work
    url, folder = checkpoint_of(ref, settings)
    ckpt = checkpoint.load(url, settings)
    meta = ckpt.meta
    if not meta.is_binary:
        raise PneumoError(
            "evaluate reports the binary Pneumonia head; this checkpoint is multi-label"
        )
    entry = datasets.resolve(dataset or meta.dataset, settings)
    data = load_prepared(entry, settings)
    check_data(entry, data, meta)
    splits = tuple(dict.fromkeys(("val", cfg.split)))
    model = checkpoint.restore_model(ckpt)
    scored = score_splits(model, data, splits, meta.preprocess, settings)
    metrics = _summarize(cfg, scored["val"], scored[cfg.split])
    target = out or storage.join(folder or storage.parent_of(url), paths.evaluation_dir(cfg.split))
    context = {
        "run_id": meta.run_id or None, "checkpoint": url, "split": cfg.split,
        "dataset": entry.name, "manifest_hash": meta.manifest_hash,
        "backbone": meta.model.backbone, "epoch": meta.epoch,
        "val_auroc_at_training": meta.val_auroc,
    }  # fmt: skip
    test = scored[cfg.split]
    errors = _errors(test, float(metrics["threshold"]), data, cfg.split, model, meta, settings)
    files = write_evaluation_report(
        metrics, test.labels, test.probabilities, target,
        title=f"{entry.name} · {cfg.split} split", context=context, settings=settings,
        errors=errors,
    )  # fmt: skip
    files[paths.PREDICTIONS] = _write_predictions(test, target, settings)
    if meta.run_id:
        _log_to_mlflow(meta.run_id, cfg.split, metrics, files, settings)
    return EvaluationResult(target, metrics, files)


def _errors(
    scored: Scored, threshold: float, data: PreparedData, split: str, model: torch.nn.Module,
    meta: CheckpointMeta, settings: Settings,
) -> ErrorAnalysis:  # fmt: skip
    """The split's most confident errors, with the maps the exported model would give."""
    ids = scored.frame[schema.IMAGE_ID].astype(str).tolist()
    cases, counts = worst_errors(scored.labels, scored.probabilities, threshold, ids)
    pixels = pixels_of(data, split, [c.index for c in cases], settings)
    explain = explainer(model, meta.preprocess, meta.model.backbone)
    return analyse_errors(cases, counts, pixels, threshold, explain)


def _write_predictions(scored: Scored, folder: str, settings: Settings) -> str:
    frame = scored.frame
    table = pd.DataFrame(
        {
            schema.IMAGE_ID: frame[schema.IMAGE_ID],
            schema.PATIENT_ID: frame[schema.PATIENT_ID],
            "label": scored.labels,
            "probability": scored.probabilities,
        }
    )
    url = storage.join(folder, paths.PREDICTIONS)
    storage.write_table(url, table, settings)
    return url


def _log_to_mlflow(
    run_id: str, split: str, metrics: dict[str, Any], files: dict[str, str], settings: Settings
) -> None:
    tracker = Tracker(settings)
    values: dict[str, float] = {}
    for key in LOGGED:
        item = metrics.get(key)
        value = item.get("value") if isinstance(item, dict) else item
        if value is not None:
            values[f"{split}_{key}"] = float(value)
    tracker.metrics(run_id, values, step=0)
    for name, file_url in files.items():
        data = storage.read_bytes(file_url, settings)
        tracker.artifact(run_id, data, name, paths.evaluation_dir(split))


def run(
    ref: str,
    config: str | None,
    overrides: list[str],
    *,
    split: str | None = None,
    dataset: str | None = None,
    out: str | None = None,
) -> EvaluationResult:
    extra = overrides + ([f"evaluate.split={split}"] if split else [])
    return evaluate(ref, load_config(config, extra).evaluate, dataset=dataset, out=out)
