"""`pneumo optimize VERSION`: an int8 variant of a registered version, behind a gate.

A separate step rather than a part of `register`: the float32 version stays the reference
(parity with PyTorch within 1e-4), the variant is made from any registered version, including
older ones, and records which (tag ``quantized_from``). Steps, each stopping with a clear error:

1. the version's package (through the service's loader: checksum and verification checked) and
   the prepared dataset it was trained on (same manifest hash) here;
2. int8 quantisation (:mod:`pneumo.packaging.quantize`) calibrated on ``calibration_images``
   training images from the cache (a seeded sample);
3. the gate (:mod:`pneumo.stages.int8_gate`) on the test split: AUROC, agreement of decisions at
   the carried threshold, throughput; a variant that fails is not registered;
4. the package: the int8 file, the card with the int8 model's own test metrics and a
   ``quantization`` section (method, calibration set, the gate's figures), verification images
   scored by the int8 file, the out-of-distribution reference rebuilt from its embeddings;
   written to ``runs/<id>/model-int8/`` and the run's MLflow artifacts;
5. a new version of the registered model (tags ``variant=int8``, ``quantized_from``), alias
   ``challenger``: `pneumo promote` then gates it against the champion like any candidate.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from pneumo import paths, storage
from pneumo.config import OptimizeConfig, load_config
from pneumo.data import schema
from pneumo.data.cache import CacheReader
from pneumo.data.prepared import PreparedData, load_prepared
from pneumo.data.sources import datasets
from pneumo.errors import PneumoError
from pneumo.metrics.summary import summarize
from pneumo.packaging import package
from pneumo.packaging.card_fields import metric_summary
from pneumo.packaging.mlflow_model import mlflow_files
from pneumo.packaging.modelcard import ModelCard
from pneumo.packaging.quantize import quantize_int8
from pneumo.packaging.registry import CARD_SHA_TAG, CHALLENGER, ModelRegistry
from pneumo.reports.modelcard_page import render_html as card_page
from pneumo.serving.model import LoadedModel, ort_session
from pneumo.serving.source import RegistrySource
from pneumo.serving.state import load_version
from pneumo.settings import ServeSettings, Settings, get_settings
from pneumo.stages import int8_gate
from pneumo.stages.ood_reference import build_reference
from pneumo.stages.register import _publish

VERIFY_TOLERANCE = 2e-3  # int8 kernels differ between CPUs (VNNI or not) by less than this


@dataclass(frozen=True)
class Optimized:
    name: str
    version: str
    quantized_from: str
    folder: str
    gate: int8_gate.Gate

    def summary(self) -> str:
        g = self.gate
        return "\n".join([
            f"{self.name} v{self.version}: int8 of v{self.quantized_from}, alias {CHALLENGER}",
            f"  test AUROC {g.auroc_int8:.4f} (float32 {g.auroc_float32:.4f}), decisions "
            f"agreeing {g.agreement:.1%} of {g.n}",
            f"  throughput {g.rate_int8:.1f} images/s against {g.rate_float32:.1f} "
            f"({g.speedup:.2f}x, this machine)",
            f"package: {self.folder}",
        ])  # fmt: skip


def _pixels(data: PreparedData, split: str, n: int | None, seed: int, settings: Settings) -> Any:
    rows = data.split(split)
    if rows.empty:
        raise PneumoError(f"{data.folder} has no {split} images")
    if n is not None and len(rows) > n:
        rows = rows.sample(n=n, random_state=seed).sort_index()
    reader = CacheReader(data.cache, settings)
    pixels = np.stack([reader.image(s, int(i)) for s, i in
                       zip(rows[schema.SHARD], rows[schema.SHARD_INDEX], strict=True)])  # fmt: skip
    return rows, pixels


def variant_of(card: ModelCard) -> str:
    """``int8`` for a card `optimize` wrote, ``float32`` otherwise."""
    extra = card.model.model_extra if card.model is not None else None
    return str((extra or {}).get("variant") or "float32")


def _data_of(card: ModelCard, settings: Settings) -> PreparedData:
    dataset = card.data.dataset if card.data else None
    if not dataset:
        raise PneumoError(f"the card of {card.name} names no dataset to calibrate and gate on")
    data = load_prepared(datasets.resolve(dataset, settings), settings)
    if card.data is not None and data.card.get("manifest_hash") != card.data.manifest_hash:
        raise PneumoError(
            f"the prepared dataset '{dataset}' here is not the one this model was trained on",
            hint="prepare it again as it was (same data, same settings), then optimize",
        )
    return data


def _card(
    loaded: LoadedModel, int8: bytes, gate: int8_gate.Gate, test: dict[str, Any],
    quantization: dict[str, Any], ood: dict[str, Any], parity: dict[str, Any],
) -> ModelCard:  # fmt: skip
    """The float32 version's card, made the int8 variant's: its own metrics, file, reference."""
    doc = loaded.card.to_dict()
    doc["created"] = datetime.now(UTC).isoformat(timespec="seconds")
    doc["model"] = {**doc.get("model", {}), "variant": "int8"}
    doc["metrics"] = {**metric_summary(test), "split": "test", "dataset": test["dataset"]}
    doc["parity"] = parity
    doc["model_sha256"] = package.sha256_bytes(int8)
    doc["ood"] = ood
    doc["quantization"] = {**quantization, "gate": gate.to_dict()}
    return ModelCard.from_dict(doc, f"the int8 card of {loaded.name}")


@dataclass(frozen=True)
class _Variant:
    onnx: bytes
    session: Any  # ONNX Runtime's, on the int8 file
    gate: int8_gate.Gate
    probabilities: np.ndarray  # the int8 file's, on the test split
    test: Any  # the test split's manifest rows
    quantization: dict[str, Any]


def _quantise(
    loaded: LoadedModel, onnx: bytes, data: PreparedData, cfg: OptimizeConfig, settings: Settings
) -> _Variant:
    """The int8 file and its gate's figures; a :class:`PneumoError` when it fails the gate."""
    calib_rows, calib = _pixels(data, "train", cfg.calibration_images, cfg.seed, settings)
    int8 = quantize_int8(onnx, calib, cfg.calibration)
    session = ort_session(int8)
    test_rows, test_pixels = _pixels(data, "test", None, cfg.seed, settings)
    labels = test_rows[schema.LABEL].to_numpy(np.int64)
    if np.unique(labels).size < 2:
        raise PneumoError(
            f"the test split of '{data.name}' holds one class only: no AUROC to gate int8 on"
        )
    gate, p8 = int8_gate.judge(
        loaded.session, session, loaded.spec, test_pixels, labels, loaded.threshold,
        cfg.max_auroc_drop, cfg.min_agreement,
    )  # fmt: skip
    failed = gate.failures()
    if failed:
        raise PneumoError(
            f"the int8 variant of {loaded.name} v{loaded.version} fails its gate: "
            + "; ".join(failed)
            + "; nothing was registered",
            hint="keep serving float32, or try optimize.calibration=percentile",
        )
    ids = ",".join(sorted(calib_rows[schema.IMAGE_ID].astype(str)))
    quantization = {
        "from_version": loaded.version, "format": "QDQ", "weights": "int8, per output channel",
        "activations": "uint8, per tensor", "calibration": {
            "method": cfg.calibration, "split": "train", "images": len(calib), "seed": cfg.seed,
            "image_ids_sha256": hashlib.sha256(ids.encode()).hexdigest(),
        },
    }  # fmt: skip
    return _Variant(int8, session, gate, p8, test_rows, quantization)


