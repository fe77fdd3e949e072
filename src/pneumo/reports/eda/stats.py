"""The numbers behind the EDA report, computed from the manifest with vectorised pandas/numpy.

Every function tolerates a missing column or an all-null one (Kermany has no patient ids, no
findings, no sex or age) and says so by returning ``None`` or an empty result; the report turns
that into a "not available" sentence. Nothing here draws or formats.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from pneumo.data import schema

POSITIVE = "Pneumonia"
NEGATIVE = "No Pneumonia"
CLASSES: tuple[str, ...] = (POSITIVE, NEGATIVE)
UNKNOWN = "unknown"

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
LabelArray = npt.NDArray[np.int8]


def column(manifest: pd.DataFrame, name: str) -> pd.Series | None:
    """The column, or None where it is absent or entirely null."""
    if name not in manifest.columns:
        return None
    values = manifest[name]
    if not values.notna().any():
        return None
    return values


def floats(manifest: pd.DataFrame, name: str) -> FloatArray | None:
    """A numeric column as float64 with NaN for missing, or None where absent or all null."""
    values = column(manifest, name)
    if values is None:
        return None
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def labels(manifest: pd.DataFrame) -> LabelArray:
    """The target as int8: 1 Pneumonia, 0 not, -1 unknown (missing label column or value)."""
    values = column(manifest, schema.LABEL)
    if values is None:
        return np.full(len(manifest), -1, dtype=np.int8)
    numeric = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(np.isnan(numeric), -1, numeric > 0).astype(np.int8)


def by_class(values: FloatArray, label: LabelArray) -> dict[str, FloatArray]:
    """Split ``values`` by class, dropping NaN."""
    keep = ~np.isnan(values)
    return {POSITIVE: values[keep & (label == 1)], NEGATIVE: values[keep & (label == 0)]}


@dataclass(frozen=True)
class Composition:
    """Counts of a categorical column per class: ``counts[i, j]`` is value i in class j."""

    values: tuple[str, ...]
    classes: tuple[str, ...]
    counts: IntArray


def category_by_class(
    manifest: pd.DataFrame, name: str, label: LabelArray, order: tuple[str, ...] = ()
) -> Composition | None:
    """Counts per class of each value of a categorical column: ``order`` first, then the rest,
    then "unknown" (missing). None where the column is absent or entirely null, or no image has
    a known label."""
    values = column(manifest, name)
    if values is None:
        return None
    keys = values.astype("string").fillna(UNKNOWN).to_numpy(dtype=object)
    frame = pd.DataFrame({"value": keys, "label": label})
    frame = frame[frame["label"] >= 0]
    counts = frame.groupby(["value", "label"]).size().unstack(fill_value=0)
    counts = counts.reindex(columns=[1, 0], fill_value=0)
    if counts.empty or int(counts.to_numpy().sum()) == 0:
        return None  # no labelled image: nothing to compare between classes
    present = [str(v) for v in counts.index]
    rest = sorted(v for v in present if v not in order and v != UNKNOWN)
    ordered = [v for v in order if v in present] + rest + ([UNKNOWN] if UNKNOWN in present else [])
    return Composition(
        values=tuple(ordered),
        classes=CLASSES,
        counts=counts.reindex(ordered).to_numpy(dtype=np.int64),
    )


@dataclass(frozen=True)
class Findings:
    """Finding counts and their co-occurrence (rows with every finding null are left out)."""

    names: tuple[str, ...]
    counts: IntArray  # images with each finding
    no_finding: int  # labelled images with none of the findings
    cooccurrence: IntArray  # [i, j]: images with both i and j; the diagonal is ``counts``
    labelled: int  # images with at least one finding label known
    pneumonia_alone: int | None  # Pneumonia images with no other finding


def findings(manifest: pd.DataFrame) -> Findings | None:
    names = tuple(f for f in schema.FINDINGS if column(manifest, f) is not None)
    if not names:
        return None
    raw = manifest[list(names)].apply(pd.to_numeric, errors="coerce")
    matrix = raw.to_numpy(dtype=np.float32, na_value=np.nan)
    known = ~np.isnan(matrix).all(axis=1)
    ones = np.nan_to_num(matrix[known], nan=0.0) > 0
    as_float = ones.astype(np.float32)
    # float32 matmul is exact for counts below 2**24, far above any chest X-ray collection.
    cooc = np.rint(as_float.T @ as_float).astype(np.int64)
    alone = None
    if POSITIVE in names:
        alone = int((ones[:, names.index(POSITIVE)] & (ones.sum(axis=1) == 1)).sum())
    return Findings(
        names=names,
        counts=ones.sum(axis=0).astype(np.int64),
        no_finding=int((~ones.any(axis=1)).sum()),
        cooccurrence=cooc,
        labelled=int(known.sum()),
        pneumonia_alone=alone,
    )


@dataclass(frozen=True)
class SplitRow:
    name: str
    images: int
    pneumonia: int
    patients: int | None

    @property
    def prevalence(self) -> float:
        return self.pneumonia / self.images if self.images else 0.0


def splits(manifest: pd.DataFrame, label: LabelArray) -> list[SplitRow]:
    """Images, positives and patients per split, in the schema's split order."""
    values = column(manifest, schema.SPLIT)
    if values is None:
        return []
    keys = values.astype("string").fillna(UNKNOWN)
    frame = pd.DataFrame({"split": keys.to_numpy(dtype=object), "pos": label == 1})
    patients = column(manifest, schema.PATIENT_ID)
    if patients is not None:
        frame["patient"] = patients.to_numpy(dtype=object)
    grouped = frame.groupby("split", sort=False)
    images = grouped.size()
    positives = grouped["pos"].sum()
    unique = grouped["patient"].nunique() if patients is not None else None
    present = [str(s) for s in images.index]
    order = [s for s in schema.SPLITS if s in present] + sorted(
        s for s in present if s not in schema.SPLITS
    )
    return [
        SplitRow(
            name=s,
            images=int(images[s]),
            pneumonia=int(positives[s]),
            patients=int(unique[s]) if unique is not None else None,
        )
        for s in order
    ]


