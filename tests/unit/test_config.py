"""Experiment config: defaults, YAML, dotted overrides, and typo errors that help."""

from __future__ import annotations

from pathlib import Path

import pytest

from pneumo.config import ExperimentConfig, dump_config, load_config
from pneumo.errors import ConfigError


def test_defaults_file_and_overrides_layer(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text("prepare:\n  image_size: 128\nsplit:\n  seed: 7\n")
    cfg = load_config(str(path), ["split.seed=9", "prepare.resize=crop"])
    assert cfg.prepare.image_size == 128
    assert cfg.split.seed == 9
    assert cfg.prepare.resize == "crop"
    assert cfg.split.val_fraction == ExperimentConfig().split.val_fraction


def test_dump_round_trips(tmp_path: Path) -> None:
    cfg = load_config(None, ["prepare.shard_size=16"])
    path = tmp_path / "saved.yaml"
    path.write_text(dump_config(cfg))
    assert load_config(str(path)) == cfg


def test_typo_is_an_error_with_a_suggestion() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, ["prepare.imag_size=128"])
    assert "prepare.imag_size" in str(err.value)
    assert "did you mean 'prepare.image_size'" in str(err.value)


@pytest.mark.parametrize(
    "override",
    ["prepare.image_size=big", "split.val_fraction=0.85", "prepare.resize=squash", "noequals"],
)
def test_bad_values_are_errors(override: str) -> None:
    with pytest.raises(ConfigError):
        load_config(None, [override])


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(str(tmp_path / "nope.yaml"))


def test_shipped_default_config_matches_the_code() -> None:
    from tests.conftest import REPO

    assert load_config(str(REPO / "configs" / "default.yaml")) == ExperimentConfig()


@pytest.mark.parametrize("name", ["kermany.yaml", "kermany-gpu.yaml"])
def test_shipped_recipes_load_and_differ_from_the_defaults(name: str) -> None:
    from tests.conftest import REPO

    cfg = load_config(str(REPO / "configs" / name))  # a typo in the file would raise here
    assert cfg.train.weights == "none"  # both recipes train from scratch
    assert cfg.evaluate.split == "test"
    assert cfg != ExperimentConfig()


def test_the_default_yaml_spells_out_every_key_with_its_default() -> None:
    import yaml

    from pneumo.config import ExperimentConfig, _known_keys
    from tests.conftest import REPO

    path = REPO / "configs" / "default.yaml"
    tree = yaml.safe_load(path.read_text())

    def has(dotted: str) -> bool:
        node = tree
        for key in dotted.split("."):
            if not isinstance(node, dict) or key not in node:
                return False
            node = node[key]
        return True

    assert [k for k in _known_keys(ExperimentConfig) if not has(k)] == []
    assert load_config(str(path)) == ExperimentConfig()
