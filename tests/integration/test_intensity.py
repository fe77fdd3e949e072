"""A model trained with per-image standardisation: the spec travels to the card and the service
scores files exactly as evaluation (torch) did."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pneumo.config import RegisterConfig, load_config
from pneumo.data.decode.image import decode
from pneumo.serving.model import load_model
from pneumo.settings import get_settings
from pneumo.stages.register import register
from pneumo.training.fit import train
from tests.conftest import TINY_TRAIN, tiny_prepared


@pytest.mark.slow
def test_per_image_model_serves_what_it_was_evaluated_with(pneumo_root: Path) -> None:
    settings = get_settings()
    entry = tiny_prepared()
    cfg = load_config(None, [*TINY_TRAIN, "train.intensity=per_image"])
    result = train(entry, cfg, settings, progress=False)
    registered = register(result.run_id, RegisterConfig(), settings)
    package = pneumo_root / "runs" / result.run_id / "model"
    model = load_model(package, "pneumonia", registered.version)  # verification images pass
    assert model.spec.intensity == "per_image" and (model.spec.mean, model.spec.std) == (0, 1)
    evaluated = pd.read_parquet(
        io.BytesIO((pneumo_root / "runs" / result.run_id / "eval-test" / "predictions.parquet")
                   .read_bytes())
    )  # fmt: skip
    images = pneumo_root / "data" / "tiny" / "images"
    files = [images / name for name in evaluated["image_id"]]
    pixels = np.stack([decode(f.read_bytes(), model.spec.image).pixels for f in files])
    served = model.predict(pixels)  # the graph normalises, per image
    np.testing.assert_allclose(served, evaluated["probability"].to_numpy(), atol=1e-4)
