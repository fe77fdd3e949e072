"""What a report compares: a registered version or a training run, reduced to the same shape.

A *subject* carries a card-shaped dict (metrics with intervals, threshold, data card and
manifest hash; a registered version's real card) and, when they can be found, the test
predictions behind the curves. Versions are read through the registry (so a shared MLflow
server works from CI); runs through their folder under the runs location.
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from pneumo import storage
from pneumo.errors import PneumoError
from pneumo.packaging.modelcard import metric_summary
from pneumo.reports.comparison import Subject
from pneumo.settings import Settings


def _version_subject(ref: str, settings: Settings) -> Subject | None:
    from pneumo.packaging.registry import ModelRegistry, ModelURI

    uri = ModelURI.parse(ref)
    reg = ModelRegistry(settings, uri.name)
    if uri.alias and reg.alias(uri.alias) is None:
        return None
    version = reg.resolve(uri)
    card = reg.card(version)
    aliases = [a for a, v in reg.aliases().items() if v == version]
    label = f"{uri.name} v{version}" + (f" ({', '.join(sorted(aliases))})" if aliases else "")
    split = (card.get("metrics") or {}).get("split") or "test"
    preds = _run_predictions(reg.info(version).run_id, split, reg)
    return Subject(ref, label, card, preds, True)


def _run_predictions(run_id: str | None, split: str, reg: Any) -> pd.DataFrame | None:
    if not run_id:
        return None
    import mlflow.artifacts

    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id,
                artifact_path=f"eval-{split}/predictions.parquet",
                dst_path=tmp,
                tracking_uri=reg.uri,
            )
        except Exception:
            return None  # an older run without logged predictions: no curve, still a table
        return pd.read_parquet(path)


def _run_subject(ref: str, split: str, settings: Settings) -> Subject:
    from pneumo.training.runs import run_dir

    folder = run_dir(ref, settings)
    evaluation = storage.join(folder, f"eval-{split}")
    metrics_url = storage.join(evaluation, "metrics.json")
    if not storage.exists(metrics_url, settings):
        raise PneumoError(
            f"run {storage.name_of(folder)} has no {split} evaluation",
            hint=f"run `pneumo evaluate {storage.name_of(folder)} --split {split}` first",
        )
    metrics = json.loads(storage.read_text(metrics_url, settings))
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
    preds_url = storage.join(evaluation, "predictions.parquet")
    preds = (
        pd.read_parquet(io.BytesIO(storage.read_bytes(preds_url, settings)))
        if storage.exists(preds_url, settings)
        else None
    )
    return Subject(ref, f"run {storage.name_of(folder)[:8]}", card, preds, False)


def _data_card(dataset: str | None, settings: Settings) -> dict[str, Any]:
    if not dataset:
        return {}
    from pneumo.data.prepared import read_data_card
    from pneumo.data.sources import datasets

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
