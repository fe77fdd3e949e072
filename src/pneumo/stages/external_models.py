"""The model of an external evaluation: how it scores, the threshold it carries, what it has seen.

Two kinds of MODEL, one :class:`ExternalModel`:

- a registered version (``models:/name@alias``, ``models:/name/3``) or a package folder: loaded
  by the service's loader (checksum and verification images checked) and scored by ONNX
  Runtime, torch-free. Its threshold, and its own validation and test figures, come from its
  card; what it has seen from the package's ``training_images.json`` (or, for packages
  registered before that file, the prepared dataset here when its manifest is the model's);
- a run or a checkpoint: scored by PyTorch. The threshold is the one its test evaluation
  carried (the card's, once registered), else chosen now on its own validation split with the
  configured rule; its validation figures are measured now; what it has seen is its manifest.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pneumo import paths, storage
from pneumo.config import EvaluateConfig
from pneumo.data.prepared import load_prepared
from pneumo.data.sources import datasets
from pneumo.errors import PneumoError
from pneumo.explain.cam import ActivationMap, Explain
from pneumo.metrics.names import LOGGED
from pneumo.packaging.external_results import result_record, tag_of
from pneumo.packaging.modelcard import ModelCard
from pneumo.packaging.training_images import Seen, read_training_images, seen_in_manifest
from pneumo.preprocess import PreprocessSpec
from pneumo.settings import ServeSettings, Settings
from pneumo.stages.batch_scoring import Predict

log = logging.getLogger(__name__)
FIGURES = ("auroc", "accuracy", "sensitivity", "specificity")


@dataclass(frozen=True)
class Recorder:
    """Where an external result is recorded: an MLflow run (metrics and the report files) and
    a registered version (a tag); either may be absent."""

    settings: Settings
    run_id: str | None = None
    version: tuple[str, str] | None = None  # (registered model name, version)

    def __call__(
        self, label: str, metrics: dict[str, Any], files: dict[str, str], dataset: str, split: str
    ) -> list[str]:
        from mlflow.exceptions import MlflowException

        from pneumo.packaging.registry import ModelRegistry

        done: list[str] = []
        registry = ModelRegistry(self.settings, self.version[0] if self.version else "pneumonia")
        try:
            if self.run_id:
                self._log_run(registry, label, metrics, files)
                folder = paths.external_dir(label)
                done.append(f"run {self.run_id} (metrics external_{label}_*, artifacts {folder}/)")
            if self.version:
                record = result_record(metrics, dataset, split, files[paths.REPORT_MD])
                registry.set_version_tags(self.version[1], dict([tag_of(label, record)]))
                done.append(f"{self.version[0]} v{self.version[1]} (tag external/{label})")
        except MlflowException as exc:
            log.warning("the result could not be recorded in %s: %s", registry.uri, exc.message)
        return done

    def _log_run(
        self, registry: Any, label: str, metrics: dict[str, Any], files: dict[str, str]
    ) -> None:
        client, run_id = registry.client, str(self.run_id)
        for key in LOGGED:
            item = metrics.get(key)
            value = item.get("value") if isinstance(item, dict) else item
            if value is not None:
                client.log_metric(run_id, f"external_{label}_{key}", float(value))
        with tempfile.TemporaryDirectory() as tmp:
            for name, url in files.items():
                (Path(tmp) / name).write_bytes(storage.read_bytes(url, self.settings))
            client.log_artifacts(run_id, tmp, paths.external_dir(label))


@dataclass(frozen=True)
class ExternalModel:
    name: str  # for titles: "pneumonia v3", "run 1a2b3c4d (epoch 7)"
    spec: PreprocessSpec
    threshold: float
    rule: dict[str, Any]  # how the threshold was chosen, on the model's own validation split
    predict: Predict
    expected: dict[str, dict[str, Any]]  # the model's own figures: "validation", "test"
    seen: Seen | None  # None: what the model trained on is unknown here
    folder: str  # where its external reports go by default
    record: Recorder
    explain: Explain | None = None  # its activation maps; None: it has none
    notes: list[str] = field(default_factory=list)


def figures(summary: dict[str, Any], dataset: str | None, split: str) -> dict[str, Any]:
    """The figures of one evaluation that "expected vs observed" compares."""
    shown = {k: summary[k] for k in FIGURES if isinstance(summary.get(k), dict)}
    return {"dataset": dataset, "split": split, "n": summary.get("n"), **shown}


def _card_expected(card: ModelCard) -> dict[str, dict[str, Any]]:
    dataset = card.data.dataset if card.data else None
    t = card.threshold
    val = {
        "auroc": {"value": card.model.val_auroc if card.model else None},
        "sensitivity": {"value": t.val_sensitivity if t else None},
        "specificity": {"value": t.val_specificity if t else None},
    }
    val = {k: v for k, v in val.items() if v["value"] is not None}
    own = {"dataset": dataset, "split": "val", "n": t.n_val if t else None, **val}
    expected = {"validation": own}
    if card.metrics is not None:
        test = card.metrics.model_dump(mode="json", exclude_none=True)
        expected["test"] = figures(test, card.metrics.dataset or dataset, "test")
    return expected


def _local_seen(card: ModelCard, settings: Settings) -> Seen | None:
    """The model's train and val images from the prepared dataset here, if it is the model's."""
    if card.data is None or not card.data.dataset:
        return None
    try:
        data = load_prepared(datasets.resolve(card.data.dataset, settings), settings, images=False)
    except PneumoError:
        return None
    if data.card.get("manifest_hash") != card.data.manifest_hash:
        return None
    return seen_in_manifest(data.manifest, f"the prepared dataset '{data.name}' on this machine")


def _packaged(ref: str, settings: Settings) -> ExternalModel:
    from pneumo.serving.source import RegistrySource, make_source
    from pneumo.serving.state import load_version

    serve = ServeSettings()
    source = make_source(ref, settings, serve.cache_dir(settings.root))
    version = source.current()
    loaded = load_version(source, version, serve)
    card = loaded.card
    seen = read_training_images(source.fetch(version) / paths.TRAINING_IMAGES)
    seen = seen or _local_seen(card, settings)
    registered = isinstance(source, RegistrySource)
    run_id = source.registry.info(version).run_id if isinstance(source, RegistrySource) else None
    rule = card.threshold.model_dump(mode="json", exclude_none=True) if card.threshold else {}
    rule["value"] = loaded.threshold
    label = f"{loaded.name} v{version}" if registered else f"{loaded.name} ({version})"
    home = storage.join(settings.root, paths.EVALUATIONS_DIR, f"{loaded.name}-{version}")
    recorder = Recorder(settings, run_id, (loaded.name, version) if registered else None)

    def explain(pixels: Any) -> list[ActivationMap]:
        return loaded.explained(pixels)[1]

    return ExternalModel(
        label, loaded.spec, loaded.threshold, rule, loaded.predict, _card_expected(card), seen,
        home, recorder, explain if loaded.explains else None,
    )  # fmt: skip


def _registered_as(folder: str, run_id: str, epoch: int | None, settings: Settings) -> Any:
    """(name, version) when the run's package is registered and holds this very checkpoint."""
    record_url = storage.join(folder, paths.MODEL_DIR, paths.REGISTERED)
    card_url = storage.join(folder, paths.MODEL_DIR, paths.CARD_FILE)
    if not (storage.exists(record_url, settings) and storage.exists(card_url, settings)):
        return None
    card = storage.read_json(card_url, settings)
    record = storage.read_json(record_url, settings)
    same = card.get("run_id") == run_id and (card.get("model") or {}).get("epoch") == epoch
    return (str(record["name"]), str(record["version"])) if same else None


