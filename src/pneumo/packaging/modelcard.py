"""The model card: what a model is, what it was trained and tested on, and what it is not for.

One JSON document (``card.json``, format ``pneumo-model/1``) that the service returns at
``GET /v1/model``, the promotion gate reads, and a readable page (``card.html``) renders.
`register` builds it (:meth:`ModelCard.build`) from the run's checkpoint, its test evaluation and
its data card; nothing in it is typed by hand except the intended-use text. :class:`ModelCard`
types it; a card reads back exactly as it was written (fields it did not carry stay absent), so
cards of earlier releases load, and ``to_dict()`` gives the JSON document unchanged. This module
imports neither torch nor MLflow.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from pneumo.errors import PneumoError
from pneumo.models.meta import CheckpointMeta
from pneumo.packaging.card_fields import (
    INTENDED_USE,
    limitations,
    metric_summary,
    missing_fields,
    public_fields,
)
from pneumo.packaging.provenance import code_version
from pneumo.packaging.signature import EMBEDDING_NAME, INPUT_NAME, OUTPUT_NAME
from pneumo.preprocess import PreprocessSpec

FORMAT = "pneumo-model/1"
PREPROCESSING_STEPS = (
    "file bytes → pneumo.data.decode.image.decode (8-bit gray; 16-bit scaled from its bit depth; "
    "alpha over black; DICOM modality LUT, VOI LUT/window, MONOCHROME1 inverted; EXIF "
    "orientation) → resize to a square (see image.resize) → x/255 → (intensity per_image: "
    "(x - its own mean) / max(its own std, 0.001)) → (x - mean) / std → "
    "float32 (batch, 1, size, size)"
)


class _Section(BaseModel):
    # extra="allow": a field this release does not know (written by a newer one) is kept.
    model_config = ConfigDict(extra="allow", frozen=True, protected_namespaces=())


class TensorInfo(_Section):
    name: str
    shape: list[str | int]
    dtype: str | None = None
    meaning: str | None = None


class CardModel(_Section):
    backbone: str | None = None
    head: str | None = None
    classes: list[str] | None = None
    epoch: int | None = None
    val_auroc: float | None = None
    input: TensorInfo | None = None
    output: TensorInfo | None = None
    embedding: TensorInfo | None = None  # cards since the embedding output (0.3)
    onnx_opset: int | None = None


class CardImage(_Section):
    size: int
    resize: Literal["pad", "stretch", "crop"] = "pad"
    max_pixels: int = 178_956_970


class CardPreprocessing(_Section):
    image: CardImage
    mean: float
    std: float
    scale: float | None = None
    intensity: Literal["dataset", "per_image"] = "dataset"
    steps: str | None = None

    def spec(self) -> PreprocessSpec:
        return PreprocessSpec.from_dict(self.model_dump(mode="json"))


class CardThreshold(_Section):
    value: float | None = None
    method: str | None = None
    target: float | None = None
    chosen_on: str | None = None
    # what the threshold gave on the split that chose it (cards since 0.2)
    val_sensitivity: float | None = None
    val_specificity: float | None = None
    n_val: int | None = None


class MetricValue(_Section):
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None


class CardMetrics(_Section):
    split: str | None = None
    dataset: str | None = None
    n: int | None = None
    positives: int | None = None
    prevalence: float | None = None
    resampling: str | None = None
    ci_level: float | None = None
    ece: float | None = None
    brier: float | None = None
    auroc: MetricValue | None = None
    auprc: MetricValue | None = None
    accuracy: MetricValue | None = None
    sensitivity: MetricValue | None = None
    specificity: MetricValue | None = None
    ppv: MetricValue | None = None
    npv: MetricValue | None = None


class CardData(_Section):
    dataset: str | None = None
    manifest_hash: str | None = None
    card: dict[str, Any] | None = None


class CardParity(_Section):
    images: int | None = None
    split: str | None = None
    max_abs_diff: float | None = None
    tolerance: float | None = None


class CardOOD(_Section):
    """The out-of-distribution reference (packaging.reference) and its threshold."""

    method: str | None = None
    k: int | None = None
    bank_images: int | None = None
    features: int | None = None
    threshold: float | None = None
    quantile: float | None = None
    chosen_on: str | None = None
    val_images: int | None = None
    file: str | None = None
    sha256: str | None = None
    drift: dict[str, Any] | None = None  # the drift reference's record (monitoring.baseline)


class ModelCard(_Section):
    format: Literal["pneumo-model/1"]
    name: str | None = None
    created: str | None = None
    run_id: str | None = None
    model: CardModel | None = None
    preprocessing: CardPreprocessing | None = None
    threshold: CardThreshold | None = None
    metrics: CardMetrics | None = None
    data: CardData | None = None
    code: dict[str, Any] | None = None
    parity: CardParity | None = None
    model_sha256: str | None = None
    ood: CardOOD | None = None
    intended_use: str | None = None
    limitations: list[str] | None = None

    @model_validator(mode="before")
    @classmethod
    def _known_format(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r} is not {FORMAT!r}")
        return data

    @classmethod
    def from_dict(cls, data: Any, source: str) -> ModelCard:
        """A card from its JSON document; a clear error naming ``source`` otherwise."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'card'}: {e['msg']}" for e in exc.errors()
            )
            raise PneumoError(
                f"{source} is not a pneumo model card ({FORMAT}): {problems}",
                hint="register the model again with `pneumo register`",
            ) from None

    def to_dict(self) -> dict[str, Any]:
        """The JSON document, with exactly the fields the card was written with."""
        return self.model_dump(mode="json", exclude_unset=True)

    def missing(self) -> list[str]:
        return missing_fields(self.to_dict())

    def preprocess_spec(self) -> PreprocessSpec:
        if self.preprocessing is None:
            raise PneumoError(f"the card of {self.name} has no preprocessing")
        return self.preprocessing.spec()

    def operating_threshold(self) -> float:
        if self.threshold is None or self.threshold.value is None:
            raise PneumoError(f"the card of {self.name} has no operating threshold")
        return self.threshold.value

    @classmethod
    def build(
        cls,
        name: str,
        meta: CheckpointMeta,
        metrics: dict[str, Any],
        data_card: dict[str, Any],
        export: dict[str, Any],
    ) -> ModelCard:
        """The card of ``meta``'s model; ``metrics`` is its test evaluation's metrics.json and
        ``export`` holds ``sha256``, ``opset`` and the ``parity`` record of its ONNX file, and
        ``ood`` the out-of-distribution reference's record (packaging.reference), if any."""
        size = meta.preprocess.image.size
        rule = metrics.get("threshold_rule") or {}
        summary = metric_summary(metrics)
        model = {
            "backbone": meta.model.backbone, "head": meta.head, "classes": list(meta.classes),
            "epoch": meta.epoch, "val_auroc": meta.val_auroc,
            "input": {
                "name": INPUT_NAME, "shape": ["batch", 1, size, size], "dtype": "uint8",
                "meaning": "decoded grayscale pixels; the graph normalises them",
            },
            "output": {
                "name": OUTPUT_NAME, "shape": ["batch", 1], "dtype": "float32",
                "meaning": "P(pneumonia)",
            },
            "onnx_opset": export["opset"],
        }  # fmt: skip
        ood = export.get("ood")
        if ood:
            model["embedding"] = {
                "name": EMBEDDING_NAME, "shape": ["batch", ood["features"]], "dtype": "float32",
                "meaning": "pooled features the classifier reads",
            }  # fmt: skip
        threshold = {k: rule.get(k) for k in ("method", "target", "chosen_on")}
        achieved = ("val_sensitivity", "val_specificity", "n_val")
        threshold.update({k: rule[k] for k in achieved if k in rule})
        document = {
            "format": FORMAT,
            "name": name,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "run_id": meta.run_id,
            "model": model,
            "preprocessing": {**meta.preprocess.to_dict(), "steps": PREPROCESSING_STEPS},
            "threshold": {"value": metrics.get("threshold"), **threshold},
            "metrics": summary,
            "data": {
                "dataset": meta.dataset,
                "manifest_hash": meta.manifest_hash,
                "card": public_fields(data_card),
            },
            "code": {**code_version(), "libraries": meta.versions},
            "parity": export["parity"],
            "model_sha256": export["sha256"],
            **({"ood": ood} if ood else {}),
            "intended_use": INTENDED_USE,
            "limitations": limitations(data_card, summary),
        }
        return cls.from_dict(document, f"the card of {name}")
