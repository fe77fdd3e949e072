"""The typed model card reads every card back exactly as it was written, release 0.1.0's too."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pneumo.errors import PneumoError
from pneumo.packaging.card_fields import REQUIRED
from pneumo.packaging.modelcard import ModelCard
from pneumo.preprocess import ImageSpec, PreprocessSpec
from tests.integration.test_release_compat import FIXTURE


def fixture() -> dict[str, Any]:
    card: dict[str, Any] = json.loads(FIXTURE.read_text())
    return card


def test_release_card_round_trips_to_the_same_document() -> None:
    document = fixture()
    card = ModelCard.from_dict(document, "fixture")
    assert json.dumps(card.to_dict()) == json.dumps(document)  # same keys, same order
    assert card.missing() == []
    assert card.preprocess_spec() == PreprocessSpec(
        ImageSpec(64, "pad", 178_956_970), 0.436949, 0.240195
    )
    assert card.operating_threshold() == document["threshold"]["value"]
    assert card.metrics is not None and card.metrics.auroc is not None
    assert card.metrics.auroc.value == document["metrics"]["auroc"]["value"]
    assert card.parity is not None and card.parity.tolerance == 1e-4


def test_an_incomplete_card_loads_and_says_what_it_lacks() -> None:
    document = fixture()
    del document["threshold"], document["limitations"]
    card = ModelCard.from_dict(document, "partial")
    assert card.to_dict() == document
    assert set(card.missing()) == {"threshold.value", "threshold.chosen_on", "limitations"}
    assert set(card.missing()) <= set(REQUIRED)
    with pytest.raises(PneumoError, match="no operating threshold"):
        card.operating_threshold()


def test_a_field_from_a_newer_release_is_kept() -> None:
    document = {**fixture(), "monitoring": {"reference": "embeddings.npz"}}
    document["model"] = {**document["model"], "outputs": ["probability", "embedding"]}
    assert ModelCard.from_dict(document, "newer").to_dict() == document


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "pneumo-model/0"}, "format 'pneumo-model/0' is not 'pneumo-model/1'"),
        ({"threshold": {"value": "high"}}, "threshold.value"),
        ({"preprocessing": {"mean": 0.5}}, "preprocessing.image"),
    ],
)
def test_a_card_that_is_not_ours_is_refused_naming_the_field(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(PneumoError, match=r"card\.json is not a pneumo model card") as err:
        ModelCard.from_dict({**fixture(), **change}, "card.json")
    assert message in str(err.value)