def _checkpointed(ref: str, cfg: EvaluateConfig, settings: Settings) -> ExternalModel:
    from pneumo.metrics.summary import summarize
    from pneumo.metrics.threshold import choose_threshold, parse_threshold_rule
    from pneumo.models import checkpoint
    from pneumo.stages.evaluate import check_data, current_evaluation
    from pneumo.training.runs import checkpoint_of
    from pneumo.training.scoring import explainer, predictor, score_splits

    url, run_folder = checkpoint_of(ref, settings)
    ckpt = checkpoint.load(url, settings)
    meta = ckpt.meta
    if not meta.is_binary:
        raise PneumoError("external evaluation scores the binary Pneumonia head; this is not one")
    entry = datasets.resolve(meta.dataset, settings)
    data = load_prepared(entry, settings)
    check_data(entry, data, meta)
    model = checkpoint.restore_model(ckpt)
    val = score_splits(model, data, ("val",), meta.preprocess, settings)["val"]
    folder = run_folder or storage.parent_of(url)
    carried = current_evaluation(storage.join(folder, paths.evaluation_dir("test")), meta, settings)
    if carried is not None:
        threshold, rule = float(carried["threshold"]), dict(carried.get("threshold_rule") or {})
    else:
        rule_of = parse_threshold_rule(cfg.threshold)
        chosen = choose_threshold(val.labels, val.probabilities, *rule_of)
        threshold, rule = chosen.value, chosen.to_dict()
    rule["value"] = threshold
    own = summarize(val.labels, val.probabilities, threshold, n_boot=cfg.n_boot, seed=cfg.seed)
    expected = {"validation": figures(own, entry.name, "val")}
    if carried is not None:
        expected["test"] = figures(carried, entry.name, "test")
    seen = seen_in_manifest(data.manifest, f"the manifest of '{entry.name}'")
    run_id = meta.run_id or None
    version = _registered_as(folder, meta.run_id, meta.epoch, settings) if run_id else None
    name = f"run {meta.run_id[:12]} (epoch {meta.epoch})" if run_id else storage.name_of(url)
    return ExternalModel(
        name, meta.preprocess, threshold, rule, predictor(model, meta.preprocess), expected,
        seen, folder, Recorder(settings, run_id, version),
        explainer(model, meta.preprocess, meta.model.backbone),
    )  # fmt: skip


def load_external_model(ref: str, cfg: EvaluateConfig, settings: Settings) -> ExternalModel:
    """The model ``ref`` names: a registered version or package folder (torch-free), or a run,
    run folder or checkpoint (PyTorch)."""
    if ref.startswith("models:/") or (Path(ref).expanduser() / paths.CARD_FILE).is_file():
        return _packaged(ref, settings)
    return _checkpointed(ref, cfg, settings)
