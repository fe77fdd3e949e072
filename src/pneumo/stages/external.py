"""`pneumo evaluate MODEL --external DATASET`: a model on data it never saw, at its own threshold.

MODEL is a run, a checkpoint, a package folder or a registered version (``models:/…``; that
path is torch-free: ONNX Runtime through the service's loader). Every usable image of DATASET
(or of one of its named splits: a Kermany split folder, NIH's official ``test`` or
``train_val``) is decoded from its file with the model's preprocessing and scored. The
threshold is the one the model carries, chosen on its own validation split; it is never
re-chosen here. Images the model trained or validated on are left out and counted: byte for
byte (content hash), and re-encoded or resized copies (perceptual hash). The report is the
usual one (intervals, calibration, subgroups) with the model's own figures beside these
("expected vs observed"); the result is recorded on the run or on the registered version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pneumo import paths, storage
from pneumo.config import EvaluateConfig, load_config
from pneumo.data import schema
from pneumo.data.decode.pool import decode_many, worker_count
from pneumo.data.inventory import Inventory, take_inventory
from pneumo.data.near_duplicates import near_any
from pneumo.data.sources import datasets
from pneumo.data.sources.layout import detect
from pneumo.errors import DataError
from pneumo.metrics.summary import summarize
from pneumo.reports.error_analysis import ErrorAnalysis, analyse_errors, worst_errors
from pneumo.reports.evaluation import write_evaluation_report
from pneumo.reports.terminal import external_summary
from pneumo.settings import Settings, get_settings
from pneumo.stages.batch_scoring import score_files
from pneumo.stages.external_models import ExternalModel, load_external_model

BATCH = 32
AGE_BAND_ORDER = tuple(band for band, _, _ in schema.AGE_BANDS)


@dataclass(frozen=True)
class ExternalResult:
    out: str
    metrics: dict[str, Any]
    files: dict[str, str]
    recorded: list[str]

    def summary(self) -> str:
        return external_summary(self.metrics, self.out, self.files[paths.REPORT_MD], self.recorded)


def _named_split(inv: Inventory, layout: str) -> pd.Series:
    if layout == "kermany":
        return inv.frame[schema.IMAGE_ID].str.split("/").str[0]
    if inv.official is not None:
        return inv.official.fillna("unlisted")
    return pd.Series("all", index=inv.frame.index)


def _images(dataset: str, split: str | None, settings: Settings) -> tuple[str, pd.DataFrame]:
    """(dataset name, its images: path, label, patient and subgroup columns), of ``split``."""
    entry = datasets.resolve(dataset, settings)
    layout = detect(entry.location, settings)
    inv = take_inventory(layout, False, settings)
    if not inv.has_images or inv.frame.empty:
        raise DataError(f"dataset '{entry.name}' has no images to evaluate on")
    frame = inv.frame.assign(named_split=_named_split(inv, layout.name))
    if split is not None:
        frame = frame[frame["named_split"] == split]
        if frame.empty:
            names = ", ".join(sorted(set(_named_split(inv, layout.name))))
            raise DataError(f"dataset '{entry.name}' has no split {split!r} (it has: {names})")
    return entry.name, frame.reset_index(drop=True)


def _score(model: ExternalModel, frame: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """The frame with probability, content and perceptual hash and why an image was left out."""
    files = frame[schema.PATH].astype(str).tolist()
    workers = worker_count(settings.workers)
    scored = list(score_files(files, model.spec, model.predict, BATCH, workers))
    index = frame.index
    out = frame.assign(
        probability=pd.Series([s.probability for s in scored], index=index, dtype="float64"),
        content=pd.Series([s.record.get("content_hash") for s in scored], index=index),
        perceptual=pd.Series([s.record.get("perceptual_hash") for s in scored], index=index),
        left_out=pd.Series(None, index=index, dtype="object"),
    )
    out.loc[out["probability"].isna(), "left_out"] = "unusable"
    seen = model.seen
    if seen is not None:
        identical = out["content"].isin(seen.content_hashes) & out["left_out"].isna()
        out.loc[identical, "left_out"] = "seen_identical"
        candidates = out.index[out["left_out"].isna()]
        twins = near_any(out.loc[candidates, "perceptual"].tolist(), seen.perceptual_hashes)
        out.loc[candidates[twins], "left_out"] = "seen_twins"
    duplicate = out["content"].duplicated() & out["left_out"].isna()
    out.loc[duplicate, "left_out"] = "duplicates"
    return out


def _summary(
    model: ExternalModel, kept: pd.DataFrame, cfg: EvaluateConfig, scored: pd.DataFrame
) -> dict[str, Any]:
    y = kept[schema.LABEL].to_numpy(np.int64)
    p = kept["probability"].to_numpy(np.float64)
    patients = kept[schema.PATIENT_ID]
    subgroups = {}
    for name, column in (("sex", schema.SEX), ("view", schema.VIEW)):
        if column in kept and kept[column].notna().any():
            subgroups[name] = kept[column].astype("object").fillna("unknown").to_numpy()
    if schema.AGE in kept and kept[schema.AGE].notna().any():
        subgroups["age band"] = kept[schema.AGE].map(schema.age_band).to_numpy()
    summary = summarize(
        y, p, model.threshold, groups=patients.to_numpy() if patients.notna().all() else None,
        subgroups=subgroups, orders={"age band": AGE_BAND_ORDER}, n_boot=cfg.n_boot,
        seed=cfg.seed,
    )  # fmt: skip
    summary["threshold_rule"] = {**model.rule, "carried": True}
    summary["expected"] = model.expected
    counts = scored["left_out"].value_counts()
    keys = ("unusable", "seen_identical", "seen_twins", "duplicates")
    summary["exclusions"] = {k: int(counts.get(k, 0)) for k in keys}
    summary["exclusions"]["checked_against"] = model.seen.source if model.seen else None
    summary["exclusions"]["training_images_known"] = model.seen.images if model.seen else 0
    return summary


def _errors(
    model: ExternalModel, kept: pd.DataFrame, y: np.ndarray, p: np.ndarray
) -> ErrorAnalysis:
    """The most confident errors, decoded again from their files (a few) for their maps."""
    ids = kept[schema.IMAGE_ID].astype(str).tolist()
    cases, counts = worst_errors(y, p, model.threshold, ids)
    files = [str(kept[schema.PATH].iloc[c.index]) for c in cases]
    decoded = [pixels for _, pixels in decode_many(files, model.spec.image, 1, len(files))]
    kept_cases = [c for c, d in zip(cases, decoded, strict=True) if d is not None]  # not vanished
    size = model.spec.image.size
    pixels = [d for d in decoded if d is not None]
    stacked = np.stack(pixels) if pixels else np.zeros((0, size, size), np.uint8)
    return analyse_errors(kept_cases, counts, stacked, model.threshold, model.explain)


def evaluate_external(
    ref: str,
    dataset: str,
    cfg: EvaluateConfig,
    settings: Settings | None = None,
    *,
    split: str | None = None,
    out: str | None = None,
) -> ExternalResult:
    settings = settings or get_settings()
    model = load_external_model(ref, cfg, settings)
    name, frame = _images(dataset, split, settings)
    scored = _score(model, frame, settings)
    kept = scored[scored["left_out"].isna()].reset_index(drop=True)
    if kept.empty or kept[schema.LABEL].nunique() < 2:
        raise DataError(
            f"too few usable images of '{name}' left to evaluate on ({len(kept)}, both classes "
            "needed)",
            hint="see the report's exclusions; pick another dataset or split",
        )
    metrics = _summary(model, kept, cfg, scored)
    label = name + (f"-{split}" if split else "")
    target = out or storage.join(model.folder, paths.external_dir(label))
    context = {
        "model": model.name, "external_dataset": name, "split": split or "all",
        "images_listed": len(frame),
    }  # fmt: skip
    y, p = kept[schema.LABEL].to_numpy(np.int64), kept["probability"].to_numpy(np.float64)
    files = write_evaluation_report(
        metrics, y, p, target, title=f"{model.name} on {name} (external)", context=context,
        settings=settings, errors=_errors(model, kept, y, p),
    )  # fmt: skip
    table = kept[[schema.IMAGE_ID, schema.PATIENT_ID, schema.LABEL, "probability"]]
    files[paths.PREDICTIONS] = storage.join(target, paths.PREDICTIONS)
    storage.write_table(files[paths.PREDICTIONS], table, settings)
    recorded = model.record(label, metrics, files, name, split or "all")
    return ExternalResult(target, metrics, files, recorded)


def run(
    ref: str,
    dataset: str,
    config: str | None,
    overrides: list[str],
    *,
    split: str | None = None,
    out: str | None = None,
) -> ExternalResult:
    cfg = load_config(config, overrides).evaluate
    return evaluate_external(ref, dataset, cfg, split=split, out=out)
