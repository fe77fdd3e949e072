"""Numbers and intervals as text, written once for every report, page and terminal line.

Each caller picks the style its medium wants (decimals, the interval's separator and label, what
a missing value reads as); the rules are the same everywhere: None is never printed as "None",
ints get thousands separators, floats a fixed number of decimals, and an interval is shown only
when both of its ends are known.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any

DASH = "\u2014"


def number(value: Any, digits: int = 3, *, missing: str = "-", thousands: bool = True) -> str:
    """A value for a table cell or a sentence: floats (numpy's too) to ``digits`` decimals, ints
    with thousands separators (unless ``thousands`` is False), None as ``missing``, anything
    else as its text."""
    if value is None:
        return missing
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, Integral):
        return f"{int(value):,}" if thousands else str(int(value))
    if isinstance(value, Real):
        return f"{float(value):.{digits}f}"
    return str(value)


def count(value: Any, *, missing: str = DASH) -> str:
    """A count with thousands separators (``"4,123"``, ``4123.0`` too); None as ``missing``;
    what is not a number as its text."""
    if value is None:
        return missing
    if isinstance(value, bool):
        return str(value)
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)


def percent(fraction: Any, digits: int = 2, *, missing: str = DASH, unit: str = " %") -> str:
    """``0.1234`` as ``"12.34 %"`` (``unit="%"``: ``"12.34%"``); what is not a number as
    ``missing``."""
    try:
        return f"{100 * float(fraction):.{digits}f}{unit}"
    except (TypeError, ValueError):
        return missing


def interval(entry: Mapping[str, Any] | None, digits: int = 3, *, sep: str = "-") -> str | None:
    """``"low<sep>high"`` of a ``{ci_low, ci_high}`` entry, or None when either end is unknown."""
    if not isinstance(entry, Mapping):
        return None
    low, high = entry.get("ci_low"), entry.get("ci_high")
    if low is None or high is None:
        return None
    return f"{low:.{digits}f}{sep}{high:.{digits}f}"


def with_interval(
    entry: Mapping[str, Any] | None,
    digits: int = 3,
    *,
    ci_digits: int | None = None,
    sep: str = "-",
    label: str = "",
    missing: str = "n/a",
) -> str:
    """A metric entry ``{value, ci_low, ci_high}`` as ``"0.912 (<label>0.880<sep>0.940)"``.

    The interval is left out when it is unknown; ``missing`` stands for an entry without a value.
    """
    if not isinstance(entry, Mapping) or entry.get("value") is None:
        return missing
    text = f"{entry['value']:.{digits}f}"
    span = interval(entry, digits if ci_digits is None else ci_digits, sep=sep)
    return text if span is None else f"{text} ({label}{span})"


def delta(new: Any, old: Any, digits: int = 4, *, missing: str = DASH) -> str:
    """The signed difference of two numbers (``+0.0123``), or ``missing`` if either is None."""
    if new is None or old is None:
        return missing
    return f"{new - old:+.{digits}f}"
