"""What a served model's inputs are compared with: its validation images, summarised.

Built at registration from the model's own **validation** split (images it did not train on,
so a window of new images like them is not flagged): a sample of their embeddings projected
on the principal directions of the training bank (:class:`~pneumo.monitoring.drift.Projection`),
their probabilities, and per-image input statistics from the manifest (intensity mean and
spread of the cached image, the source's width and height) with the source pixel modes
counted (bit depth, colour). It travels inside ``reference.npz`` (keys ``drift_*``); a
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


@dataclass(frozen=True)
class DriftReference:
    projection: Projection
    embeddings: np.ndarray  # float32 (n, k): the validation sample, projected
    scores: np.ndarray  # float32 (n,): its probabilities
    stats: dict[str, np.ndarray]  # float32 (n,) each: input statistics of the same images
    modes: dict[str, int]  # source pixel mode → validation images (all of them)

    def summary(self) -> dict[str, Any]:
        """The card's record of it."""
        return {
            "split": "val", "images": len(self.scores),
            "components": int(self.projection.components.shape[0]),
            "statistics": sorted(self.stats), "modes": dict(sorted(self.modes.items())),
            "tests": ["embedding_mmd", "score_ks", *(f"{s}_ks" for s in sorted(self.stats))],
        }  # fmt: skip

    def arrays(self) -> dict[str, np.ndarray]:
        """Its arrays under ``drift_*`` keys, for one ``.npz`` with the OOD reference."""
        modes = sorted(self.modes.items())
        return {
            f"{PREFIX}mean": self.projection.mean.astype(np.float32),
            f"{PREFIX}components": self.projection.components.astype(np.float32),
            f"{PREFIX}embeddings": self.embeddings.astype(np.float32),
            f"{PREFIX}scores": self.scores.astype(np.float32),
            f"{PREFIX}mode_names": np.array([m for m, _ in modes], dtype=np.str_),
            f"{PREFIX}mode_counts": np.array([c for _, c in modes], dtype=np.int64),
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
        names = [str(n) for n in npz[f"{PREFIX}mode_names"]]
        counts = [int(c) for c in npz[f"{PREFIX}mode_counts"]]
        stats = {
            key.removeprefix(STAT_PREFIX): np.asarray(npz[key], np.float32)
            for key in npz
            if key.startswith(STAT_PREFIX)
        }
        embeddings = np.asarray(npz[f"{PREFIX}embeddings"], np.float32)
        scores = np.asarray(npz[f"{PREFIX}scores"], np.float32)
        return cls(projection, embeddings, scores, stats, dict(zip(names, counts, strict=True)))


def build_drift_reference(
    bank: np.ndarray,
    val_embeddings: np.ndarray,
    val_scores: np.ndarray,
    val_stats: Mapping[str, np.ndarray],
    modes: Mapping[str, int],
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
        {str(k): int(v) for k, v in modes.items()},
    )
