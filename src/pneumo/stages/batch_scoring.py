"""Files to probabilities: decoded in parallel, scored a batch at a time.

The one scoring loop of `pneumo predict` and of external evaluation: the decode pool of
:mod:`pneumo.data.decode.pool` (workers from a forkserver, since the scorer's threads already
run) with the model's own image spec, and any ``predict(pixels) -> probabilities`` (ONNX
Runtime, which normalises in the graph, or PyTorch after the spec's normalisation), or an
``explained(pixels) -> (probabilities, maps)`` that gives the activation maps from the same run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from pneumo.data.decode.pool import Record, decode_many
from pneumo.explain.cam import ActivationMap
from pneumo.preprocess import PreprocessSpec

Predict = Callable[[np.ndarray], np.ndarray]  # uint8 pixels (N, S, S) -> (N,) probabilities
Explained = Callable[[np.ndarray], tuple[np.ndarray, list[ActivationMap]]]  # and their maps


@dataclass(frozen=True)
class Scored:
    file: str
    probability: float | None  # None when the file could not be decoded
    record: Record  # the decoder's record: content and perceptual hashes, or the reason
    pixels: np.ndarray | None = None  # the model's input, with ``cam``, when maps were asked for
    cam: ActivationMap | None = None


def score_files(
    files: list[str], spec: PreprocessSpec, predict: Predict, batch: int, workers: int,
    *, explained: Explained | None = None,
) -> Iterator[Scored]:  # fmt: skip
    """One :class:`Scored` per file, in order; with ``explained`` (which then scores instead of
    ``predict``) each scored file carries its pixels and its map."""
    stream = decode_many(files, spec.image, workers, len(files), clean=True)
    pending: list[tuple[str, Record, np.ndarray]] = []
    for file, (record, pixels) in zip(files, stream, strict=True):
        if pixels is None:
            yield from _flush(predict, pending, explained)
            pending = []
            yield Scored(file, None, record)
            continue
        pending.append((file, record, pixels))
        if len(pending) >= batch:
            yield from _flush(predict, pending, explained)
            pending = []
    yield from _flush(predict, pending, explained)


def _flush(
    predict: Predict,
    pending: list[tuple[str, Record, np.ndarray]],
    explained: Explained | None,
) -> Iterator[Scored]:
    if not pending:
        return
    pixels = np.stack([p for _, _, p in pending])
    if explained is None:
        for (file, record, _), probability in zip(pending, predict(pixels), strict=True):
            yield Scored(file, float(probability), record)
        return
    probabilities, maps = explained(pixels)
    for (file, record, image), p, cam in zip(pending, probabilities, maps, strict=True):
        yield Scored(file, float(p), record, image, cam)


def reason(record: Record) -> str:
    """Why a file could not be scored, as a sentence."""
    return str(record.get("detail") or record.get("reason") or "could not be decoded")
