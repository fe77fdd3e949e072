"""What a model has seen: the hashes of its training and validation images, kept with the model.

An external evaluation must not score images the model trained or chose its threshold on. The
package carries ``training_images.json`` (written by `register`): the content hash (SHA-1 of the
file bytes) and the perceptual hash (of the cached pixels; see
:mod:`pneumo.data.near_duplicates`) of every train and validation image, so that the check works
wherever the package goes, with no access to the data it was trained on. Packages registered
before this file existed fall back to the prepared dataset on this machine when its manifest is
the one the model was trained on. This module imports neither torch nor MLflow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pneumo.data import schema
from pneumo.errors import PneumoError

FORMAT = "pneumo-training-images/1"
SEEN_SPLITS = ("train", "val")


@dataclass(frozen=True)
class Seen:
    """The model's training and validation images, by hash."""

    content_hashes: frozenset[str]
    perceptual_hashes: list[str]  # empty when the manifest predates perceptual hashes
    source: str  # where the hashes came from, for the report

    @property
    def images(self) -> int:
        return len(self.content_hashes)


def seen_in_manifest(manifest: pd.DataFrame, source: str) -> Seen:
    """The train and validation images of a prepared dataset's manifest."""
    rows = manifest[manifest[schema.SPLIT].isin(SEEN_SPLITS)]
    perceptual: list[str] = []
    if schema.PERCEPTUAL_HASH in rows:
        perceptual = rows[schema.PERCEPTUAL_HASH].dropna().astype(str).tolist()
    content = frozenset(rows[schema.CONTENT_HASH].dropna().astype(str))
    return Seen(content, perceptual, source)


def training_images_bytes(manifest: pd.DataFrame, dataset: str, manifest_hash: str) -> bytes:
    """``training_images.json`` for a model trained on ``manifest``."""
    seen = seen_in_manifest(manifest, dataset)
    document = {
        "format": FORMAT,
        "dataset": dataset,
        "manifest_hash": manifest_hash,
        "splits": list(SEEN_SPLITS),
        "content_hashes": sorted(seen.content_hashes),
        "perceptual_hashes": seen.perceptual_hashes,
    }
    return (json.dumps(document, separators=(",", ":")) + "\n").encode()


def read_training_images(path: Path) -> Seen | None:
    """The hashes in a package's ``training_images.json``; None when the package has none."""
    if not path.is_file():
        return None
    try:
        document: Any = json.loads(path.read_text())
        if document.get("format") != FORMAT:
            raise ValueError(f"format {document.get('format')!r} is not {FORMAT!r}")
        content = frozenset(str(h) for h in document["content_hashes"])
        perceptual = [str(h) for h in document["perceptual_hashes"]]
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        raise PneumoError(
            f"{path} is not a list of training images ({exc})",
            hint="register the model again with `pneumo register`",
        ) from None
    return Seen(content, perceptual, f"{path.name} of the package ({document.get('dataset')})")
