"""A prepared dataset, read once: its manifest, data card and cache, or a clear error.

Every consumer of `prepare`'s output (training, evaluation, registration, the EDA report, the
demo's example image, a comparison's data card) reads it through here, so the folder layout
and the "is it complete" rule live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from pneumo import paths, storage
from pneumo.data import schema
from pneumo.data.sources.datasets import Dataset
from pneumo.errors import DataError
from pneumo.preprocess import ImageSpec
from pneumo.settings import Settings


def prepared_folder(dataset: Dataset, settings: Settings) -> str:
    """Where `prepare` writes ``dataset``'s outputs."""
    return storage.join(settings.prepared, dataset.name)


def is_prepared(dataset: Dataset, settings: Settings) -> bool:
    """Whether a run of `prepare` finished for ``dataset`` (its state file is written last)."""
    return storage.exists(
        storage.join(prepared_folder(dataset, settings), paths.PREPARE_STATE), settings
    )


def read_data_card(dataset: Dataset, settings: Settings) -> dict[str, Any]:
    card: dict[str, Any] = storage.read_json(
        storage.join(prepared_folder(dataset, settings), paths.DATA_CARD), settings
    )
    return card


@dataclass(frozen=True)
class PreparedData:
    name: str
    folder: str
    manifest: pd.DataFrame
    card: dict[str, Any]
    image: ImageSpec | None  # None for a metadata-only dataset (no cache)

    @property
    def cache(self) -> str:
        return storage.join(self.folder, paths.CACHE)

    @property
    def has_images(self) -> bool:
        return self.image is not None

    def split(self, name: str) -> pd.DataFrame:
        """The manifest rows of one split."""
        return self.manifest[self.manifest[schema.SPLIT] == name]

    @property
    def image_spec(self) -> ImageSpec:
        """The spec the cache was built with; a clear error for a dataset without images."""
        if self.image is None:
            raise DataError(
                f"dataset '{self.name}' was prepared without images (metadata-only): nothing "
                "to train on",
                hint="prepare a dataset that has its images",
            )
        return self.image


def load_prepared(dataset: Dataset, settings: Settings, *, images: bool = True) -> PreparedData:
    """The manifest, data card and cache spec of a prepared dataset, or a clear error.

    ``images`` requires the image cache (training, evaluation); the EDA report also reads
    metadata-only datasets.
    """
    folder = prepared_folder(dataset, settings)
    if not is_prepared(dataset, settings):
        raise DataError(
            f"dataset '{dataset.name}' has not been prepared (nothing complete at {folder})",
            hint=f"run `pneumo prepare -d {dataset.name}` first",
        )
    card = read_data_card(dataset, settings)
    image = None
    if card.get("mode") == "images":
        spec_url = storage.join(folder, paths.CACHE, paths.CACHE_SPEC)
        if not storage.exists(spec_url, settings):
            raise DataError(
                f"the image cache of '{dataset.name}' is missing ({spec_url})",
                hint=f"run `pneumo prepare -d {dataset.name}` again",
            )
        image = ImageSpec(**storage.read_json(spec_url, settings))
    manifest = storage.read_table(storage.join(folder, paths.MANIFEST), settings)
    data = PreparedData(dataset.name, folder, manifest, card, image)
    if images:
        data.image_spec  # noqa: B018 (raises for a dataset without images)
    return data
