"""The out-of-distribution reference: how far an image's embedding is from the training images.

The score of an image is the cosine distance from its ``embedding`` (the model's pooled
features, an ONNX output) to its k-th nearest neighbour among the embeddings of a sample of
the model's **training** images (the deep nearest-neighbour detector of Sun et al., ICML 2022:
L2-normalised features, no class or Gaussian assumption, no training). Near 0 for an image
like those the model learned from; larger for what it never saw.

The refusal threshold is a quantile (default 0.99) of the scores of the model's **validation**
images, which the bank does not contain: by construction about 1 % of images like the
validation set are refused, and the measured shares of other data are in the README. It is
chosen at registration and travels in the package (``reference.npz``, hashed in the card).
Numpy only: the service and the monitoring read it without torch.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Final

import numpy as np

from pneumo.monitoring.baseline import DriftReference

METHOD: Final = "knn-cosine"
DEFAULT_K: Final = 10
DEFAULT_QUANTILE: Final = 0.99
BANK_SIZE: Final = 2000  # training embeddings kept (float16): 2 MB at 512 features
_BLOCK: Final = 512


def _normalised(embeddings: np.ndarray) -> np.ndarray:
    emb = np.asarray(embeddings, dtype=np.float32)
    if emb.ndim != 2:
        raise ValueError(f"embeddings must be (N, D), got shape {emb.shape}")
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    out: np.ndarray = emb / np.maximum(norms, 1e-12)
    return out


@dataclass(frozen=True)
class Reference:
    bank: np.ndarray  # float16 (n, d): L2-normalised training embeddings
    k: int
    threshold: float
    quantile: float
    val_images: int
    drift: DriftReference | None = None  # absent in references written before drift detection

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        """float64 (N,): cosine distance of each embedding to its k-th nearest bank entry."""
        query = _normalised(embeddings)
        if query.shape[1] != self.bank.shape[1]:
            raise ValueError(
                f"embedding has {query.shape[1]} features, the reference {self.bank.shape[1]}"
            )
        bank = self._bank32
        k = min(self.k, len(bank))
        out = np.empty(len(query), dtype=np.float64)
        for start in range(0, len(query), _BLOCK):
            sims = query[start : start + _BLOCK] @ bank.T
            kth = np.partition(sims, -k, axis=1)[:, -k]
            out[start : start + _BLOCK] = 1.0 - kth
        return out

    @cached_property
    def _bank32(self) -> np.ndarray:
        """The bank as float32, converted once (float16 is how it is stored)."""
        return self.bank.astype(np.float32)

    def summary(self) -> dict[str, Any]:
        """The card's record of it."""
        return {
            "method": METHOD, "k": self.k, "bank_images": len(self.bank),
            "features": int(self.bank.shape[1]), "threshold": round(self.threshold, 6),
            "quantile": self.quantile, "chosen_on": "val", "val_images": self.val_images,
            **({"drift": self.drift.summary()} if self.drift is not None else {}),
        }  # fmt: skip

    def to_bytes(self) -> bytes:
        arrays: dict[str, Any] = {
            "bank": self.bank, "k": self.k, "threshold": self.threshold,
            "quantile": self.quantile, "val_images": self.val_images,
            **(self.drift.arrays() if self.drift is not None else {}),
        }  # fmt: skip
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Reference:
        with np.load(io.BytesIO(data)) as npz:
            return cls(
                np.asarray(npz["bank"], dtype=np.float16), int(npz["k"]),
                float(npz["threshold"]), float(npz["quantile"]), int(npz["val_images"]),
                DriftReference.from_arrays(npz),
            )  # fmt: skip


def fit_reference(
    train: np.ndarray,
    val: np.ndarray,
    k: int = DEFAULT_K,
    quantile: float = DEFAULT_QUANTILE,
    bank_size: int = BANK_SIZE,
    seed: int = 0,
) -> Reference:
    """A reference from training embeddings (sampled down to ``bank_size``) with its threshold
    at the ``quantile`` of the validation embeddings' scores."""
    if len(train) == 0 or len(val) == 0:
        raise ValueError("the reference needs training and validation embeddings")
    if len(train) > bank_size:
        pick = np.random.default_rng(seed).choice(len(train), bank_size, replace=False)
        train = train[np.sort(pick)]
    bank = _normalised(train).astype(np.float16)
    draft = Reference(bank, k, float("inf"), quantile, len(val))
    threshold = float(np.quantile(draft.scores(val), quantile))
    return Reference(bank, k, threshold, quantile, len(val))