def _files(
    loaded: LoadedModel, pkg: package.Package, variant: _Variant, data: PreparedData,
    cfg: OptimizeConfig, settings: Settings,
) -> tuple[ModelCard, dict[str, bytes], package.Verification]:  # fmt: skip
    """The int8 package's card and files (without MLflow's)."""
    labels = variant.test[schema.LABEL].to_numpy(np.int64)
    patients = variant.test[schema.PATIENT_ID]
    summary = summarize(
        labels, variant.probabilities, loaded.threshold,
        groups=patients.to_numpy() if patients.notna().all() else None,
        n_boot=cfg.n_boot, seed=cfg.seed,
    )  # fmt: skip
    summary["dataset"] = data.name
    check = pkg.verification
    verified = int8_gate.probabilities(variant.session, loaded.spec, check.pixels)
    parity = {
        "images": len(check.pixels), "split": "val",
        "max_abs_diff": float(np.max(np.abs(verified - check.probabilities))),
        "tolerance": VERIFY_TOLERANCE, "against": f"version {loaded.version} (float32)",
    }  # fmt: skip
    reference = build_reference(variant.onnx, data, loaded.spec, settings)
    reference_bytes = reference.to_bytes()
    ood = {
        **reference.summary(), "file": paths.REFERENCE_FILE,
        "sha256": package.sha256_bytes(reference_bytes),
    }  # fmt: skip
    card = _card(loaded, variant.onnx, variant.gate, summary, variant.quantization, ood, parity)
    verification = package.Verification(check.pixels, verified)
    seen = pkg.folder / paths.TRAINING_IMAGES
    files = package.package_files(
        variant.onnx, card, card_page(card.to_dict()), verification,
        seen.read_bytes() if seen.is_file() else None, reference_bytes,
    )  # fmt: skip
    return card, files, verification


