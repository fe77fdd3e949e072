"""The same radiograph twice, re-encoded or resized: found by a perceptual hash, kept in one split.

Byte-identical files are found by their content hash and quarantined (see `prepare`). A copy
that was re-saved, recompressed or resized has other bytes but the same picture, and if it sat
in train while its twin sat in test, the test would score an image the model has seen. Its
*perceptual hash* is computed on the cached pixels: the image reduced to 64x64, its 2-D DCT,
and the signs of the 16x16 lowest frequencies (the constant term left out: 255 bits) against
their median. Two images within :data:`MAX_DISTANCE` bits are the same radiograph.

The threshold was measured on images re-encoded as JPEG (quality 60-90) after a resize to
60-95 %, against the closest pair of distinct images: on the Kermany copy in
``../shared/data/kermany-224`` cached at 128 px, copies stayed within 12 bits of their
originals and the closest two of the 5,216 distinct radiographs were 38 bits apart; on the demo's
synthetic images at 64 px (drawn from one template, so far more alike than real films), copies
within 14 and distinct images 18 or more. (An 8x8 hash, the textbook one, is too coarse for chest
radiographs: distinct children's films came within 2 of its 63 bits.)

:func:`keep_together` then treats the twins and each patient's images as one group: a group
found in more than one split moves whole to the split holding most of its images.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd
from PIL import Image

from pneumo.data import schema

SIDE = 64  # the image is reduced to SIDE x SIDE before its DCT
LOW = 16  # the LOW x LOW lowest frequencies are kept
BITS = LOW * LOW - 1  # the constant term carries no shape
MAX_DISTANCE = 16  # of BITS: copies measured within 14, distinct images 18 or more apart
_CHUNK = 1024  # rows of the distance matrix computed at a time


def _dct_matrix(n: int) -> npt.NDArray[np.float64]:
    k = np.arange(n)
    matrix = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n))
    matrix[0] /= np.sqrt(2.0)
    out: npt.NDArray[np.float64] = matrix
    return out


def perceptual_hash(pixels: npt.NDArray[np.uint8]) -> str:
    """The 255-bit perceptual hash of a 2-D uint8 image, as 64 hex digits."""
    small = Image.fromarray(np.ascontiguousarray(pixels)).resize((SIDE, SIDE), Image.Resampling.BOX)
    dct = _dct_matrix(SIDE)
    low = (dct @ np.asarray(small, np.float64) @ dct.T)[:LOW, :LOW].ravel()[1:]
    bits = np.append(low > np.median(low), False)  # padded to 256 bits
    return np.packbits(bits).tobytes().hex()


def _signs(hashes: Sequence[str]) -> npt.NDArray[np.float32]:
    raw = np.frombuffer(bytes.fromhex("".join(hashes)), np.uint8).reshape(len(hashes), -1)
    bits = np.unpackbits(raw, axis=1)[:, :BITS].astype(np.float32)
    signs: npt.NDArray[np.float32] = bits * 2 - 1
    return signs


def near_pairs(hashes: Sequence[str], max_distance: int = MAX_DISTANCE) -> list[tuple[int, int]]:
    """Index pairs (i < j) of hashes within ``max_distance`` bits of each other.

    With bits as ±1, distance = (BITS - dot) / 2, so a chunked matrix product compares every
    pair: about a minute for 100,000 images on two cores.
    """
    if len(hashes) < 2:
        return []
    signs = _signs(hashes)
    least_dot = BITS - 2 * max_distance
    pairs: list[tuple[int, int]] = []
    for start in range(0, len(signs), _CHUNK):
        dots = signs[start : start + _CHUNK] @ signs.T
        rows, cols = np.nonzero(dots >= least_dot - 0.5)
        found = zip(rows.tolist(), cols.tolist(), strict=True)
        pairs.extend((start + r, c) for r, c in found if start + r < c)
    return pairs


def near_any(
    queries: Sequence[str], references: Sequence[str], max_distance: int = MAX_DISTANCE
) -> npt.NDArray[np.bool_]:
    """For each query hash, whether any reference hash is within ``max_distance`` bits."""
    found = np.zeros(len(queries), dtype=bool)
    if not len(queries) or not len(references):
        return found
    refs = _signs(references)
    least_dot = BITS - 2 * max_distance
    for start in range(0, len(queries), _CHUNK):
        dots = _signs(queries[start : start + _CHUNK]) @ refs.T
        found[start : start + len(dots)] = (dots >= least_dot - 0.5).any(axis=1)
    return found


def _components(n: int, edges: Sequence[tuple[int, int]]) -> npt.NDArray[np.int64]:
    """A component label per node (union-find with path halving)."""
    parent = np.arange(n)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    for a, b in edges:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.array([root(i) for i in range(n)], dtype=np.int64)


@dataclass
class Twins:
    """What :func:`keep_together` found and did, for the data card."""

    groups: list[list[str]] = field(default_factory=list)  # paths of each group of twins
    across_splits: int = 0  # groups (twins and their patients) that spanned several splits
    moved: list[str] = field(default_factory=list)  # image ids that changed split

    def report(self, examples: int = 10) -> dict[str, object]:
        return {
            "method": f"perceptual hash: signs of the {LOW}x{LOW} lowest DCT frequencies of the "
            f"cached image reduced to {SIDE}x{SIDE}; at most {MAX_DISTANCE} of {BITS} bits apart",
            "groups": len(self.groups),
            "images": sum(len(g) for g in self.groups),
            "across_splits": self.across_splits,
            "moved_images": len(self.moved),
            "examples": self.groups[:examples],
        }


def keep_together(frame: pd.DataFrame) -> tuple[pd.Series, Twins]:
    """The split of every row once twins and their patients sit in one split, and what moved.

    ``frame`` holds the usable images with their split, patient id and perceptual hash.
    """
    n = len(frame)
    twins = near_pairs(frame[schema.PERCEPTUAL_HASH].tolist())
    found = Twins()
    labels = _components(n, twins)
    paths = frame[schema.PATH].astype(str).to_numpy()
    twin_rows = sorted({i for pair in twins for i in pair})
    for label in dict.fromkeys(labels[twin_rows].tolist()):
        found.groups.append(sorted(paths[[i for i in twin_rows if labels[i] == label]].tolist()))
    patients = frame[schema.PATIENT_ID].to_numpy()
    same_patient = _patient_edges(patients)
    group = _components(n, [*twins, *same_patient])
    split = frame[schema.SPLIT].to_numpy(dtype=object).copy()
    for members in pd.Series(np.arange(n)).groupby(group).groups.values():
        rows = np.asarray(members)
        present = pd.Series(split[rows]).value_counts()
        if len(present) < 2:
            continue
        found.across_splits += 1
        order = {s: i for i, s in enumerate(schema.SPLITS)}
        target = min(present.index, key=lambda s: (-present[s], order.get(s, len(order))))
        moving = rows[split[rows] != target]
        found.moved.extend(frame[schema.IMAGE_ID].to_numpy()[moving].tolist())
        split[moving] = target
    return pd.Series(split, index=frame.index, name=schema.SPLIT), found


def _patient_edges(patients: npt.NDArray[np.object_]) -> list[tuple[int, int]]:
    """Edges chaining the rows of each known patient (unknown ids join nothing)."""
    edges: list[tuple[int, int]] = []
    known = pd.Series(patients).dropna()
    for rows in known.groupby(known).groups.values():
        edges.extend(itertools.pairwise(list(rows)))
    return edges
