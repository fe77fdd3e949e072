"""How alike two maps are: the randomisation sanity check of the maps.

``ssim`` is the structural similarity of Wang et al. (2004) as scikit-image computes it by
default (a 7 x 7 uniform window, K1 = 0.01, K2 = 0.03, sample covariances, the mean over the
windows that fit), for maps in [0, 1]: the measure Adebayo et al. (2018) use to show that a
map which survives re-initialising the model's weights cannot be explaining what it learnt.
"""

from __future__ import annotations

import numpy as np

WINDOW = 7
K1, K2 = 0.01, 0.03


def _window_means(x: np.ndarray, size: int) -> np.ndarray:
    """Means of every ``size`` x ``size`` window that fits in ``x`` (a summed-area table)."""
    table = np.pad(np.cumsum(np.cumsum(x, axis=0), axis=1), ((1, 0), (1, 0)))
    sums = table[size:, size:] - table[:-size, size:] - table[size:, :-size] + table[:-size, :-size]
    return np.asarray(sums / (size * size), dtype=np.float64)


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Mean structural similarity of two same-shaped 2-D arrays (1: identical)."""
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if x.shape != y.shape or x.ndim != 2 or min(x.shape) < WINDOW:
        raise ValueError(
            f"ssim needs two equal 2-D arrays of {WINDOW} px or more: {x.shape}, {y.shape}"
        )
    n = WINDOW * WINDOW
    unbias = n / (n - 1)
    mx, my = _window_means(x, WINDOW), _window_means(y, WINDOW)
    vx = unbias * (_window_means(x * x, WINDOW) - mx * mx)
    vy = unbias * (_window_means(y * y, WINDOW) - my * my)
    cxy = unbias * (_window_means(x * y, WINDOW) - mx * my)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())  # over the windows that fit: scikit-image's crop of the borders
