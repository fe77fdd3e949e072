"""How much colour an RGB image holds: a radiograph saved as RGB is gray in colour.

Many radiographs reach a service as RGB files (every image of Kermany's 224 px release is RGB
JPEG) whose three channels are equal up to JPEG's rounding; a colour photograph, an icon or a
screenshot is not. :func:`colour_share` is the share of pixels whose channels differ by more
than :data:`CHANNEL_TOLERANCE` grey levels, measured on a copy at most :data:`PROBE_SIDE`
pixels a side (colour regions survive the averaging, and a 40 MP file costs no more to judge).
"""

from __future__ import annotations

from typing import Final

import numpy as np
from PIL import Image

CHANNEL_TOLERANCE: Final = 24  # of 255: above JPEG's chroma rounding of a gray image (a few levels)
PROBE_SIDE: Final = 256


def colour_share(img: Image.Image) -> float:
    """Share (0..1) of the pixels of RGB ``img`` whose max - min channel exceeds the tolerance."""
    factor = max(1, min(img.size) // PROBE_SIDE)
    small = img.reduce(factor) if factor > 1 else img
    rgb = np.asarray(small.convert("RGB"), dtype=np.int16)
    if rgb.size == 0:
        return 0.0
    spread = rgb.max(axis=-1) - rgb.min(axis=-1)
    return float(np.mean(spread > CHANNEL_TOLERANCE))
