"""A model package: the folder that `register` writes and `serve` loads.

::

    model.onnx         float32 (batch, 1, S, S) normalised image → (batch, 1) probability
    card.json          the model card (see :mod:`pneumo.packaging.modelcard`)
    card.html          the same card, for people
    verification.npz   a few validation images (uint8) and the probabilities PyTorch gave them
    training_images.json  hashes of the train and val images (see packaging.training_images;
                       absent from packages registered before it existed)
    reference.npz      the out-of-distribution reference (see packaging.reference; hashed in
                       the card; absent from packages registered before it existed)

The card records the SHA-256 of ``model.onnx``; a loader checks it and re-scores the
verification images, so a corrupt, swapped or mis-exported file is refused before it serves.
This module imports neither torch nor MLflow.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pneumo import paths
from pneumo.errors import PneumoError
from pneumo.packaging.modelcard import ModelCard
from pneumo.packaging.reference import Reference

MODEL_FILE, CARD_FILE = paths.MODEL_FILE, paths.CARD_FILE
CARD_PAGE, VERIFICATION_FILE = paths.CARD_PAGE, paths.VERIFICATION_FILE
FILES = (MODEL_FILE, CARD_FILE, CARD_PAGE, VERIFICATION_FILE)


class PackageError(PneumoError):
    """A model package is missing a file, is corrupt, or fails its verification."""


@dataclass(frozen=True)
class Verification:
    pixels: np.ndarray  # uint8 (N, S, S), as decoded and cached
    probabilities: np.ndarray  # float64 (N,), PyTorch's output at registration


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verification_bytes(check: Verification) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, pixels=check.pixels, probabilities=check.probabilities)
    return buf.getvalue()


def card_bytes(card: ModelCard) -> bytes:
    return (json.dumps(card.to_dict(), indent=2, allow_nan=False) + "\n").encode()


def package_files(
    onnx: bytes,
    card: ModelCard,
    page: str,
    check: Verification,
    training_images: bytes | None = None,
    reference: bytes | None = None,
) -> dict[str, bytes]:
    """The package's files, by name."""
    files = {
        MODEL_FILE: onnx,
        CARD_FILE: card_bytes(card),
        CARD_PAGE: page.encode(),
        VERIFICATION_FILE: verification_bytes(check),
    }
    if training_images is not None:
        files[paths.TRAINING_IMAGES] = training_images
    if reference is not None:
        files[paths.REFERENCE_FILE] = reference
    return files


def write_files(folder: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` into ``folder`` (created); each file written whole, then renamed."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(data)
        tmp.replace(folder / name)


@dataclass(frozen=True)
class Package:
    folder: Path
    card: ModelCard
    onnx: bytes
    verification: Verification
    reference: Reference | None = None


def read_card(path: Path) -> ModelCard:
    """A package's card; :class:`PackageError` when it is not JSON or not a pneumo card."""
    try:
        document = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PackageError(f"{path} is not valid JSON: {exc}") from None
    try:
        return ModelCard.from_dict(document, str(path))
    except PneumoError as exc:
        raise PackageError(exc.message, exc.hint) from None


def read_package(folder: Path) -> Package:
    """Read and check a package folder; raises :class:`PackageError` naming what is wrong."""
    missing = [
        name for name in (MODEL_FILE, CARD_FILE, VERIFICATION_FILE) if not (folder / name).is_file()
    ]
    if missing:
        raise PackageError(
            f"{folder} is not a complete model package: missing {', '.join(missing)}",
            hint="point at a folder written by `pneumo register` (or a registry model URI)",
        )
    card = read_card(folder / CARD_FILE)
    onnx = (folder / MODEL_FILE).read_bytes()
    expected = card.model_sha256
    actual = sha256_bytes(onnx)
    if expected != actual:
        raise PackageError(
            f"{folder / MODEL_FILE} does not match its card: SHA-256 {actual[:12]}… != "
            f"{str(expected)[:12]}…",
            hint="the file is corrupt or was replaced; register the model again",
        )
    try:
        with np.load(folder / VERIFICATION_FILE) as npz:
            check = Verification(
                np.asarray(npz["pixels"], dtype=np.uint8),
                np.asarray(npz["probabilities"], dtype=np.float64),
            )
    except Exception as exc:
        raise PackageError(f"{folder / VERIFICATION_FILE} is unreadable: {exc}") from None
    return Package(folder, card, onnx, check, _reference(folder, card))


def _reference(folder: Path, card: ModelCard) -> Reference | None:
    """The package's OOD reference, checked against the card's hash; None if it has none."""
    if card.ood is None or not card.ood.sha256:
        return None
    path = folder / paths.REFERENCE_FILE
    data = path.read_bytes() if path.is_file() else b""
    if sha256_bytes(data) != card.ood.sha256:
        raise PackageError(
            f"{path} is missing or does not match its card (SHA-256)",
            hint="the file is corrupt or was replaced; download or register the model again",
        )
    try:
        return Reference.from_bytes(data)
    except Exception as exc:
        raise PackageError(f"{path} is unreadable: {exc}") from None
