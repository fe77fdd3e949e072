"""`pneumo report`: two models side by side; first, what each of them is.

What a report compares is a registered version or a training run, reduced to the same shape.
A *subject* carries a card-shaped dict (metrics with intervals, threshold, data card and
manifest hash; a registered version's real card) and, when they can be found, the test
predictions behind the curves. Versions are read through the registry (so a shared MLflow
server works from CI); runs through their folder under the runs location.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pneumo import paths, storage
from pneumo.config import load_config
from pneumo.data.prepared import read_data_card
from pneumo.data.sources import datasets
from pneumo.errors import PneumoError
from pneumo.packaging.card_fields import metric_summary
from pneumo.packaging.external_results import result_record, results_in
from pneumo.packaging.registry import ModelRegistry, ModelURI
from pneumo.reports.comparison import Report, Subject, write_comparison
from pneumo.settings import Settings, get_settings
from pneumo.training.runs import run_dir


def _version_subject(ref: str, settings: Settings) -> Subject | None:
    uri = ModelURI.parse(ref)
    reg = ModelRegistry(settings, uri.name)
    if uri.alias and reg.alias(uri.alias) is None:
        return None
    version = reg.resolve(uri)
    card = reg.card(version).to_dict()
    aliases = [a for a, v in reg.aliases().items() if v == version]
    label = f"{uri.name} v{version}" + (f" ({', '.join(sorted(aliases))})" if aliases else "")
    split = (card.get("metrics") or {}).get("split") or "test"
    info = reg.info(version)
    preds = _run_predictions(info.run_id, split, reg)
    return Subject(ref, label, card, preds, True, results_in(info.tags))


def _run_predictions(run_id: str | None, split: str, reg: ModelRegistry) -> pd.DataFrame | None:
    if not run_id:
        return None
    import mlflow.artifacts

    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id,
                artifact_path=f"{paths.evaluation_dir(split)}/{paths.PREDICTIONS}",
                dst_path=tmp,
                tracking_uri=reg.uri,
            )
        except Exception:
            return None  # an older run without logged predictions: no curve, still a table
        return pd.read_parquet(path)


def _run_subject(ref: str, split: str, settings: Settings) -> Subject:
    folder = run_dir(ref, settings)
    evaluation = storage.join(folder, paths.evaluation_dir(split))
    metrics_url = storage.join(evaluation, paths.METRICS)
    if not storage.exists(metrics_url, settings):
        raise PneumoError(
            f"run {storage.name_of(folder)} has no {split} evaluation",
            hint=f"run `pneumo evaluate {storage.name_of(folder)} --split {split}` first",
        )
    metrics = storage.read_json(metrics_url, settings)
    context = metrics.get("context", {})
    card = {
        "metrics": metric_summary(metrics),
        "threshold": {"value": metrics.get("threshold"), **(metrics.get("threshold_rule") or {})},
        "data": {
            "dataset": context.get("dataset"),
            "manifest_hash": context.get("manifest_hash"),
            "card": _data_card(context.get("dataset"), settings),
        },
        "model": {"backbone": context.get("backbone"), "epoch": context.get("epoch")},
        "run_id": context.get("run_id"),
    }
    preds_url = storage.join(evaluation, paths.PREDICTIONS)
    exists = storage.exists(preds_url, settings)
    preds = storage.read_table(preds_url, settings) if exists else None
    label = f"run {storage.name_of(folder)[:8]}"
    return Subject(ref, label, card, preds, False, _run_externals(folder, settings))


def _run_externals(folder: str, settings: Settings) -> dict[str, dict[str, Any]]:
    """The external evaluations written in a run's folder, as version tags would hold them."""
    out: dict[str, dict[str, Any]] = {}
    prefix = paths.external_dir("")
    for name in sorted(storage.listdir(folder, settings)):
        url = storage.join(folder, name, paths.METRICS)
        if not name.startswith(prefix) or not storage.exists(url, settings):
            continue
        metrics = storage.read_json(url, settings)
        context = metrics.get("context", {})
        report = storage.join(folder, name, paths.REPORT_MD)
        dataset, split = context.get("external_dataset", "?"), context.get("split", "all")
        out[name.removeprefix(prefix)] = result_record(metrics, dataset, split, report)
    return out


def _data_card(dataset: str | None, settings: Settings) -> dict[str, Any]:
    if not dataset:
        return {}
    try:
        return read_data_card(datasets.resolve(dataset, settings), settings)
    except (PneumoError, FileNotFoundError):
        return {}


def resolve(ref: str, split: str, settings: Settings) -> Subject | None:
    """A subject for ``ref``; None when ``ref`` is an alias nobody holds yet."""
    if ref.startswith("models:/"):
        return _version_subject(ref, settings)
    if Path(ref).suffix == ".pt":
        raise PneumoError("report compares runs or registered versions, not checkpoint files")
    return _run_subject(ref, split, settings)


@dataclass(frozen=True)
class Compared:
    report: Report

    def summary(self) -> str:
        gate = self.report.gate
        verdict = "" if gate is None else f" (gate {'PASS' if gate.passed else 'FAIL'})"
        files = self.report.files
        return f"report{verdict}: {files[paths.REPORT_MD]}\n        {files[paths.REPORT_HTML]}"


def run(
    candidate: str,
    baseline: str,
    config: str | None,
    overrides: list[str],
    *,
    out: str | None = None,
    split: str = "test",
) -> Compared:
    """Compare ``candidate`` with ``baseline`` (skipped when they are the same reference)."""
    settings = get_settings()
    cfg = load_config(config, overrides)
    a = resolve(candidate, split, settings)
    if a is None:
        raise PneumoError(f"{candidate} points at no model yet", hint="`pneumo register` first")
    b = resolve(baseline, split, settings) if baseline != candidate else None
    target = out or storage.join(settings.root, paths.REPORTS_DIR, "latest")
    return Compared(write_comparison(a, b, target, cfg.promote, settings))
