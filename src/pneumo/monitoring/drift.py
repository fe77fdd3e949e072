"""Two-sample drift tests, numpy only: are the images arriving like the reference images?

- **Embeddings**: the maximum mean discrepancy (Gretton et al., JMLR 2012) between a window of
  recent embeddings and the reference's, on a PCA projection of the L2-normalised embeddings
  (the OOD score's geometry), Gaussian kernel with the median heuristic, p-value by a
  permutation test (all permutations scored in one matrix product). One test for the whole
  vector, so no correction for multiple tests, and it sees shifts in any direction or shape.
- **Scores**: the two-sample Kolmogorov-Smirnov test on the probabilities (Stephens'
  asymptotic p-value, as scipy's ``ks_2samp(method="asymp")``).

Their false-alarm rate and power on real windows are measured by benchmarks/drift_power.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

DEFAULT_COMPONENTS: Final = 8
DEFAULT_PERMUTATIONS: Final = 500


@dataclass(frozen=True)
class TestResult:
    name: str
    statistic: float
    p_value: float
    n_reference: int
    n_window: int

    def drifted(self, alpha: float) -> bool:
        return self.p_value < alpha


def _unit(embeddings: np.ndarray) -> np.ndarray:
    emb = np.asarray(embeddings, dtype=np.float64)
    if emb.ndim != 2:
        raise ValueError(f"embeddings must be (N, D), got shape {emb.shape}")
    out: np.ndarray = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    return out


@dataclass(frozen=True)
class Projection:
    """The reference's principal directions of L2-normalised embeddings."""

    mean: np.ndarray  # (D,)
    components: np.ndarray  # (k, D), orthonormal rows

    @classmethod
    def fit(cls, embeddings: np.ndarray, k: int = DEFAULT_COMPONENTS) -> Projection:
        unit = _unit(embeddings)
        if len(unit) < 2:
            raise ValueError("a projection needs at least 2 reference embeddings")
        mean = unit.mean(axis=0)
        _, _, vt = np.linalg.svd(unit - mean, full_matrices=False)
        return cls(mean, vt[: min(k, len(vt))])

    def __call__(self, embeddings: np.ndarray) -> np.ndarray:
        unit = _unit(embeddings)
        if unit.shape[1] != self.mean.shape[0]:
            raise ValueError(
                f"embedding has {unit.shape[1]} features, the projection {self.mean.shape[0]}"
            )
        out: np.ndarray = (unit - self.mean) @ self.components.T
        return out


def _kernel(points: np.ndarray) -> np.ndarray:
    sq = np.sum(points**2, axis=1)
    dist = np.maximum(sq[:, None] + sq[None, :] - 2 * points @ points.T, 0.0)
    off = dist[~np.eye(len(points), dtype=bool)]
    scale = float(np.median(off)) if off.size else 0.0
    kernel: np.ndarray = np.exp(-dist / scale) if scale > 0 else np.ones_like(dist)
    return kernel


def _mmd2(kernel: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Unbiased MMD² for each row of ``window`` (P, N) marking the window's points (1) among
    the pooled ones, all from one kernel matrix."""
    m = window.sum(axis=1)
    n = kernel.shape[0] - m
    kw = window @ kernel
    k_ww = np.sum(kw * window, axis=1)
    k_wr = kw.sum(axis=1) - k_ww
    k_rr = kernel.sum() - k_ww - 2 * k_wr
    diag = 1.0  # exp(0) on the diagonal
    out: np.ndarray = (
        (k_rr - n * diag) / (n * (n - 1)) + (k_ww - m * diag) / (m * (m - 1)) - 2 * k_wr / (n * m)
    )
    return out


def mmd_test(
    reference: np.ndarray,
    window: np.ndarray,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
) -> TestResult:
    """MMD permutation test between two samples of projected embeddings (rows)."""
    ref, win = np.asarray(reference, np.float64), np.asarray(window, np.float64)
    if len(ref) < 2 or len(win) < 2:
        raise ValueError(f"the MMD test needs 2+ points on each side, got {len(ref)}, {len(win)}")
    if permutations < 1:
        raise ValueError(f"permutations must be at least 1, got {permutations}")
    kernel = _kernel(np.vstack([ref, win]))
    total = len(ref) + len(win)
    observed = np.zeros((1, total))
    observed[0, len(ref) :] = 1.0
    rng = np.random.default_rng(seed)
    order = np.argsort(rng.random((permutations, total)), axis=1)
    shuffled = (order < len(win)).astype(np.float64)  # a random m-subset per row
    stat = float(_mmd2(kernel, observed)[0])
    null = _mmd2(kernel, shuffled)
    p = (1 + int(np.sum(null >= stat - 1e-12))) / (1 + permutations)
    return TestResult("embedding_mmd", stat, p, len(ref), len(win))


def _kolmogorov_sf(x: float) -> float:
    """P(K > x) for the Kolmogorov distribution."""
    if x < 0.2:  # the series converges slowly below; the probability is 1 to 9 digits
        return 1.0
    k = np.arange(1, 101)
    total = float(2 * np.sum((-1.0) ** (k - 1) * np.exp(-2 * (k * x) ** 2)))
    return min(max(total, 0.0), 1.0)


def ks_test(reference: np.ndarray, window: np.ndarray, name: str = "score_ks") -> TestResult:
    """Two-sample Kolmogorov-Smirnov test (two-sided, asymptotic p-value)."""
    a = np.sort(np.asarray(reference, np.float64).reshape(-1))
    b = np.sort(np.asarray(window, np.float64).reshape(-1))
    if not len(a) or not len(b):
        raise ValueError("the KS test needs values on both sides")
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / len(a)
    cdf_b = np.searchsorted(b, grid, side="right") / len(b)
    d = float(np.max(np.abs(cdf_a - cdf_b)))
    en = np.sqrt(len(a) * len(b) / (len(a) + len(b)))
    p = _kolmogorov_sf((en + 0.12 + 0.11 / en) * d)
    return TestResult(name, d, p, len(a), len(b))