def optimize(ref: str, cfg: OptimizeConfig, settings: Settings | None = None) -> Optimized:
    """Quantise the version ``ref`` names, gate it, register the variant; see the module."""
    settings = settings or get_settings()
    serve = ServeSettings()
    if not ref.startswith("models:/"):
        raise PneumoError(
            f"optimize makes a variant of a registered version, not of {ref!r}",
            hint="give models:/NAME/N or models:/NAME@ALIAS",
        )
    source = RegistrySource(ref, settings, serve.cache_dir(settings.root))
    version = source.current()
    loaded = load_version(source, version, serve)
    if variant_of(loaded.card) == "int8":
        raise PneumoError(f"{loaded.name} v{version} is already int8")
    info = source.registry.info(version)
    run_id = info.run_id or loaded.card.run_id
    if not run_id:
        raise PneumoError(f"{loaded.name} v{version} has no run to publish its variant beside")
    data = _data_of(loaded.card, settings)
    pkg = package.read_package(source.fetch(version))
    variant = _quantise(loaded, pkg.onnx, data, cfg, settings)
    card, files, verification = _files(loaded, pkg, variant, data, cfg, settings)
    artifact_path = f"{paths.ARTIFACT_PACKAGES_DIR}/{uuid.uuid4().hex[:12]}"
    size = sum(len(b) for b in files.values())
    files.update(mlflow_files(card, verification.pixels[0], run_id, artifact_path, size))
    reg = ModelRegistry(settings, loaded.name)
    target = storage.join(settings.runs, run_id, paths.MODEL_INT8_DIR)
    uri = _publish(reg, run_id, files, target, artifact_path, settings)
    auroc = card.metrics.auroc if card.metrics else None
    tags = {
        **{k: v for k, v in info.tags.items() if k in KEPT_TAGS},
        "model_sha256": str(card.model_sha256),
        CARD_SHA_TAG: package.sha256_bytes(files[paths.CARD_FILE]),
        "test_auroc": "" if auroc is None or auroc.value is None else f"{auroc.value:.6f}",
        "variant": "int8", "quantized_from": version,
    }  # fmt: skip
    new = reg.create_version(uri, run_id, tags, description=f"int8 of version {version}")
    reg.set_alias(CHALLENGER, new)
    return Optimized(loaded.name, new, version, target, variant.gate)


KEPT_TAGS = ("manifest_hash", "backbone", "threshold", "card_complete")


def run(ref: str, config: str | None, overrides: list[str]) -> Optimized:
    return optimize(ref, load_config(config, overrides).optimize)
