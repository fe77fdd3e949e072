"""Twins and children: Kermany patient ids from file names, perceptual hashes, one split each."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pneumo.data import schema
from pneumo.data.near_duplicates import (
    BITS,
    MAX_DISTANCE,
    _signs,
    keep_together,
    near_any,
    near_pairs,
    perceptual_hash,
)
from pneumo.data.sources.layout import kermany_patient
from pneumo.data.sources.synthetic import render_image


@pytest.mark.parametrize(
    ("folder", "name", "patient"),
    [
        ("train", "person1000_bacteria_2931.jpeg", "train/person1000"),
        ("train", "person1000_virus_1681.jpeg", "train/person1000"),
        ("train", "person1_virus_8_2.jpeg", "train/person1"),
        ("train", "IM-0115-0001.jpeg", "train/IM-0115"),
        ("train", "IM-0115-0001-0002.jpeg", "train/IM-0115"),
        ("test", "NORMAL2-IM-0115-0001.jpeg", "test/IM-0115"),
        ("val", "NORMAL2-IM-1427-0001-0003.jpeg", "val/IM-1427"),
        ("train", "scan.jpeg", None),
        ("train", "person_bacteria_1.jpeg", None),
    ],
)
def test_kermany_patient_ids_come_from_the_name_within_the_split_folder(
    folder: str, name: str, patient: str | None
) -> None:
    assert kermany_patient(folder, name) == patient


def film(seed: int, size: int = 128) -> np.ndarray:
    """A synthetic chest film (pneumo's own generator), a different patient for each seed."""
    return render_image(np.random.default_rng(seed), size, pneumonia=seed % 2 == 0, view="PA")


def reencoded(pixels: np.ndarray, scale: float, quality: int) -> np.ndarray:
    side = int(pixels.shape[0] * scale)
    small = Image.fromarray(pixels).resize((side, side), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    small.save(buf, format="JPEG", quality=quality)
    back = Image.open(io.BytesIO(buf.getvalue())).convert("L").resize(pixels.shape[::-1])
    return np.asarray(back)


def distance(a: str, b: str) -> int:
    sa, sb = _signs([a, b])
    return int((BITS - float(sa @ sb)) / 2)


def test_a_resized_recompressed_copy_hashes_close_and_a_different_film_far() -> None:
    original = film(1)
    copy = reencoded(original, 0.7, 70)
    assert distance(perceptual_hash(original), perceptual_hash(copy)) <= MAX_DISTANCE
    assert distance(perceptual_hash(original), perceptual_hash(film(2))) > MAX_DISTANCE
    assert len(perceptual_hash(original)) == 64  # 255 bits and a pad bit, in hex


def test_near_pairs_finds_exactly_the_twins() -> None:
    hashes = [perceptual_hash(film(s)) for s in range(30)]
    hashes.append(perceptual_hash(reencoded(film(7), 0.8, 80)))
    hashes.append(perceptual_hash(reencoded(film(19), 0.6, 65)))
    assert sorted(near_pairs(hashes)) == [(7, 30), (19, 31)]
    assert near_pairs(hashes[:1]) == []


def test_near_any_flags_only_the_queries_with_a_twin_among_the_references() -> None:
    references = [perceptual_hash(film(s)) for s in range(20)]
    queries = [
        perceptual_hash(reencoded(film(3), 0.75, 75)),  # a re-saved copy of reference 3
        perceptual_hash(film(40)),  # another child
        perceptual_hash(film(11)),  # reference 11 itself
    ]
    assert near_any(queries, references).tolist() == [True, False, True]
    assert near_any(queries, []).tolist() == [False, False, False]
    assert near_any([], references).shape == (0,)


def frame(rows: Sequence[tuple[str, str | None, str, np.ndarray]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            schema.IMAGE_ID: [r[0] for r in rows],
            schema.PATH: [f"/data/{r[0]}" for r in rows],
            schema.PATIENT_ID: pd.Series([r[1] for r in rows], dtype="object"),
            schema.SPLIT: [r[2] for r in rows],
            schema.PERCEPTUAL_HASH: [perceptual_hash(r[3]) for r in rows],
        }
    )


def test_twins_bring_their_patients_into_the_split_holding_most_of_them() -> None:
    a, b, c = film(1), film(2), film(3)
    rows = [
        ("p1-a.png", "p1", "train", a),
        ("p1-b.png", "p1", "train", b),
        ("p2-a.png", "p2", "test", reencoded(a, 0.75, 75)),  # p1's film again, as p2's
        ("p2-b.png", "p2", "test", c),  # so p2's other film follows it
        ("p3-a.png", "p3", "val", film(4)),
        ("p4-a.png", None, "test", film(5)),
    ]
    split, twins = keep_together(frame(rows))
    assert split.tolist() == ["train", "train", "train", "train", "val", "test"]
    assert twins.groups == [["/data/p1-a.png", "/data/p2-a.png"]]
    assert twins.across_splits == 1 and sorted(twins.moved) == ["p2-a.png", "p2-b.png"]
    report = twins.report()
    assert report["groups"] == 1 and report["images"] == 2 and report["moved_images"] == 2


def test_a_tie_goes_to_the_earlier_split_and_lone_images_never_move() -> None:
    a = film(10)
    rows = [
        ("x.png", None, "test", a),
        ("y.png", None, "val", reencoded(a, 0.9, 85)),
        ("z.png", None, "test", film(11)),
    ]
    split, twins = keep_together(frame(rows))
    assert split.tolist() == ["val", "val", "test"]
    assert twins.moved == ["x.png"]
