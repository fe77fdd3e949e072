"""`pneumo register RUN`: export the run's best model to ONNX, check it, card it, register it.

Steps, each of which stops with a clear error rather than registering something doubtful:

1. the run's best checkpoint and its test evaluation (``eval-test/metrics.json``; evaluated
   now when missing or made from another checkpoint) — the card's metrics and the
   validation-chosen threshold come from there;
2. ONNX export (dynamic batch) and parity on real validation images from the cache:
   every probability within ``registry.parity_tolerance`` of PyTorch's, or registration fails;
3. the out-of-distribution reference (embeddings of training images, threshold chosen on the
   validation images; stages/ood_reference.py);
4. the package (model.onnx, card.json, card.html, verification.npz, the hashes of the
   train and validation images, training_images.json, and reference.npz) written to
   ``runs/<id>/model/`` and logged to the MLflow run under ``packages/<id>/``;
5. a new version of the registered model, with alias ``challenger``.
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pneumo import paths, storage
from pneumo.config import EvaluateConfig, RegisterConfig, load_config
from pneumo.data import schema
from pneumo.data.cache import CacheReader
from pneumo.data.prepared import PreparedData, load_prepared
from pneumo.data.sources import datasets
from pneumo.errors import PneumoError
from pneumo.models import checkpoint
from pneumo.models.checkpoint import Checkpoint
from pneumo.models.meta import CheckpointMeta
from pneumo.packaging import package, signature
from pneumo.packaging.export import export_onnx, parity, with_metadata
from pneumo.packaging.mlflow_model import mlflow_files
from pneumo.packaging.modelcard import FORMAT, ModelCard
from pneumo.packaging.registry import CARD_SHA_TAG, CHALLENGER, ModelRegistry
from pneumo.packaging.training_images import training_images_bytes
from pneumo.reports.modelcard_page import render_html as card_page
from pneumo.reports.terminal import registration_summary
from pneumo.settings import Settings, get_settings
from pneumo.stages.evaluate import current_evaluation, evaluate
from pneumo.stages.ood_reference import build_reference
from pneumo.training.runs import checkpoint_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Registered:
    name: str
    version: str
    run_id: str
    folder: str
    card: ModelCard

    def summary(self) -> str:
        card = self.card.to_dict()
        return registration_summary(self.name, self.version, self.run_id, self.folder, card)


def _test_metrics(
    ref: str, meta: CheckpointMeta, evaluation: str, settings: Settings
) -> dict[str, Any]:
    metrics = current_evaluation(evaluation, meta, settings)
    if metrics is not None:
        return metrics
    log.info("no test evaluation of this checkpoint in %s; running `pneumo evaluate`", evaluation)
    result = evaluate(ref, EvaluateConfig(split="test"), settings, out=evaluation)
    document: dict[str, Any] = storage.read_json(result.files[paths.METRICS], settings)
    return document


def _parity_images(data: PreparedData, n: int, settings: Settings) -> np.ndarray:
    val = data.split("val").head(n)
    if val.empty:
        raise PneumoError(f"{data.folder} has no validation images to check the export on")
    reader = CacheReader(data.cache, settings)
    rows = zip(val[schema.SHARD], val[schema.SHARD_INDEX], strict=True)
    return np.stack([reader.image(s, int(i)) for s, i in rows])


def _export(
    ckpt: Checkpoint, data: PreparedData, cfg: RegisterConfig, threshold: float, settings: Settings
) -> tuple[bytes, package.Verification, dict[str, Any]]:
    """(ONNX bytes, verification images, parity record); refuses an export that disagrees."""
    model, spec = checkpoint.restore_model(ckpt), ckpt.meta.preprocess
    log.info("exporting %s to ONNX (opset %d)", ckpt.meta.model.backbone, cfg.opset)
    onnx = export_onnx(model, spec, cfg.opset, ckpt.meta.model.backbone)
    props = signature.metadata(spec, threshold, FORMAT, cfg.name, str(ckpt.meta.run_id))
    onnx = with_metadata(onnx, props)
    pixels = _parity_images(data, cfg.parity_images, settings)
    with torch.inference_mode():
        check = parity(model, onnx, pixels, spec)
    worst = check.max_abs_diff
    if not worst <= cfg.parity_tolerance:
        raise PneumoError(
            f"ONNX and PyTorch disagree: max |Δp| = {worst:.2e} on {len(pixels)} validation "
            f"images, above the tolerance {cfg.parity_tolerance:.0e}; nothing was registered",
            hint="report this with the backbone name; try another registry.opset",
        )
    record = {
        "images": len(pixels), "split": "val", "max_abs_diff": worst,
        "tolerance": cfg.parity_tolerance,
    }  # fmt: skip
    return onnx, package.Verification(pixels, check.torch_probabilities), record


def _publish(
    reg: ModelRegistry,
    run_id: str,
    files: dict[str, bytes],
    target: str,
    artifact_path: str,
    settings: Settings,
) -> str:
    """Write the package, made an MLflow model, to ``target`` and to the run's artifacts;
    returns its ``runs:/`` URI."""
    try:
        reg.client.get_run(run_id)
    except Exception:
        raise PneumoError(
            f"run {run_id} is not in the MLflow tracking store {reg.uri}",
            hint="register with the same PNEUMO_MLFLOW_TRACKING_URI / PNEUMO_ROOT as training",
        ) from None
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / paths.MODEL_DIR
        package.write_files(local, files)
        for name, data in files.items():
            storage.write_bytes(storage.join(target, name), data, settings)
        reg.client.log_artifacts(run_id, str(local), artifact_path)
    return f"runs:/{run_id}/{artifact_path}"


def register(
    ref: str,
    cfg: RegisterConfig,
    settings: Settings | None = None,
    *,
    evaluation: str | None = None,
    out: str | None = None,
) -> Registered:
    """Register the model of ``ref``; ``evaluation`` is the folder of its test evaluation
    (default ``eval-test/`` in the run), ``out`` where the package is written (default
    ``model/`` in the run)."""
    settings = settings or get_settings()
    url, folder = checkpoint_of(ref, settings)
    folder = folder or storage.parent_of(url)
    ckpt = checkpoint.load(url, settings)
    meta = ckpt.meta
    if not meta.is_binary or not meta.run_id:
        raise PneumoError(
            "register packages binary Pneumonia models from `pneumo train` runs; this "
            "checkpoint is " + ("multi-label" if not meta.is_binary else "not from a run")
        )
    test_folder = evaluation or storage.join(folder, paths.evaluation_dir("test"))
    metrics = _test_metrics(ref, meta, test_folder, settings)
    target = out or storage.join(folder, paths.MODEL_DIR)
    data = load_prepared(datasets.resolve(meta.dataset, settings), settings)
    threshold = metrics.get("threshold")
    if not isinstance(threshold, int | float):
        raise PneumoError(
            f"the test evaluation in {test_folder} carries no operating threshold",
            hint="evaluate the run again (`pneumo evaluate`), then register",
        )
    onnx, verification, parity_record = _export(ckpt, data, cfg, float(threshold), settings)
    reference = build_reference(onnx, data, ckpt.meta.preprocess, settings)
    reference_bytes = reference.to_bytes()
    ood = {
        **reference.summary(), "file": paths.REFERENCE_FILE,
        "sha256": package.sha256_bytes(reference_bytes),
    }  # fmt: skip
    export = {
        "sha256": package.sha256_bytes(onnx), "opset": cfg.opset, "parity": parity_record,
        "ood": ood,
    }  # fmt: skip
    card = ModelCard.build(cfg.name, meta, metrics, data.card, export)
    missing = card.missing()
    if missing:
        log.warning("the model card is incomplete (%s): promote will refuse it", ", ".join(missing))
    seen = training_images_bytes(data.manifest, data.name, meta.manifest_hash)
    files = package.package_files(
        onnx, card, card_page(card.to_dict()), verification, seen, reference_bytes
    )
    # Each registration gets its own artifact folder: a version's files never change later.
    artifact_path = f"{paths.ARTIFACT_PACKAGES_DIR}/{uuid.uuid4().hex[:12]}"
    size = sum(len(data) for data in files.values())
    files.update(mlflow_files(card, verification.pixels[0], meta.run_id, artifact_path, size))
    reg = ModelRegistry(settings, cfg.name)
    source = _publish(reg, meta.run_id, files, target, artifact_path, settings)
    auroc = card.metrics.auroc if card.metrics else None
    test_auroc = auroc.value if auroc else None
    tags = {
        "model_sha256": str(card.model_sha256),
        CARD_SHA_TAG: package.sha256_bytes(files[paths.CARD_FILE]),
        "manifest_hash": meta.manifest_hash,
        "backbone": meta.model.backbone,
        "test_auroc": "" if test_auroc is None else f"{test_auroc:.6f}",
        "threshold": str(card.operating_threshold()),
        "card_complete": str(not missing).lower(),
    }
    description = f"{meta.model.backbone} from run {meta.run_id}"
    version = reg.create_version(source, meta.run_id, tags, description=description)
    reg.set_alias(CHALLENGER, version)
    record = {"name": cfg.name, "version": version, "run_id": meta.run_id, "source": source}
    storage.write_json(storage.join(target, paths.REGISTERED), record, settings, indent=None)
    return Registered(cfg.name, version, meta.run_id, target, card)


def run(
    ref: str,
    config: str | None,
    overrides: list[str],
    *,
    evaluation: str | None = None,
    out: str | None = None,
) -> Registered:
    return register(ref, load_config(config, overrides).registry, evaluation=evaluation, out=out)
