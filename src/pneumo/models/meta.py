"""What a checkpoint says about its model, typed (no torch here: the card and the service read it).

A checkpoint file (see :mod:`pneumo.models.checkpoint`) is a dict of tensors and plain values;
this module is the one description of its non-tensor part. The layout on disk is format
``pneumo-checkpoint/1``, unchanged since the first release: :meth:`CheckpointMeta.from_payload`
reads every file written so far, and :meth:`CheckpointMeta.to_payload` writes the same keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from pneumo.errors import PneumoError
from pneumo.preprocess import PreprocessSpec

FORMAT = "pneumo-checkpoint/1"
Head = Literal["binary", "multilabel"]


@dataclass(frozen=True)
class ModelArgs:
    """Everything :func:`pneumo.models.backbones.build_model` needs to rebuild the network."""

    backbone: str
    num_outputs: int = 1
    in_chans: int = 1
    dropout: float | None = None

    def kwargs(self) -> dict[str, Any]:
        """``build_model(**args.kwargs(), weights="none")`` rebuilds the architecture."""
        return asdict(self)


@dataclass(frozen=True)
class TrainingThreshold:
    """The Youden threshold on validation at the best epoch (evaluation chooses its own)."""

    value: float
    method: str


@dataclass(frozen=True)
class CheckpointMeta:
    run_id: str
    dataset: str
    manifest_hash: str  # of the prepared manifest the model trained on (see pneumo.data.datacard)
    model: ModelArgs
    preprocess: PreprocessSpec
    head: Head
    classes: tuple[str, ...]
    config: dict[str, Any] = field(repr=False)  # the run's resolved experiment config
    versions: dict[str, str] = field(default_factory=dict)
    # Set in best.pt only: the epoch it was selected at and what it scored there.
    epoch: int | None = None
    val_auroc: float | None = None
    threshold: TrainingThreshold | None = None

    @property
    def is_binary(self) -> bool:
        return self.head == "binary"

    def to_payload(self) -> dict[str, Any]:
        """The checkpoint's plain keys, as format ``pneumo-checkpoint/1`` lays them out."""
        payload: dict[str, Any] = {
            "format": FORMAT,
            "run_id": self.run_id,
            "dataset": self.dataset,
            "manifest_hash": self.manifest_hash,
            "model_config": asdict(self.model),
            "preprocess": self.preprocess.to_dict(),
            "head": self.head,
            "classes": list(self.classes),
            "config": self.config,
            "versions": self.versions,
        }
        if self.epoch is not None:
            payload["epoch"] = self.epoch
            payload["val_auroc"] = self.val_auroc
            payload["threshold"] = None if self.threshold is None else asdict(self.threshold)
        return payload

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], source: str) -> CheckpointMeta:
        """The metadata of a loaded checkpoint; a clear error naming ``source`` and the key."""
        if payload.get("format") != FORMAT:
            raise PneumoError(f"{source} is not a pneumo checkpoint (format {FORMAT} expected)")
        try:
            threshold = payload.get("threshold")
            return cls(
                run_id=str(payload.get("run_id") or ""),
                dataset=str(payload["dataset"]),
                manifest_hash=str(payload["manifest_hash"]),
                model=ModelArgs(**payload["model_config"]),
                preprocess=PreprocessSpec.from_dict(payload["preprocess"]),
                head=payload["head"],
                classes=tuple(payload["classes"]),
                config=dict(payload["config"]),
                versions=dict(payload.get("versions") or {}),
                epoch=payload.get("epoch"),
                val_auroc=payload.get("val_auroc"),
                threshold=None if threshold is None else TrainingThreshold(**threshold),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PneumoError(
                f"{source} is a pneumo checkpoint with a broken description "
                f"({type(exc).__name__}: {exc})",
                hint="pass a best.pt written by `pneumo train`",
            ) from None

    def with_selection(
        self, epoch: int, val_auroc: float | None, threshold: TrainingThreshold | None
    ) -> CheckpointMeta:
        """This metadata, for the checkpoint selected at ``epoch`` (best.pt)."""
        return replace(self, epoch=epoch, val_auroc=val_auroc, threshold=threshold)
