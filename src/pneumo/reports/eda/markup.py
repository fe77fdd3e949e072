"""Small HTML builders for the EDA report. Every piece of text goes through :func:`esc`;
only the builders themselves emit tags."""

from __future__ import annotations

import html
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from pneumo.data.schema import SPLITS

DASH = "\u2014"

STYLE = """
*{box-sizing:border-box}
body{margin:0;background:#eef0f3;color:#1f2328;
  font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:980px;margin:0 auto;padding:28px 40px 56px;background:#fff;
  box-shadow:0 0 0 1px #dde1e6}
h1{font-size:1.9em;margin:0 0 .15em}
h2{font-size:1.35em;margin:2.2em 0 .6em;padding-bottom:.25em;border-bottom:2px solid #e3e6ea}
h3{font-size:1.08em;margin:1.6em 0 .4em}
p{margin:.5em 0}
.meta{color:#57606a;font-size:.88em;margin-bottom:1.2em}
nav{background:#f6f8fa;border:1px solid #e3e6ea;border-radius:6px;padding:8px 16px;
  font-size:.92em}
nav ul{margin:.3em 0;padding-left:0;list-style:none;columns:2}
a{color:#0b62c4;text-decoration:none}
a:hover{text-decoration:underline}
table{border-collapse:collapse;margin:.6em 0 1em;font-size:.9em}
th,td{border:1px solid #d0d7de;padding:4px 10px;text-align:left;vertical-align:top}
thead th{background:#f0f3f6}
tbody th{background:#f8f9fb;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1.2em 0 1.6em}
figure img{display:block;max-width:100%;height:auto;border:1px solid #eceff2}
figcaption{font-size:.88em;color:#57606a;margin-top:.45em}
.na{background:#fff8e1;border-left:4px solid #e6a700;padding:8px 12px;margin:.8em 0}
.warn{background:#fdecea;border-left:4px solid #c0392b;padding:8px 12px;margin:.8em 0}
.ok{background:#eaf6ec;border-left:4px solid #2e8540;padding:8px 12px;margin:.8em 0}
ul.notes{padding-left:1.3em}
code{background:#f3f4f6;padding:0 3px;border-radius:3px;font-size:.92em}
"""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def count(value: Any) -> str:
    """An integer with thousands separators; a dash for missing values."""
    if value is None or isinstance(value, bool):
        return DASH if value is None else esc(value)
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return esc(value)


def percent(fraction: Any, digits: int = 2) -> str:
    try:
        return f"{100 * float(fraction):.{digits}f} %"
    except (TypeError, ValueError):
        return DASH


def _cell(value: object, tag: str, right: bool) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        text = f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"
        return f'<{tag} class="num">{text}</{tag}>'
    cls = ' class="num"' if right else ""
    return f"<{tag}{cls}>{esc(value)}</{tag}>"


def table(
    headers: Sequence[str], rows: Iterable[Sequence[object]], right: Collection[int] = ()
) -> str:
    """A table whose first column is a row header. Ints and floats are formatted and
    right-aligned, as is every cell of the columns in ``right``; all text is escaped."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(_cell(v, "th" if i == 0 else "td", i in right) for i, v in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def key_values(pairs: Iterable[tuple[str, str]]) -> str:
    """A two-column table whose values are ALREADY escaped/formatted HTML fragments."""
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in pairs)
    return f"<table><tbody>{rows}</tbody></table>"


def figure(uri: str, caption: str, alt: str) -> str:
    return (
        f'<figure><img src="{esc(uri)}" alt="{esc(alt)}">'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def note(text: str, kind: str = "na") -> str:
    return f'<p class="{esc(kind)}">{esc(text)}</p>'


def para(text: str) -> str:
    return f"<p>{esc(text)}</p>"


def section(anchor: str, heading: str, body: Sequence[str]) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(heading)}</h2>{"".join(body)}</section>'


def split_rank(name: object) -> tuple[int, str]:
    """Sort key putting train, val, test first, in that order, then the rest by name."""
    text = str(name)
    return (SPLITS.index(text) if text in SPLITS else len(SPLITS), text)


def split_breakdown(
    per_split: Mapping[str, Any] | None, caption: str, order: Sequence[str] = ()
) -> str:
    """A card breakdown ``{split: {value: count}}`` as a table: a row per split, a column per
    value (those in ``order`` first, in that order). Empty string when the card has none."""
    if not isinstance(per_split, Mapping) or not per_split:
        return ""
    seen: list[str] = []
    for counts in per_split.values():
        if isinstance(counts, Mapping):
            seen += [str(k) for k in counts if str(k) not in seen]
    columns = [c for c in order if c in seen] + [c for c in seen if c not in order]
    rows = []
    for split, counts in sorted(per_split.items(), key=lambda kv: split_rank(kv[0])):
        counts = counts if isinstance(counts, Mapping) else {}
        by_name = {str(k): v for k, v in counts.items()}
        rows.append([str(split), *(as_int(by_name.get(c, 0)) for c in columns)])
    return f"<h3>{esc(caption)}</h3>" + table(["split", *columns], rows)


def as_int(value: Any) -> Any:
    """``value`` as an int where it is one; otherwise unchanged (it is shown as text)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return value
