"""Assign images to train / val / test without ever putting a patient in two splits.

Groups are patients where the source knows them (NIH's label file, Kermany's file names); an
image without a patient id is its own group, and the data card then says the split is not
patient-grouped.
Groups are stratified by whether any of their images has Pneumonia, shuffled with the seed, and
dealt out so that each split gets its share of *images* of each stratum.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pneumo.data import schema
from pneumo.errors import DataError


def _groups(frame: pd.DataFrame) -> pd.Series:
    patients = frame[schema.PATIENT_ID]
    return patients.where(patients.notna(), "image:" + frame[schema.IMAGE_ID].astype(str))


def grouped_split(frame: pd.DataFrame, fractions: dict[str, float], seed: int) -> pd.Series:
    """A split name per row; ``fractions`` maps split names to shares of images (sum to 1)."""
    names = list(fractions)
    if not names:
        raise ValueError("no splits requested")
    groups = _groups(frame)
    per_group = pd.DataFrame({"g": groups.to_numpy(), "y": frame[schema.LABEL].to_numpy()})
    stats = per_group.groupby("g", sort=True).agg(n=("y", "size"), pos=("y", "max"))
    rng = np.random.default_rng(seed)
    assignment = pd.Series(names[-1], index=stats.index, dtype="object")
    for _, stratum in stats.groupby("pos", sort=True):
        order = stratum.index.to_numpy()[rng.permutation(len(stratum))]
        sizes = stratum.loc[order, "n"].to_numpy()
        # Midpoint of each group's image span decides where it falls: fair for big groups.
        position = (np.cumsum(sizes) - sizes / 2.0) / max(sizes.sum(), 1)
        bounds = np.cumsum([fractions[n] for n in names])
        which = np.searchsorted(bounds, position, side="right").clip(max=len(names) - 1)
        assignment.loc[order] = np.asarray(names, dtype=object)[which]
    return pd.Series(groups.map(assignment).to_numpy(), index=frame.index, name=schema.SPLIT)


def check_no_patient_overlap(frame: pd.DataFrame) -> None:
    """Refuse a split that puts any patient in two splits."""
    known = frame[frame[schema.PATIENT_ID].notna()]
    per_patient = known.groupby(schema.PATIENT_ID)[schema.SPLIT].nunique()
    leaking = per_patient[per_patient > 1]
    if len(leaking):
        examples = ", ".join(map(str, leaking.index[:5]))
        raise DataError(
            f"{len(leaking)} patient(s) appear in more than one split (e.g. {examples})",
            hint="the source's official split lists overlap; set split.use_official=false",
        )


def undersample(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The seed tutorial's 50/50 balancing of the training split (an option, off by default).

    Keeps every positive training image and as many randomly chosen negatives; other splits are
    untouched so that evaluation still sees the true prevalence.
    """
    train = frame[schema.SPLIT] == "train"
    pos = frame.index[train & (frame[schema.LABEL] == 1)]
    neg = frame.index[train & (frame[schema.LABEL] == 0)]
    if len(neg) <= len(pos):
        return frame
    rng = np.random.default_rng(seed)
    keep_neg = rng.choice(neg.to_numpy(), size=len(pos), replace=False)
    keep = frame.index[~train].union(pos).union(pd.Index(keep_neg))
    return frame.loc[keep.sort_values()]