@dataclass(frozen=True)
class Patients:
    count: int
    images_median: float
    images_max: int
    in_several_splits: int | None  # patients whose images fall in more than one split


def patients(manifest: pd.DataFrame) -> Patients | None:
    ids = column(manifest, schema.PATIENT_ID)
    if ids is None:
        return None
    frame = pd.DataFrame({"patient": ids.to_numpy(dtype=object)})
    split = column(manifest, schema.SPLIT)
    if split is not None:
        frame["split"] = split.to_numpy(dtype=object)
    frame = frame.dropna(subset=["patient"])
    grouped = frame.groupby("patient", sort=False)
    sizes = grouped.size()
    leaks = int((grouped["split"].nunique() > 1).sum()) if split is not None else None
    return Patients(
        count=len(sizes),
        images_median=float(sizes.median()),
        images_max=int(sizes.max()),
        in_several_splits=leaks,
    )


def value_counts(manifest: pd.DataFrame, name: str) -> dict[str, int]:
    """Counts of each value of a column, most frequent first (empty where absent/null)."""
    values = column(manifest, name)
    if values is None:
        return {}
    counts = values.astype("string").fillna(UNKNOWN).value_counts()
    return {str(k): int(v) for k, v in counts.items()}


def describe(values: FloatArray) -> dict[str, float] | None:
    """Count, mean, median, min and max of the non-NaN values; None when there are none."""
    kept = values[~np.isnan(values)]
    if kept.size == 0:
        return None
    return {
        "n": float(kept.size),
        "mean": float(kept.mean()),
        "median": float(np.median(kept)),
        "min": float(kept.min()),
        "max": float(kept.max()),
    }
