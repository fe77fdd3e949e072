"""The training loader: one DataLoader whose batches change per epoch, workers kept alive."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pneumo.data import schema
from pneumo.training.loader import EpochBatches, ShardImages, make_loader


def shard_dataset(tmp_path: Path, n: int = 12) -> ShardImages:
    pixels = np.arange(n, dtype=np.uint8)[:, None, None] * np.ones((1, 4, 4), np.uint8)
    np.save(tmp_path / "train-00000.npy", pixels)
    frame = pd.DataFrame(
        {
            schema.SPLIT: ["train"] * n,
            schema.SHARD: ["train-00000.npy"] * n,
            schema.SHARD_INDEX: np.arange(n),
            schema.LABEL: np.arange(n) % 2,
        }
    )
    return ShardImages(frame, str(tmp_path), ["train"])


@pytest.mark.parametrize("workers", [0, 1])
def test_one_loader_serves_each_epochs_batches_in_order(tmp_path: Path, workers: int) -> None:
    ds = shard_dataset(tmp_path)
    batches = EpochBatches()
    loader = make_loader(ds, batches, workers)
    seen_workers = []
    for epoch in range(3):
        order = np.random.default_rng(epoch).permutation(len(ds))
        batches.batches = [order[i : i + 4].tolist() for i in range(0, 12, 4)][epoch:]
        got = [pixels[:, 0, 0].tolist() for pixels, _ in loader]
        assert got == batches.batches  # pixel value == image index, so order is exact
        assert len(loader) == 3 - epoch
        if workers:
            seen_workers.append(loader._iterator._workers[0].pid)  # type: ignore[union-attr]
    if workers:
        assert len(set(seen_workers)) == 1  # the same worker process served every epoch
