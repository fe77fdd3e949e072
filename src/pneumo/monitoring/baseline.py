"""What a served model's inputs are compared with: its validation images, summarised.

Built at registration from the model's own **validation** split (images it did not train on,
so a window of new images like them is not flagged): a sample of their embeddings projected
on the principal directions of the training bank (:class:`~pneumo.monitoring.drift.Projection`),
their probabilities, and per-image input statistics from the manifest (intensity mean and
spread of the cached image, the source's width and height) with categorical facts counted
over all validation images (the source pixel mode, i.e. bit depth and colour; the view where
the dataset records it). It travels inside ``reference.npz`` (keys ``drift_*``); a
reference written before it has none, and its model is served without drift detection.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from pneumo.monitoring.drift import DEFAULT_COMPONENTS, Projection

SAMPLE: Final = 500  # validation images kept: the tests' reference side
PREFIX: Final = "drift_"
STAT_PREFIX: Final = "drift_stat_"
COUNT_PREFIX: Final = "drift_count_"


def _count_arrays(counts: Mapping[str, Mapping[str, int]]) -> dict[str, np.ndarray]:
    out = {}
    for fact, by_value in counts.items():
        pairs = sorted(by_value.items())
        out[f"{COUNT_PREFIX}{fact}_names"] = np.array([v for v, _ in pairs], dtype=np.str_)
        out[f"{COUNT_PREFIX}{fact}_values"] = np.array([n for _, n in pairs], dtype=np.int64)
    return out


@dataclass(frozen=True)
class DriftReference:
    projection: Projection
    embeddings: np.ndarray  # float32 (n, k): the validation sample, projected
    scores: np.ndarray  # float32 (n,): its probabilities
    stats: dict[str, np.ndarray]  # float32 (n,) each: input statistics of the same images
    counts: dict[str, dict[str, int]]  # fact (src_mode, view) → value → validation images

    def summary(self) -> dict[str, Any]:
        """The card's record of it."""
        return {
            "split": "val", "images": len(self.scores),
            "components": int(self.projection.components.shape[0]),
            "statistics": sorted(self.stats),
            "counts": {k: dict(sorted(v.items())) for k, v in sorted(self.counts.items())},
            "tests": ["embedding_mmd", "score_ks", *(f"{s}_ks" for s in sorted(self.stats))],
        }  # fmt: skip

    def arrays(self) -> dict[str, np.ndarray]:
        """Its arrays under ``drift_*`` keys, for one ``.npz`` with the OOD reference."""
        return {
            f"{PREFIX}mean": self.projection.mean.astype(np.float32),
            f"{PREFIX}components": self.projection.components.astype(np.float32),
            f"{PREFIX}embeddings": self.embeddings.astype(np.float32),
            f"{PREFIX}scores": self.scores.astype(np.float32),
            **_count_arrays(self.counts),
            **{f"{STAT_PREFIX}{k}": v.astype(np.float32) for k, v in self.stats.items()},
        }

    @classmethod
    def from_arrays(cls, npz: Mapping[str, np.ndarray]) -> DriftReference | None:
        """The drift reference in ``npz``; None when it predates drift references."""
        if f"{PREFIX}embeddings" not in npz:
            return None
        projection = Projection(
            np.asarray(npz[f"{PREFIX}mean"], np.float64),
            np.asarray(npz[f"{PREFIX}components"], np.float64),
        )
        counts: dict[str, dict[str, int]] = {}
        for key in npz:
            if key.startswith(COUNT_PREFIX) and key.endswith("_names"):
                fact = key.removeprefix(COUNT_PREFIX).removesuffix("_names")
                values = npz[f"{COUNT_PREFIX}{fact}_values"]
                counts[fact] = {str(n): int(c) for n, c in zip(npz[key], values, strict=True)}
        stats = {
            key.removeprefix(STAT_PREFIX): np.asarray(npz[key], np.float32)
            for key in npz
            if key.startswith(STAT_PREFIX)
        }
        embeddings = np.asarray(npz[f"{PREFIX}embeddings"], np.float32)
        scores = np.asarray(npz[f"{PREFIX}scores"], np.float32)
        return cls(projection, embeddings, scores, stats, counts)


def build_drift_reference(
    bank: np.ndarray,
    val_embeddings: np.ndarray,
    val_scores: np.ndarray,
    val_stats: Mapping[str, np.ndarray],
    counts: Mapping[str, Mapping[str, int]],
    components: int = DEFAULT_COMPONENTS,
    sample: int = SAMPLE,
    seed: int = 0,
) -> DriftReference:
    """A drift reference: the projection fitted on the training ``bank``, a seeded sample of at
    most ``sample`` validation images (embeddings, scores and statistics, row-aligned)."""
    n = len(val_embeddings)
    if n < 2 or len(val_scores) != n or any(len(v) != n for v in val_stats.values()):
        raise ValueError(f"{n} validation embeddings, {len(val_scores)} scores and statistics "
                         "of other lengths: they must be row-aligned, 2 or more")  # fmt: skip
    projection = Projection.fit(bank, components)
    pick = np.arange(n)
    if n > sample:
        pick = np.sort(np.random.default_rng(seed).choice(n, sample, replace=False))
    return DriftReference(
        projection,
        projection(val_embeddings[pick]).astype(np.float32),
        np.asarray(val_scores, np.float32)[pick],
        {k: np.asarray(v, np.float32)[pick] for k, v in val_stats.items()},
        {f: {str(k): int(v) for k, v in c.items()} for f, c in counts.items()},
    )
