"""The out-of-distribution reference of a model being registered, from its own cached images.

The exported ONNX model (what the service will run) embeds a seeded sample of the training
images (the bank) and the validation images (which choose the threshold); see
:mod:`pneumo.packaging.reference` for the score and why.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from pneumo.data import schema
from pneumo.data.cache import CacheReader
from pneumo.data.prepared import PreparedData
from pneumo.errors import PneumoError
from pneumo.onnx_runtime import onnxruntime
from pneumo.packaging.reference import BANK_SIZE, Reference, fit_reference
from pneumo.packaging.signature import EMBEDDING_NAME, ModelInput
from pneumo.preprocess import PreprocessSpec
from pneumo.settings import Settings

log = logging.getLogger(__name__)
BATCH = 64
MAX_VAL = (
    4000  # validation images embedded at most (the threshold's quantile is stable long before)
)


def _sample(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    return frame if len(frame) <= n else frame.sample(n=n, random_state=seed).sort_index()


def _embed(
    session: object, reader: CacheReader, rows: pd.DataFrame, spec: PreprocessSpec
) -> np.ndarray:
    out = []
    where = list(zip(rows[schema.SHARD], rows[schema.SHARD_INDEX], strict=True))
    feed = ModelInput.of(session, spec)
    for start in range(0, len(where), BATCH):
        pixels = np.stack([reader.image(s, int(i)) for s, i in where[start : start + BATCH]])
        out.append(session.run([EMBEDDING_NAME], feed(pixels))[0])  # type: ignore[attr-defined]
    return np.concatenate(out).astype(np.float32)


def build_reference(
    onnx: bytes, data: PreparedData, spec: PreprocessSpec, settings: Settings, seed: int = 0
) -> Reference:
    """The reference of the model ``onnx`` over ``data``'s train and val splits."""
    train, val = data.split("train"), data.split("val")
    if train.empty or val.empty:
        raise PneumoError(f"{data.folder} needs train and val images for the OOD reference")
    start = time.perf_counter()
    ort = onnxruntime()
    session = ort.InferenceSession(onnx, providers=["CPUExecutionProvider"])
    reader = CacheReader(data.cache, settings)
    bank = _embed(session, reader, _sample(train, BANK_SIZE, seed), spec)
    held = _embed(session, reader, _sample(val, MAX_VAL, seed), spec)
    reference = fit_reference(bank, held, seed=seed)
    log.info(
        "out-of-distribution reference: %d train / %d val images, threshold %.4f (%.2fs)",
        len(bank), len(held), reference.threshold, time.perf_counter() - start,
    )  # fmt: skip
    return reference
