"""The out-of-distribution reference of a model being registered, from its own cached images.

The exported ONNX model (what the service will run) embeds a seeded sample of the training
images (the bank) and the validation images (which choose the threshold); see
:mod:`pneumo.packaging.reference` for the score and why. The same pass gives the drift
reference (:mod:`pneumo.monitoring.baseline`): the validation images' embeddings on the bank's
principal directions, their probabilities and input statistics.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np
import pandas as pd

from pneumo.data import schema
from pneumo.data.cache import CacheReader
from pneumo.data.prepared import PreparedData
from pneumo.errors import PneumoError
from pneumo.monitoring.baseline import build_drift_reference
from pneumo.onnx_runtime import onnxruntime
from pneumo.packaging.reference import BANK_SIZE, Reference, fit_reference
from pneumo.packaging.signature import EMBEDDING_NAME, OUTPUT_NAME, ModelInput
from pneumo.preprocess import PreprocessSpec
from pneumo.settings import Settings

log = logging.getLogger(__name__)
BATCH = 64
INPUT_STATS = (schema.MEAN_INTENSITY, schema.STD_INTENSITY, schema.ORIG_WIDTH, schema.ORIG_HEIGHT)
MAX_VAL = (
    4000  # validation images embedded at most (the threshold's quantile is stable long before)
)


def _sample(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    return frame if len(frame) <= n else frame.sample(n=n, random_state=seed).sort_index()


def _embed(
    session: object, reader: CacheReader, rows: pd.DataFrame, spec: PreprocessSpec
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings (N, D) and probabilities (N,) of ``rows``' cached images."""
    out, probs = [], []
    where = list(zip(rows[schema.SHARD], rows[schema.SHARD_INDEX], strict=True))
    feed = ModelInput.of(session, spec)
    for start in range(0, len(where), BATCH):
        pixels = np.stack([reader.image(s, int(i)) for s, i in where[start : start + BATCH]])
        p, emb = session.run([OUTPUT_NAME, EMBEDDING_NAME], feed(pixels))  # type: ignore[attr-defined]
        out.append(emb)
        probs.append(np.asarray(p).reshape(-1))
    return np.concatenate(out).astype(np.float32), np.concatenate(probs).astype(np.float32)


def _input_stats(rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """The manifest's per-image input statistics that every prepared dataset has."""
    return {
        c: rows[c].to_numpy(dtype=np.float32)
        for c in INPUT_STATS
        if c in rows and rows[c].notna().all()
    }


def _facts(rows: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Categorical input facts counted over ``rows``: the source pixel mode, the view."""
    out = {}
    for column in (schema.SRC_MODE, schema.VIEW):
        if column in rows and rows[column].notna().any():
            counts = rows[column].fillna("unknown").astype(str).value_counts()
            out[column] = {str(value): int(n) for value, n in counts.items()}
    return out


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
    bank, _ = _embed(session, reader, _sample(train, BANK_SIZE, seed), spec)
    val_rows = _sample(val, MAX_VAL, seed)
    held, val_scores = _embed(session, reader, val_rows, spec)
    reference = fit_reference(bank, held, seed=seed)
    counts = _facts(val)
    drift = build_drift_reference(bank, held, val_scores, _input_stats(val_rows), counts, seed=seed)
    log.info(
        "out-of-distribution and drift reference: %d train / %d val images, threshold %.4f "
        "(%.2fs)", len(bank), len(held), reference.threshold, time.perf_counter() - start,
    )  # fmt: skip
    return dataclasses.replace(reference, drift=drift)
