"""Splits: patient-grouped, stratified, seeded; the leak check; undersampling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pneumo.data import schema
from pneumo.data.split import check_no_patient_overlap, grouped_split, undersample
from pneumo.errors import DataError

FRACTIONS = {"train": 0.7, "val": 0.1, "test": 0.2}


def _frame(n_patients: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        sick = rng.random() < 0.2
        for k in range(int(rng.integers(1, 6))):
            rows.append((f"{p}_{k}.png", str(p), int(sick and rng.random() < 0.7)))
    return pd.DataFrame(rows, columns=[schema.IMAGE_ID, schema.PATIENT_ID, schema.LABEL])


def test_no_patient_in_two_splits_and_shares_close_to_fractions() -> None:
    frame = _frame()
    frame[schema.SPLIT] = grouped_split(frame, FRACTIONS, seed=1)
    check_no_patient_overlap(frame)
    assert frame.groupby(schema.PATIENT_ID)[schema.SPLIT].nunique().max() == 1
    shares = frame[schema.SPLIT].value_counts(normalize=True)
    for name, share in FRACTIONS.items():
        assert abs(shares[name] - share) < 0.04
    prevalence = frame.groupby(schema.SPLIT)[schema.LABEL].mean()
    assert prevalence.max() - prevalence.min() < 0.06


def test_split_is_seeded() -> None:
    frame = _frame()
    a = grouped_split(frame, FRACTIONS, seed=3)
    b = grouped_split(frame.sample(frac=1.0, random_state=0).sort_index(), FRACTIONS, seed=3)
    c = grouped_split(frame, FRACTIONS, seed=4)
    assert a.equals(b)
    assert not a.equals(c)


def test_without_patient_ids_each_image_is_its_own_group() -> None:
    frame = _frame()
    frame[schema.PATIENT_ID] = None
    split = grouped_split(frame, FRACTIONS, seed=0)
    assert set(split) == set(FRACTIONS)


def test_overlap_is_refused() -> None:
    frame = pd.DataFrame(
        {schema.PATIENT_ID: ["1", "1", "2"], schema.SPLIT: ["train", "test", "val"]}
    )
    with pytest.raises(DataError, match="1 patient"):
        check_no_patient_overlap(frame)


def test_undersample_balances_train_only() -> None:
    frame = _frame()
    frame[schema.SPLIT] = grouped_split(frame, FRACTIONS, seed=0)
    out = undersample(frame, seed=0)
    train = out[out[schema.SPLIT] == "train"]
    assert train[schema.LABEL].sum() * 2 == len(train)
    others = frame[frame[schema.SPLIT] != "train"]
    assert out[out[schema.SPLIT] != "train"].equals(others)
