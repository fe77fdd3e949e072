"""A model card's numbers as table cells, for every table that sets two cards side by side: the
promotion gate's (:func:`pneumo.packaging.promotion.comparison_table`), the comparison report's
and the card page's. Formatting is :mod:`pneumo.render.text`'s; here is only what to show."""

from __future__ import annotations

from typing import Any

from pneumo.metrics.names import CARD_METRICS, short_label
from pneumo.packaging.card_fields import lookup
from pneumo.render.text import DASH, delta, number, with_interval


def plain(value: Any) -> str:
    """A card value for a table cell: floats to 4 decimals, ints as they are, None as a dash."""
    return number(value, 4, missing=DASH, thousands=False)


def metric_cell(card: dict[str, Any] | None, key: str) -> str:
    """``value (ci_low-ci_high)`` of ``metrics.<key>``, the value alone without an interval, or
    a dash."""
    return with_interval(lookup(card or {}, f"metrics.{key}"), 4, ci_digits=3, missing=DASH)


def metric_rows(new: dict[str, Any], old: dict[str, Any] | None) -> list[list[str]]:
    """[METRIC, new with CI, old with CI, delta] for each metric a card carries."""
    return [
        [
            short_label(key),
            metric_cell(new, key),
            metric_cell(old, key),
            delta(lookup(new, f"metrics.{key}.value"), lookup(old or {}, f"metrics.{key}.value")),
        ]
        for key in CARD_METRICS
    ]
