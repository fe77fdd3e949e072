"""The search space: what a config may name, how values are drawn, what a study must keep."""

from __future__ import annotations

import pytest

from pneumo.config import load_config
from pneumo.errors import ConfigError
from pneumo.stages import tune_study


def _space(text: str) -> list[str]:
    return [f"tune.space={text}"]


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ("{train.lrr: {low: 0.001, high: 0.01}}", "did you mean 'train.lr'"),
        ("{prepare.image_size: {choices: [64, 128]}}", "only train.* keys can be searched"),
        ("{train.lr: {low: 0.01, high: 0.001}}", "must be below high"),
        ("{train.lr: {low: 0, high: 0.01, log: true}}", "a log range needs low > 0"),
        ("{train.lr: {low: 0.001}}", "give low and high, or choices"),
        ("{}", "tune.space is empty"),
    ],
)
def test_a_bad_space_is_refused_by_name(space: str, message: str) -> None:
    with pytest.raises(ConfigError, match="tune") as err:
        load_config(None, _space(space))
    assert message in err.value.message


def test_every_end_of_a_range_must_be_a_valid_config() -> None:
    too_far = load_config(None, _space("{train.dropout: {low: 0.5, high: 1.5}}"))
    with pytest.raises(ConfigError, match=r"train\.dropout = 1\.5"):
        tune_study.check_space(too_far)
    words = load_config(None, _space("{train.backbone: {low: 1, high: 2}}"))
    with pytest.raises(ConfigError, match="is not a number"):
        tune_study.check_space(words)
    tune_study.check_space(load_config(None, _space("{train.backbone: {choices: [resnet18]}}")))


def test_values_are_drawn_with_the_type_of_their_key() -> None:
    import optuna

    cfg = load_config(
        None,
        _space(
            "{train.batch_size: {low: 8, high: 64, step: 8}, train.lr: {low: 0.0001, "
            "high: 0.01, log: true}, train.backbone: {choices: [resnet18, densenet121]}}"
        ),
    )
    study = optuna.create_study(direction="maximize")
    for _ in range(20):
        trial = study.ask()
        values = tune_study.sample(trial, cfg.tune.space)
        assert isinstance(values["train.batch_size"], int) and values["train.batch_size"] % 8 == 0
        assert 8 <= values["train.batch_size"] <= 64
        assert 1e-4 <= values["train.lr"] <= 1e-2
        assert values["train.backbone"] in ("resnet18", "densenet121")
        trial_cfg = tune_study.trial_config(cfg, values, trial.number)
        assert trial_cfg.train.batch_size == values["train.batch_size"]
        study.tell(trial, 0.5)


def test_a_study_keeps_its_config_but_for_the_number_of_trials() -> None:
    base = load_config(None, [])
    mark = tune_study.fingerprint(base, "d", "h")
    assert tune_study.fingerprint(load_config(None, ["tune.trials=99"]), "d", "h") == mark
    assert tune_study.fingerprint(base, "d", "other manifest") != mark
    started = tune_study.kept(base).model_dump(mode="json")
    moved = load_config(None, ["train.epochs=3", "tune.pruner=median", "tune.trials=5"])
    assert tune_study.changed(started, moved) == ["train.epochs", "tune.pruner"]
