"""The gate an int8 model file passes before it is registered: as good, as decisive, faster.

On the test split of the dataset the model was trained on, scored by ONNX Runtime from the
cached pixels (the model's own input): the int8 file's AUROC at most ``max_auroc_drop`` below
the float32 file's, at least ``min_agreement`` of the decisions equal at the threshold the model
carries, and a higher throughput on this machine, measured in the same run on the same images
with the same threads (batches of :data:`BATCH`, the two sessions alternating over
:data:`ROUNDS` rounds, the median round's rate).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from pneumo.metrics.curves import roc_auc
from pneumo.packaging.signature import OUTPUT_NAME, ModelInput
from pneumo.preprocess import PreprocessSpec

BATCH = 16
ROUNDS = 3
TIMED_IMAGES = 64


@dataclass(frozen=True)
class Gate:
    auroc_float32: float
    auroc_int8: float
    agreement: float  # share of the test images decided the same at the threshold
    rate_float32: float  # images/s, batches of BATCH
    rate_int8: float
    n: int
    max_auroc_drop: float
    min_agreement: float

    @property
    def speedup(self) -> float:
        return self.rate_int8 / self.rate_float32

    def failures(self) -> list[str]:
        out = []
        drop = self.auroc_float32 - self.auroc_int8
        if drop > self.max_auroc_drop:
            out.append(
                f"test AUROC {self.auroc_int8:.4f} is {drop:.4f} below float32's "
                f"{self.auroc_float32:.4f} (at most {self.max_auroc_drop})"
            )
        if self.agreement < self.min_agreement:
            out.append(
                f"{self.agreement:.1%} of the {self.n} test decisions agree with float32's "
                f"(at least {self.min_agreement:.0%})"
            )
        if self.speedup <= 1.0:
            out.append(
                f"it is not faster here: {self.rate_int8:.1f} images/s against float32's "
                f"{self.rate_float32:.1f}"
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "split": "test", "n": self.n,
            "auroc_float32": round(self.auroc_float32, 6), "auroc_int8": round(self.auroc_int8, 6),
            "max_auroc_drop": self.max_auroc_drop, "agreement": round(self.agreement, 6),
            "min_agreement": self.min_agreement,
            "throughput_float32": round(self.rate_float32, 2),
            "throughput_int8": round(self.rate_int8, 2), "speedup": round(self.speedup, 3),
            "timed": f"{TIMED_IMAGES} test images (cycled if fewer), batches of {BATCH}, "
                     f"median of {ROUNDS} alternating rounds",
        }  # fmt: skip


def probabilities(session: Any, spec: PreprocessSpec, pixels: np.ndarray) -> np.ndarray:
    """P(pneumonia) of uint8 pixels (N, S, S), in batches."""
    feed = ModelInput.of(session, spec)
    out = [
        np.asarray(session.run([OUTPUT_NAME], feed(pixels[i : i + 64]))[0], np.float64).ravel()
        for i in range(0, len(pixels), 64)
    ]
    return np.concatenate(out) if out else np.zeros(0)


def _rate(session: Any, spec: PreprocessSpec, pixels: np.ndarray) -> float:
    feed = ModelInput.of(session, spec)
    start = time.perf_counter()
    for i in range(0, len(pixels), BATCH):
        session.run([OUTPUT_NAME], feed(pixels[i : i + BATCH]))
    return len(pixels) / (time.perf_counter() - start)


def judge(
    float32: Any, int8: Any, spec: PreprocessSpec, pixels: np.ndarray, labels: np.ndarray,
    threshold: float, max_auroc_drop: float, min_agreement: float,
) -> tuple[Gate, np.ndarray]:  # fmt: skip
    """The gate's figures for two sessions on the test images ``pixels``; and the int8
    probabilities (for the card's metrics)."""
    p32 = probabilities(float32, spec, pixels)
    p8 = probabilities(int8, spec, pixels)
    agreement = float(np.mean((p32 >= threshold) == (p8 >= threshold)))
    timed = np.resize(pixels, (TIMED_IMAGES, *pixels.shape[1:]))  # cycled when fewer
    _rate(float32, spec, timed[:BATCH])  # warm both
    _rate(int8, spec, timed[:BATCH])
    rates: dict[str, list[float]] = {"f32": [], "int8": []}
    for _ in range(ROUNDS):
        rates["f32"].append(_rate(float32, spec, timed))
        rates["int8"].append(_rate(int8, spec, timed))
    gate = Gate(
        roc_auc(labels, p32), roc_auc(labels, p8), agreement, float(np.median(rates["f32"])),
        float(np.median(rates["int8"])), len(pixels), max_auroc_drop, min_agreement,
    )  # fmt: skip
    return gate, p8
