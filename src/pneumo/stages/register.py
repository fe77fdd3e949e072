"""`pneumo register RUN`: export the run's best model to ONNX, check it, card it, register it.

Steps, each of which stops with a clear error rather than registering something doubtful:

1. the run's best checkpoint and its test evaluation (``eval-test/metrics.json``; evaluated
   now when missing or made from another checkpoint) — the card's metrics and the
   validation-chosen threshold come from there;
2. ONNX export (dynamic batch) and parity on real validation images from the cache:
   every probability within ``datasets.parity_tolerance`` of PyTorch's, or registration fails;
3. the package (model.onnx, card.json, card.html, verification.npz) written to
   ``runs/<id>/model/`` and logged to the MLflow run under ``model/``;
4. a new version of the registered model, with alias ``challenger``.
"""

from __future__ import annotations

import json
import logging
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pneumo import __version__, storage
from pneumo.config import EvaluateConfig, RegisterConfig
from pneumo.data import schema
from pneumo.errors import PneumoError
from pneumo.packaging import modelcard as cards
from pneumo.packaging import package
from pneumo.packaging.registry import CHALLENGER, ModelRegistry
from pneumo.settings import Settings, get_settings

if TYPE_CHECKING:
    from pneumo.data.prepared import PreparedData

log = logging.getLogger(__name__)

PREPROCESSING_STEPS = (
    "file bytes → pneumo.data.decode.image.decode (8-bit gray; 16-bit scaled from its bit depth; "
    "alpha over black; DICOM modality LUT, VOI LUT/window, MONOCHROME1 inverted; EXIF "
    "orientation) → resize to a square (see image.resize) → x/255 → (x - mean) / std → "
    "float32 (batch, 1, size, size)"
)


@dataclass(frozen=True)
class Registered:
    name: str
    version: str
    run_id: str
    folder: str
    card: dict[str, Any]


def code_version() -> dict[str, Any]:
    """pneumo's version and, when running from a git checkout, its commit."""
    here = Path(__file__).resolve().parent
    commit: str | None = None
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
        commit = out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"pneumo": __version__, "git_commit": commit}


def _test_metrics(
    ref: str, ckpt: dict[str, Any], evaluation: str, settings: Settings
) -> dict[str, Any]:
    from pneumo.stages.evaluate import current_metrics, evaluate

    metrics = current_metrics(evaluation, ckpt, settings)
    if metrics is not None:
        return metrics
    log.info("no test evaluation of this checkpoint in %s; running `pneumo evaluate`", evaluation)
    result = evaluate(ref, EvaluateConfig(split="test"), settings, out=evaluation)
    return json.loads(storage.read_text(storage.join(result.out, "metrics.json"), settings))  # type: ignore[no-any-return]


def _parity_images(data: PreparedData, n: int, settings: Settings) -> np.ndarray:
    from pneumo.data.cache import CacheReader

    val = data.manifest[data.manifest[schema.SPLIT] == "val"].head(n)
    if val.empty:
        raise PneumoError(f"{data.folder} has no validation images to check the export on")
    reader = CacheReader(data.cache, settings)
    return np.stack(
        [
            reader.image(s, int(i))
            for s, i in zip(val[schema.SHARD], val[schema.SHARD_INDEX], strict=True)
        ]
    )


