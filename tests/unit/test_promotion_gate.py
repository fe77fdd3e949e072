"""The promotion gate on hand-made cards: completeness, comparability, AUROC margin."""

from __future__ import annotations

import copy
from typing import Any

from pneumo.config import PromoteConfig
from pneumo.packaging.card_fields import REQUIRED, missing_fields
from pneumo.packaging.promotion import check_gate, comparison_table


def card(auroc: float, manifest: str = "abc") -> dict[str, Any]:
    return {
        "preprocessing": {"image": {"size": 32}, "mean": 0.5, "std": 0.2},
        "threshold": {"value": 0.4, "chosen_on": "val"},
        "metrics": {
            "split": "test",
            "n": 100,
            "auroc": {"value": auroc, "ci_low": auroc - 0.05, "ci_high": min(1, auroc + 0.05)},
        },
        "data": {"manifest_hash": manifest, "card": {"totals": {}}},
        "code": {"pneumo": "0.1.0"},
        "parity": {"max_abs_diff": 0.0},
        "model_sha256": "f" * 64,
        "intended_use": "research",
        "limitations": ["synthetic"],
    }


CFG = PromoteConfig(max_auroc_drop=0.01)


def test_complete_card_passes_without_champion() -> None:
    assert missing_fields(card(0.9)) == []
    gate = check_gate(card(0.9), None, CFG, rollback=False)
    assert gate.passed and "no champion yet" in gate.checks


def test_each_required_field_is_checked() -> None:
    for path in REQUIRED:
        broken = copy.deepcopy(card(0.9))
        node = broken
        *parents, last = path.split(".")
        for key in parents:
            node = node[key]
        del node[last]
        gate = check_gate(broken, None, CFG, rollback=False)
        assert not gate.passed and path in gate.reasons[0], path


def test_auroc_margin() -> None:
    assert check_gate(card(0.895), card(0.90), CFG, rollback=False).passed
    refused = check_gate(card(0.885), card(0.90), CFG, rollback=False)
    assert not refused.passed and "0.8850" in refused.reasons[0]
    assert check_gate(card(0.885), card(0.90), CFG, rollback=True).passed


def test_different_test_data_is_not_comparable() -> None:
    gate = check_gate(card(0.99), card(0.5, manifest="other"), CFG, rollback=False)
    assert not gate.passed and "different data" in gate.reasons[0]


def test_comparison_table_shows_deltas() -> None:
    table = comparison_table("3", card(0.92), "2", card(0.90))
    assert "| AUROC | 0.9200 (0.870-0.970) | 0.9000 (0.850-0.950) | +0.0200 |" in table
