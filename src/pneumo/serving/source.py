"""Where the served model comes from: the MLflow registry (an alias or a version) or a folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pneumo.errors import PneumoError
from pneumo.packaging.package import read_card
from pneumo.paths import CARD_FILE
from pneumo.settings import Settings


class ModelSource(Protocol):
    name: str
    description: str

    def current(self) -> str:
        """The version the source points at now (cheap; polled)."""
        ...

    def fetch(self, version: str) -> Path:
        """A local package folder for ``version``."""
        ...


@dataclass
class RegistrySource:
    uri: str
    settings: Settings
    cache: Path

    def __post_init__(self) -> None:
        from pneumo.packaging.registry import ModelRegistry, ModelURI

        self.parsed = ModelURI.parse(self.uri)
        self.name = self.parsed.name
        self.description = f"{self.parsed} ({self.settings.tracking_uri})"
        self.registry = ModelRegistry(self.settings, self.name)
        self.registry.clean_abandoned(self.cache)  # left by a download killed mid-way

    def current(self) -> str:
        return self.registry.resolve(self.parsed)

    def fetch(self, version: str) -> Path:
        return self.registry.download(version, self.cache)


@dataclass
class FolderSource:
    folder: Path

    def __post_init__(self) -> None:
        self.name = "pneumonia"
        self.description = str(self.folder)

    def current(self) -> str:
        try:
            card = read_card(self.folder / CARD_FILE)
        except (OSError, PneumoError) as exc:
            raise PneumoError(
                f"{self.folder} is not a model package ({CARD_FILE} unreadable: {exc})",
                hint="give models:/pneumonia@champion or a folder written by `pneumo register`",
            ) from None
        self.name = card.name or self.name
        return f"local-{str(card.model_sha256)[:12]}"

    def fetch(self, version: str) -> Path:
        return self.folder


def make_source(model: str, settings: Settings, cache: Path) -> ModelSource:
    if model.startswith("models:/"):
        return RegistrySource(model, settings, cache)
    folder = Path(model).expanduser()
    if not folder.is_dir():
        raise PneumoError(
            f"model {model!r} is neither a models:/ URI nor a folder",
            hint="e.g. `pneumo serve models:/pneumonia@champion` or a run's model/ folder",
        )
    return FolderSource(folder.resolve())
