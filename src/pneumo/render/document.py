"""The parts of a report page as data: sections of paragraphs, notes, tables and pictures.

A report's code decides *what* a page says and builds these blocks; the ``block`` macro in
``templates/macros.html.j2`` decides how each one looks. Nothing here holds markup, so no text
can reach a page unescaped. Numbers in tables are formatted here, by :mod:`pneumo.render.text`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from pneumo.render.text import number

Emphasis = Literal["", "code", "strong"]


@dataclass(frozen=True)
class Cell:
    """A table cell's text; ``num`` right-aligns it (tabular digits)."""

    text: str
    num: bool = False
    emphasis: Emphasis = ""


@dataclass(frozen=True)
class Table:
    """Rows whose first cell is the row's header; no header row when ``header`` is empty."""

    header: Sequence[str]
    rows: Sequence[Sequence[Cell]]
    kind: ClassVar[str] = "table"


Role = Literal["p", "h3", "na", "warn", "ok", "use"]


@dataclass(frozen=True)
class Text:
    """A paragraph (``p``), a subheading (``h3``) or a highlighted paragraph: ``na`` (not
    available), ``warn``, ``ok`` or ``use`` (what something is for)."""

    text: str
    role: Role = "p"
    kind: ClassVar[str] = "text"


@dataclass(frozen=True)
class Picture:
    """An image (a data URI) with its alternative text and an optional caption."""

    uri: str
    alt: str
    caption: str = ""
    kind: ClassVar[str] = "picture"


@dataclass(frozen=True)
class Bullets:
    items: Sequence[str]
    style: str = ""  # a class of the list, e.g. "notes"
    kind: ClassVar[str] = "bullets"


@dataclass(frozen=True)
class Section:
    """A titled part of a page, the target of a table of contents (its ``anchor``)."""

    anchor: str
    heading: str
    body: Sequence[Block] = field(default_factory=list)
    kind: ClassVar[str] = "section"


Block = Table | Text | Picture | Bullets | Section


def para(text: str) -> Text:
    return Text(text)


def note(text: str, tone: Literal["na", "warn", "ok", "use"] = "na") -> Text:
    return Text(text, tone)


def subheading(text: str) -> Text:
    return Text(text, "h3")


def cell(value: object, num: bool = False) -> Cell:
    """A cell for a value: ints (with thousands separators) and floats (2 decimals) are
    right-aligned, as is any value when ``num`` is set; a Cell is kept as it is."""
    if isinstance(value, Cell):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Cell(number(value, 2), num=True)
    return Cell(str(value), num=num)


def table(
    header: Sequence[str], rows: Iterable[Sequence[object]], right: Collection[int] = ()
) -> Table:
    """A table of values (see :func:`cell`); every cell of the columns in ``right`` is
    right-aligned."""
    body = [[cell(v, i in right) for i, v in enumerate(row)] for row in rows]
    return Table(list(header), body)


def key_values(pairs: Iterable[tuple[str, str | Cell]]) -> Table:
    """A two-column table without a header: a name, then its value (text, or a Cell)."""
    return Table([], [[Cell(k), v if isinstance(v, Cell) else Cell(v)] for k, v in pairs])
