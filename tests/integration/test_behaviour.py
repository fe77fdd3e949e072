"""Behavioural tests of a trained model, as it is served (ONNX Runtime, the service's decode).

In the manner of Made-With-ML's model tests: invariances the model must have (the same
radiograph stored as 8-bit PNG, 16-bit PNG, JPEG, DICOM MONOCHROME2, MONOCHROME1 or a 12-bit
windowed DICOM scores the same; a small rotation or exposure change moves the score little) and
a directional expectation (an opacity drawn into a normal film raises the score).

The model is trained here on synthetic films (ResNet-18 at 64 px, 500 films; under a minute on
two cores) and registered; ``PNEUMO_BEHAVIOUR_MODEL`` (a package folder, or ``models:/…`` with
the caller's ``PNEUMO_ROOT``) runs the same tests on any registered model, e.g. the Kermany
recipe's. Encodings are checked on synthetic films and on real Kermany films when
``../shared/data`` is there (input handling does not depend on the model's domain); rotations
and exposure on films of the model's own kind.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pneumo.serving.inputs import prepare_upload
from pneumo.serving.model import LoadedModel
from tests.conftest import REPO, dicom_bytes, png_bytes
from tests.serving_support import pytest_env

pytestmark = [pytest.mark.slow, pytest.mark.behaviour]

# The bounds, stated before measuring: an encoding carries the same picture, so it may move the
# score by no more than its rounding does (0.02); a rotation of up to 5 degrees or an exposure
# change of 10 % (both within what training augments) by at most 0.10.
ENCODING_BOUND = 0.02
PERTURBATION_BOUND = 0.10
# An opacity must raise the score of a normal film, on average by at least this much.
OPACITY_GAIN = 0.10
FILM_SIDE = 256
SYNTHETIC_SEEDS = range(100, 106)
TRAIN = [
    "synthetic.patients=500", "synthetic.max_images_per_patient=1", "synthetic.image_size=128",
    "synthetic.prevalence=0.5", "prepare.image_size=64", "train.backbone=resnet18",
    "train.epochs=10", "train.batch_size=32", "train.lr=0.001", "train.workers=0",
    "train.checkpoint_every=100", "train.augment.gamma=0.3", "train.augment.noise=0.02",
    "train.augment.blur_sigma=1.0", "train.augment.jpeg_quality=50",
]  # fmt: skip


def _trained_model(root: Path) -> LoadedModel:
    from pneumo import storage
    from pneumo.config import RegisterConfig, load_config
    from pneumo.data.preparation import prepare
    from pneumo.data.sources import datasets, synthetic
    from pneumo.serving.model import load_model
    from pneumo.settings import Settings
    from pneumo.stages.register import register
    from pneumo.training.fit import train

    with pytest_env(PNEUMO_ROOT=str(root)):
        settings = Settings()
        cfg = load_config(None, TRAIN)
        dest = storage.join(settings.data, "films")
        synthetic.generate(dest, cfg.synthetic, settings=settings, progress=False)
        entry = datasets.register(dest, source="synthetic", name="films", settings=settings)
        prepare(entry, cfg, settings, progress=False)
        run = train(entry, cfg, settings, progress=False)
        folder = register(run.run_id, RegisterConfig(), settings).folder
    return load_model(Path(folder), "films", "1")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadedModel]:
    ref = given()
    if ref is None:
        yield _trained_model(tmp_path_factory.mktemp("behaviour") / "root")
        return
    from pneumo.serving.source import make_source
    from pneumo.serving.state import load_version
    from pneumo.settings import ServeSettings, Settings

    serve, settings = ServeSettings(), Settings()
    source = make_source(ref, settings, serve.cache_dir(settings.root))
    yield load_version(source, source.current(), serve)


def _synthetic(seed: int, pneumonia: bool = False) -> np.ndarray:
    from pneumo.data.sources.synthetic import render_image

    return render_image(np.random.default_rng(seed), FILM_SIDE, pneumonia=pneumonia, view="PA")


def _kermany() -> list[np.ndarray]:
    folder = Path(os.environ.get("PNEUMO_TEST_DATA", REPO.parent / "shared" / "data"))
    files = sorted((folder / "kermany-full-res" / "val").glob("*/*.jpeg"))[::4]
    return [np.asarray(Image.open(f).convert("L")) for f in files]


def films(*, real: bool = True) -> list[tuple[str, np.ndarray]]:
    named = [(f"synthetic-{s}", _synthetic(s)) for s in SYNTHETIC_SEEDS[:3]]
    kermany = [(f"kermany-{i}", pixels) for i, pixels in enumerate(_kermany())] if real else []
    return named + kermany


# Read once: the autouse pneumo_root fixture clears PNEUMO_* variables for every test.
GIVEN = os.environ.get("PNEUMO_BEHAVIOUR_MODEL") or None


def given() -> str | None:
    return GIVEN


def domain_films() -> list[tuple[str, np.ndarray]]:
    """Films like the model's training data: synthetic ones for the model trained here, real
    Kermany films (when present) for a model given by PNEUMO_BEHAVIOUR_MODEL."""
    if given() is None:
        return films(real=False)
    real = [(f"kermany-{i}", pixels) for i, pixels in enumerate(_kermany())]
    return real or films(real=False)


def score(model: LoadedModel, data: bytes) -> float:
    return float(model.predict(prepare_upload(data, model.spec, "file"))[0])


def _jpeg(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


# CR/DX modalities write a display window; this one shows the 8-bit range as it is. (A file
# without any window is min-max stretched by the decoder, see pneumo.data.decode.dicom, which
# changes the picture's contrast and so its score: not the same radiograph.)
FULL_WINDOW = (127.5, 256.0)
ENCODINGS: dict[str, Callable[[np.ndarray], bytes]] = {
    "16-bit PNG": lambda p: png_bytes(Image.fromarray(p.astype(np.uint16) * 257)),
    "JPEG quality 95": _jpeg,
    "DICOM MONOCHROME2": lambda p: dicom_bytes(p, bits=8, window=FULL_WINDOW),
    "DICOM MONOCHROME1": lambda p: dicom_bytes(
        255 - p, bits=8, photometric="MONOCHROME1", window=FULL_WINDOW
    ),
    "DICOM 12-bit, windowed": lambda p: dicom_bytes(
        p.astype(np.uint16) * 16, bits=12, window=(2040.0, 4096.0)
    ),
}


@pytest.mark.parametrize("name", ENCODINGS)
def test_the_same_radiograph_scores_the_same_however_it_is_stored(
    model: LoadedModel, name: str
) -> None:
    for film, pixels in films():
        reference = score(model, png_bytes(Image.fromarray(pixels)))
        got = score(model, ENCODINGS[name](pixels))
        assert abs(got - reference) <= ENCODING_BOUND, (film, name, reference, got)


def _rotated(pixels: np.ndarray, degrees: float) -> np.ndarray:
    image = Image.fromarray(pixels).rotate(degrees, Image.Resampling.BILINEAR, fillcolor=0)
    return np.asarray(image)


def _exposed(pixels: np.ndarray, factor: float) -> np.ndarray:
    out: np.ndarray = np.clip(pixels.astype(np.float32) * factor, 0, 255).astype(np.uint8)
    return out


PERTURBATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "rotated -5°": lambda p: _rotated(p, -5.0),
    "rotated +5°": lambda p: _rotated(p, 5.0),
    "10 % darker": lambda p: _exposed(p, 0.9),
    "10 % brighter": lambda p: _exposed(p, 1.1),
}


@pytest.mark.parametrize("name", PERTURBATIONS)
def test_a_small_rotation_or_exposure_change_moves_the_score_little(
    model: LoadedModel, name: str
) -> None:
    for film, pixels in domain_films():
        reference = score(model, png_bytes(Image.fromarray(pixels)))
        got = score(model, png_bytes(Image.fromarray(PERTURBATIONS[name](pixels))))
        assert abs(got - reference) <= PERTURBATION_BOUND, (film, name, reference, got)


def test_an_opacity_drawn_into_a_normal_film_raises_the_score(model: LoadedModel) -> None:
    """The generator draws the same film with or without opacities (one anatomy per seed)."""
    if given() is not None:
        pytest.skip("synthetic opacities are only in the domain of the model trained here")
    gains = []
    for seed in SYNTHETIC_SEEDS:
        normal, sick = _synthetic(seed), _synthetic(seed, pneumonia=True)
        assert np.abs(normal.astype(int) - sick.astype(int)).max() > 0  # the opacity is there
        gains.append(
            score(model, png_bytes(Image.fromarray(sick)))
            - score(model, png_bytes(Image.fromarray(normal)))
        )
    assert min(gains) > 0, gains
    assert float(np.mean(gains)) >= OPACITY_GAIN, gains
