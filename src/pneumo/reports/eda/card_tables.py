"""The EDA report's tables of the data card: splits, per-split breakdowns, problem files.

The card is read tolerantly (any key may be missing, any count may be text); each function
returns blocks (see :mod:`pneumo.render.document`), or none where the card has nothing to show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pneumo.data.schema import SPLITS
from pneumo.render.document import Block, note, subheading, table
from pneumo.render.text import DASH, count, percent

MAX_PROBLEM_EXAMPLES = 20


def mapping(value: Any) -> Mapping[str, Any]:
    """``value`` where it is a mapping, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def as_int(value: Any) -> Any:
    """``value`` as an int where it is one; otherwise unchanged (it is shown as text)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def split_rank(name: object) -> tuple[int, str]:
    """Sort key putting train, val, test first, in that order, then the rest by name."""
    text = str(name)
    return (SPLITS.index(text) if text in SPLITS else len(SPLITS), text)


def split_breakdown(
    per_split: Mapping[str, Any] | None, caption: str, order: Sequence[str] = ()
) -> list[Block]:
    """A card breakdown ``{split: {value: count}}`` as a table: a row per split, a column per
    value (those in ``order`` first, in that order). Nothing when the card has none."""
    if not isinstance(per_split, Mapping) or not per_split:
        return []
    seen: list[str] = []
    for counts in per_split.values():
        if isinstance(counts, Mapping):
            seen += [str(k) for k in counts if str(k) not in seen]
    columns = [c for c in order if c in seen] + [c for c in seen if c not in order]
    rows = []
    for split, counts in sorted(per_split.items(), key=lambda kv: split_rank(kv[0])):
        by_name = {str(k): v for k, v in mapping(counts).items()}
        rows.append([str(split), *(as_int(by_name.get(c, 0)) for c in columns)])
    return [subheading(caption), table(["split", *columns], rows)]


def splits(per_split: Mapping[str, Any]) -> list[Block]:
    """The card's images, patients, positives and prevalence per split."""
    if not per_split:
        return []
    rows = []
    for name, raw in sorted(per_split.items(), key=lambda kv: split_rank(kv[0])):
        s = mapping(raw)
        patients = s.get("patients")
        rows.append(
            [
                str(name),
                count(s.get("images")),
                count(patients) if patients is not None else "n/a",
                count(s.get("pneumonia")),
                percent(s.get("prevalence")),
            ]
        )
    head = ["split", "images", "patients", "pneumonia", "prevalence"]
    return [subheading("Splits (data card)"), table(head, rows, right=range(1, 5))]


def problems(found: Mapping[str, Any]) -> list[Block]:
    """The problem files prepare left out: counts by reason, then the first examples."""
    if not found.get("total"):
        return [note("No problem files were found while preparing the data.", "ok")]
    reasons = mapping(found.get("by_reason"))
    out: list[Block] = [
        subheading("Problems by reason"),
        table(["reason", "files"], [[str(k), as_int(v)] for k, v in reasons.items()]),
    ]
    raw = found.get("examples")
    examples = [mapping(e) for e in raw[:MAX_PROBLEM_EXAMPLES]] if isinstance(raw, list) else []
    if examples:
        detail = any(e.get("detail") for e in examples)
        columns = ["file", "reason", *(["detail"] if detail else [])]
        rows = [[str(e.get(c) or DASH) for c in columns] for e in examples]
        total = as_int(found.get("total"))
        some = isinstance(total, int) and len(examples) < total
        shown = f"first {len(examples)}" if some else "all"
        out += [subheading(f"Problem files ({shown})"), table(columns, rows)]
    return out
