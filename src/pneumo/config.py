"""Experiment config: what a run does. YAML file + dotted CLI overrides into typed, frozen models.

The resolved config is saved next to every output, so a result can be reproduced from it.
Unknown keys are errors (a typo must never be silently ignored).
"""

from __future__ import annotations

import difflib
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pneumo import storage
from pneumo.errors import ConfigError
from pneumo.lifecycle_config import OptimizeConfig, PromoteConfig, RegisterConfig
from pneumo.search_space import SearchRange, TuneConfig

# re-exported: every config section is in pneumo.config
__all__ = ["OptimizeConfig", "PromoteConfig", "RegisterConfig", "SearchRange", "TuneConfig"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitConfig(_Section):
    """How images are assigned to train / val / test."""

    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(0.2, ge=0.0, lt=1.0)
    seed: int = 42
    use_official: bool = Field(
        True, description="Use the source's own split lists or folders when they exist."
    )

    @model_validator(mode="after")
    def _fractions(self) -> SplitConfig:
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError("val_fraction + test_fraction must leave images for training")
        return self


class PrepareConfig(_Section):
    """Validation, decoding and caching of images."""

    image_size: int = Field(256, ge=16, le=4096, description="Side of the cached square image.")
    resize: Literal["pad", "stretch", "crop"] = Field(
        "pad",
        description=(
            "pad: keep aspect ratio, fit the long side, centre on black; stretch: ignore aspect "
            "ratio; crop: keep aspect ratio, fill the square, cut the long side's ends."
        ),
    )
    shard_size: int = Field(1024, ge=1, description="Images per cache shard.")
    max_pixels: int = Field(
        178_956_970, ge=1, description="Images with more pixels are refused (decompression bombs)."
    )
    undersample: bool = Field(
        False, description="Seed tutorial's 50/50 undersampling of the training split."
    )
    strict: bool = Field(False, description="Make every data problem fatal.")
    metadata_only: bool | None = Field(
        None, description="Skip images; None decides from whether the dataset has any."
    )


class SyntheticConfig(_Section):
    """The seeded generator behind `pneumo fetch synthetic`."""

    patients: int = Field(100, ge=2)
    max_images_per_patient: int = Field(3, ge=1)
    image_size: int = Field(512, ge=64, le=4096)
    prevalence: float = Field(0.35, gt=0.0, lt=1.0, description="Share of images with Pneumonia.")
    seed: int = 0


class AugmentConfig(_Section):
    """On-the-fly augmentation of training batches (on the GPU when there is one).

    Each transform mimics variation real radiographs have: patient positioning (small rotations
    and shifts), body size and detector distance (scaling), exposure (brightness, contrast).
    No horizontal flip: the heart's side is anatomy, and a flipped film is a different finding.
    """

    enabled: bool = True
    rotation_deg: float = Field(7.0, ge=0.0, le=45.0)
    translate: float = Field(0.05, ge=0.0, le=0.3, description="Fraction of the image side.")
    scale: float = Field(0.1, ge=0.0, le=0.5, description="Zoom in 1 +/- scale.")
    brightness: float = Field(0.1, ge=0.0, le=0.5, description="Additive, fraction of range.")
    contrast: float = Field(0.1, ge=0.0, le=0.5, description="Multiplicative 1 +/- contrast.")
    # Another scanner or archive (pneumo.training.photometric); 0 turns each off.
    gamma: float = Field(0.0, ge=0.0, le=1.0, description="Display curve: x**g, g in 1 +/- this.")
    noise: float = Field(0.0, ge=0.0, le=0.2, description="Gaussian noise sd, up to this.")
    blur_sigma: float = Field(0.0, ge=0.0, le=4.0, description="Gaussian blur, up to this (px).")
    jpeg_quality: int = Field(
        0, ge=0, le=95, description="JPEG quantisation at qualities from this to 95; 0: off."
    )
    photometric_share: float = Field(
        0.5, ge=0.0, le=1.0, description="Share of the images each photometric transform hits."
    )


class TrainConfig(_Section):
    """Model, optimisation and hardware for `pneumo train`."""

    backbone: str = "densenet121"
    weights: str = Field("none", description="none | imagenet | path or URL of a state dict.")
    intensity: Literal["dataset", "per_image"] = Field(
        "dataset", description="per_image: each image standardised by its own mean and std."
    )
    head: Literal["binary", "multilabel"] = "binary"
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(32, ge=1, description="Per process (per GPU under torchrun).")
    lr: float = Field(3e-4, gt=0.0)
    weight_decay: float = Field(1e-4, ge=0.0)
    warmup_epochs: float = Field(1.0, ge=0.0)
    dropout: float | None = Field(
        None, ge=0.0, lt=1.0, description="Before the head; None keeps the backbone's default."
    )
    patience: int = Field(5, ge=1, description="Epochs without a better val AUROC before stop.")
    ema_decay: float | None = Field(
        None, gt=0.0, lt=1.0, description="Validate and keep an EMA of the weights (e.g. 0.995)."
    )
    label_smoothing: float = Field(
        0.0, ge=0.0, lt=0.5, description="Targets pulled this far towards 0.5 in the loss."
    )
    class_weighting: bool = Field(True, description="Weight positives by the train neg/pos ratio.")
    max_steps_per_epoch: int | None = Field(None, ge=1)
    checkpoint_every: int = Field(100, ge=1, description="Steps between resumable checkpoints.")
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")
    precision: Literal["auto", "bf16", "fp32"] = Field("auto", description="auto: bf16 on GPU.")
    channels_last: bool = True
    compile: bool = False
    workers: int = Field(-1, ge=-1, description="Loader processes; -1 picks from the cores.")
    seed: int = 0
    augment: AugmentConfig = AugmentConfig()


class EvaluateConfig(_Section):
    """`pneumo evaluate`: which split, which operating threshold, how many resamples."""

    split: Literal["train", "val", "test"] = "test"
    threshold: str = Field("youden", description="youden | sensitivity:0.90 (chosen on val).")
    n_boot: int = Field(1000, ge=0)
    seed: int = 0

    @model_validator(mode="after")
    def _rule(self) -> EvaluateConfig:
        from pneumo.metrics.threshold import parse_threshold_rule

        parse_threshold_rule(self.threshold)  # raises ValueError with the accepted forms
        return self


class ExperimentConfig(_Section):
    """Everything a run does; where it runs comes from :class:`pneumo.settings.Settings`."""

    split: SplitConfig = SplitConfig()
    prepare: PrepareConfig = PrepareConfig()
    synthetic: SyntheticConfig = SyntheticConfig()
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    registry: RegisterConfig = RegisterConfig()
    promote: PromoteConfig = PromoteConfig()
    optimize: OptimizeConfig = OptimizeConfig()
    tune: TuneConfig = TuneConfig()

    @model_validator(mode="after")
    def _searched_keys(self) -> ExperimentConfig:
        known = set(_known_keys(TrainConfig, "train."))
        for key in self.tune.space:
            if not key.startswith("train."):
                raise ValueError(
                    f"tune.space key {key!r}: only train.* keys can be searched (a trial trains "
                    "on one prepared dataset; prepare one per image size to compare sizes)"
                )
            if key not in known:
                close = difflib.get_close_matches(key, sorted(known), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"tune.space key {key!r} is not a config key{hint}")
        return self


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {dotted!r}: {key!r} is a value, not a section")
        node = child
    node[keys[-1]] = value


def _known_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for name, field in model.model_fields.items():
        keys.append(prefix + name)
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys.extend(_known_keys(ann, prefix + name + "."))
    return keys


def _explain(err: ValidationError, source: str) -> ConfigError:
    known = _known_keys(ExperimentConfig)
    lines = []
    for item in err.errors():
        where = ".".join(str(p) for p in item["loc"])
        msg = item["msg"]
        if item["type"] == "extra_forbidden":
            close = difflib.get_close_matches(where, known, n=1)
            msg = "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
        lines.append(f"  {where}: {msg}")
    return ConfigError(
        f"invalid config ({source}):\n" + "\n".join(lines),
        hint="fix the key or value; `pneumo config` prints every key with its default",
    )


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(
                f"override {item!r} is not KEY=VALUE", hint="write e.g. prepare.image_size=128"
            )
        key, raw = item.split("=", 1)
        _set_dotted(tree, key.strip(), yaml.safe_load(raw) if raw else None)
    return tree


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(path: str | None = None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Defaults, then the YAML file at ``path`` (any fsspec URL), then ``overrides``."""
    tree: dict[str, Any] = {}
    source = "defaults"
    if path:
        try:
            loaded = yaml.safe_load(storage.read_text(path)) or {}
        except FileNotFoundError as exc:
            raise ConfigError(f"config file not found: {path}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping of sections")
        tree, source = loaded, path
    if overrides:
        tree = _merge(tree, parse_overrides(overrides))
        source += " + overrides"
    try:
        return ExperimentConfig.model_validate(tree)
    except ValidationError as err:
        raise _explain(err, source) from None


def with_values(config: ExperimentConfig, values: dict[str, Any], source: str) -> ExperimentConfig:
    """``config`` with dotted keys set to ``values`` (a tuning trial's), validated again."""
    tree = config.model_dump(mode="json")
    for key, value in values.items():
        _set_dotted(tree, key, value)
    try:
        return ExperimentConfig.model_validate(tree)
    except ValidationError as err:
        raise _explain(err, source) from None


def dump_config(config: BaseModel) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