def build_card(
    name: str,
    ckpt: dict[str, Any],
    metrics: dict[str, Any],
    data_card: dict[str, Any],
    sha256: str,
    parity: dict[str, Any],
    opset: int,
) -> dict[str, Any]:
    size = int(ckpt["preprocess"]["image"]["size"])
    rule = metrics.get("threshold_rule") or {}
    summary = cards.metric_summary(metrics)
    return {
        "format": package.FORMAT,
        "name": name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_id": ckpt.get("run_id"),
        "model": {
            "backbone": ckpt["model_config"]["backbone"],
            "head": ckpt.get("head"),
            "classes": ckpt.get("classes"),
            "epoch": ckpt.get("epoch"),
            "val_auroc": ckpt.get("val_auroc"),
            "input": {
                "name": package.INPUT_NAME,
                "shape": ["batch", 1, size, size],
                "dtype": "float32",
            },
            "output": {
                "name": package.OUTPUT_NAME,
                "shape": ["batch", 1],
                "meaning": "P(pneumonia)",
            },
            "onnx_opset": opset,
        },
        "preprocessing": {**ckpt["preprocess"], "steps": PREPROCESSING_STEPS},
        "threshold": {
            "value": metrics.get("threshold"),
            "method": rule.get("method"),
            "target": rule.get("target"),
            "chosen_on": rule.get("chosen_on"),
        },
        "metrics": summary,
        "data": {
            "dataset": ckpt.get("dataset"),
            "manifest_hash": ckpt.get("manifest_hash"),
            "card": data_card,
        },
        "code": {**code_version(), "libraries": ckpt.get("versions", {})},
        "parity": parity,
        "model_sha256": sha256,
        "intended_use": cards.INTENDED_USE,
        "limitations": cards.limitations(data_card, summary),
    }


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
    import torch

    from pneumo.data.prepared import load_prepared
    from pneumo.data.sources import datasets
    from pneumo.models import checkpoint
    from pneumo.models.backbones import build_model
    from pneumo.packaging.export import export_onnx, parity
    from pneumo.preprocess import PreprocessSpec
    from pneumo.stages.evaluate import resolve_checkpoint

    settings = settings or get_settings()
    url, folder = resolve_checkpoint(ref, settings)
    folder = folder or storage.parent_of(url)
    ckpt = checkpoint.load(url, settings)
    run_id = ckpt.get("run_id")
    if ckpt.get("head") != "binary" or not run_id:
        raise PneumoError(
            "register packages binary Pneumonia models from `pneumo train` runs; this "
            "checkpoint is " + ("multi-label" if ckpt.get("head") != "binary" else "not from a run")
        )
    metrics = _test_metrics(ref, ckpt, evaluation or storage.join(folder, "eval-test"), settings)
    target = out or storage.join(folder, "model")
    data = load_prepared(datasets.resolve(ckpt["dataset"], settings), settings)

    config = ckpt["model_config"]
    model = build_model(config["backbone"], weights="none", num_outputs=config["num_outputs"])
    model.load_state_dict(ckpt["model"])
    spec = PreprocessSpec.from_dict(ckpt["preprocess"])
    log.info("exporting %s to ONNX (opset %d)", config["backbone"], cfg.opset)
    onnx = export_onnx(model, spec.image.size, cfg.opset)
    pixels = _parity_images(data, cfg.parity_images, settings)
    with torch.inference_mode():
        check = parity(model, onnx, pixels, spec)
    worst = check.max_abs_diff
    if not worst <= cfg.parity_tolerance:
        raise PneumoError(
            f"ONNX and PyTorch disagree: max |Δp| = {worst:.2e} on {len(pixels)} validation "
            f"images, above the tolerance {cfg.parity_tolerance:.0e}; nothing was registered",
            hint="report this with the backbone name; try another datasets.opset",
        )
    parity_info = {
        "images": len(pixels), "split": "val", "max_abs_diff": worst,
        "tolerance": cfg.parity_tolerance,
    }  # fmt: skip
    card = build_card(
        cfg.name, ckpt, metrics, data.card, package.sha256_bytes(onnx), parity_info, cfg.opset
    )
    missing = cards.missing_fields(card)
    if missing:
        log.warning("the model card is incomplete (%s): promote will refuse it", ", ".join(missing))
    verification = package.Verification(pixels, check.torch_probabilities)

    reg = ModelRegistry(settings, cfg.name)
    try:
        run = reg.client.get_run(run_id)
    except Exception:
        raise PneumoError(
            f"run {run_id} is not in the MLflow tracking store {reg.uri}",
            hint="register with the same PNEUMO_MLFLOW_TRACKING_URI / PNEUMO_ROOT as training",
        ) from None
    # Each registration gets its own artifact folder: a version's files never change later.
    artifact_path = f"packages/{uuid.uuid4().hex[:12]}"
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "model"
        package.write_package(local, onnx, card, cards.render_html(card), verification)
        for name in package.FILES:
            storage.write_bytes(storage.join(target, name), (local / name).read_bytes(), settings)
        reg.client.log_artifacts(run_id, str(local), artifact_path)
    source = f"{run.info.artifact_uri.rstrip('/')}/{artifact_path}"
    test_auroc = (card["metrics"].get("auroc") or {}).get("value")
    tags = {
        "model_sha256": card["model_sha256"],
        "manifest_hash": str(ckpt["manifest_hash"]),
        "backbone": str(config["backbone"]),
        "test_auroc": "" if test_auroc is None else f"{test_auroc:.6f}",
        "threshold": str(card["threshold"]["value"]),
        "card_complete": str(not missing).lower(),
    }
    version = reg.create_version(
        source, run_id, tags, description=f"{config['backbone']} from run {run_id}"
    )
    reg.set_alias(CHALLENGER, version)
    storage.write_text(
        storage.join(target, "registered.json"),
        json.dumps({"name": cfg.name, "version": version, "run_id": run_id, "source": source}),
        settings,
    )
    return Registered(cfg.name, version, run_id, target, card)
