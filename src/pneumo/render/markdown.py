"""Markdown tables, written once (evaluation report, comparison report, promotion gate)."""

from __future__ import annotations

from collections.abc import Sequence


def cell(text: object) -> str:
    """A table cell's text: a '|' would end the cell and a newline the row, so both are escaped."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(header: Sequence[object], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table (no trailing newline)."""
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
