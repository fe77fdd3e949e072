"""The EDA report: one self-contained HTML document (inline CSS, figures as base64 PNG).

:func:`render_report` only reads its arguments and returns a string; :func:`write_report` stores
it atomically. The CLI wires the manifest, the data card and the sample images in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy.typing as npt
import pandas as pd

import pneumo
from pneumo.data import schema
from pneumo.reports.eda import image_sections, stats
from pneumo.reports.eda import label_sections as sections
from pneumo.reports.eda import markup as m

if TYPE_CHECKING:
    from pneumo.settings import Settings

TOC = (
    ("summary", "Summary"),
    ("sex", "1. Sex distribution"),
    ("age", "2. Age distribution"),
    ("findings", "3. Findings"),
    ("view", "4. View position"),
    ("splits", "5. Pneumonia prevalence per split"),
    ("images", "6. Image size and intensity"),
    ("samples", "7. Sample images"),
)
IMAGE_COLUMNS = (schema.MEAN_INTENSITY, schema.STD_INTENSITY)
MAX_PROBLEM_EXAMPLES = 20


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _yes_no(value: Any) -> str:
    if value is None:
        return m.DASH
    return "yes" if value else "no: images of one patient may fall in different splits"


def _summary(ctx: sections.Context) -> str:
    card = ctx.card
    totals = _mapping(card.get("totals"))
    images = totals.get("images", len(ctx.manifest))
    pneumonia = totals.get("pneumonia", int((ctx.label == 1).sum()))
    try:
        share = m.percent(float(pneumonia) / float(images)) if images else m.DASH
    except (TypeError, ValueError):
        share = m.DASH
    patients = totals.get("patients")
    problems = _mapping(card.get("problems"))
    pairs: list[tuple[str, str]] = [
        (label, m.esc(card[key]))
        for key, label in (
            ("dataset", "Dataset"),
            ("mode", "Mode"),
            ("source", "Source"),
            ("layout", "Layout"),
            ("location", "Location"),
            ("created_at", "Data card created"),
        )
        if card.get(key) is not None
    ]
    pairs += [
        (label, m.count(totals[key]))
        for key, label in (
            ("listed", "Images listed by the source"),
            ("quarantined", "Quarantined (see problems)"),
            ("undersampled_out", "Left out by undersampling"),
        )
        if totals.get(key) is not None
    ]
    pairs += [
        ("Usable images", m.count(images)),
        ("Patients", m.count(patients) if patients is not None else "not available (no ids)"),
        ("Pneumonia", f"{m.count(pneumonia)} ({share})"),
        ("Split method", m.esc(card.get("split_method", m.DASH))),
        ("Patient-grouped split", m.esc(_yes_no(card.get("patient_grouped")))),
        ("Problems found", m.count(problems.get("total")) if problems else m.DASH),
    ]
    if card.get("manifest_hash"):
        pairs.append(("Manifest hash", f"<code>{m.esc(card['manifest_hash'])}</code>"))
    body = [m.key_values(pairs)]
    if not ctx.has_images:
        body.append(
            m.note(
                "Metadata-only report: the intensity statistics (section 6) and the sample images "
                "(section 7) are not available. " + sections.METADATA_ONLY_WHY
            )
        )
    body.append(_splits_table(_mapping(card.get("splits"))))
    if problems:
        body.append(_problems(problems))
    notes = card.get("notes")
    if isinstance(notes, list) and notes:
        items = "".join(f"<li>{m.esc(n)}</li>" for n in notes)
        body.append(f'<h3>Notes</h3><ul class="notes">{items}</ul>')
    return m.section("summary", "Summary", body)


def _splits_table(splits: Mapping[str, Any]) -> str:
    if not splits:
        return ""
    rows = []
    for name, raw in sorted(splits.items(), key=lambda kv: m.split_rank(kv[0])):
        s = _mapping(raw)
        patients = s.get("patients")
        rows.append(
            [
                str(name),
                m.count(s.get("images")),
                m.count(patients) if patients is not None else "n/a",
                m.count(s.get("pneumonia")),
                m.percent(s.get("prevalence")),
            ]
        )
    head = ["split", "images", "patients", "pneumonia", "prevalence"]
    return "<h3>Splits (data card)</h3>" + m.table(head, rows, right=range(1, 5))


def _problems(problems: Mapping[str, Any]) -> str:
    if not problems.get("total"):
        return m.note("No problem files were found while preparing the data.", "ok")
    reasons = _mapping(problems.get("by_reason"))
    out = "<h3>Problems by reason</h3>" + m.table(
        ["reason", "files"], [[str(k), m.as_int(v)] for k, v in reasons.items()]
    )
    raw = problems.get("examples")
    examples = [_mapping(e) for e in raw[:MAX_PROBLEM_EXAMPLES]] if isinstance(raw, list) else []
    if examples:
        detail = any(e.get("detail") for e in examples)
        columns = ["file", "reason", *(["detail"] if detail else [])]
        rows = [[str(e.get(c) or m.DASH) for c in columns] for e in examples]
        total = m.as_int(problems.get("total"))
        some = isinstance(total, int) and len(examples) < total
        shown = f"first {len(examples)}" if some else "all"
        out += f"<h3>Problem files ({shown})</h3>" + m.table(columns, rows)
    return out


def render_report(
    manifest: pd.DataFrame,
    card: dict[str, Any],
    samples: Mapping[str, Sequence[tuple[str, npt.NDArray[Any]]]] | None,
    *,
    title: str,
) -> str:
    """The EDA report of ``manifest`` as one self-contained HTML document.

    ``card`` is the data card (missing keys are tolerated); ``samples`` maps a class name to a
    few ``(image_id, uint8 HxW array)`` pairs, or is None in metadata-only mode.
    """
    has_images = all(c in manifest.columns for c in IMAGE_COLUMNS)
    ctx = sections.Context(
        manifest=manifest, card=card, label=stats.labels(manifest), has_images=has_images
    )
    parts = [
        _summary(ctx),
        sections.sex(ctx),
        sections.age(ctx),
        sections.findings(ctx),
        sections.view(ctx),
        sections.prevalence(ctx),
        image_sections.images(ctx),
        image_sections.samples(ctx, samples),
    ]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    toc = "".join(f'<li><a href="#{a}">{m.esc(h)}</a></li>' for a, h in TOC)
    dataset = card.get("dataset")
    subtitle = f"{m.esc(dataset)} · " if dataset else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{m.esc(title)}</title><style>{m.STYLE}</style></head><body><main>"
        f"<h1>{m.esc(title)}</h1>"
        f'<p class="meta">{subtitle}{len(manifest):,} manifest rows · generated by pneumo '
        f"{m.esc(pneumo.__version__)} on {stamp}</p>"
        f"<nav><strong>Contents</strong><ul>{toc}</ul></nav>"
        + "".join(parts)
        + "</main></body></html>\n"
    )


def write_report(html: str, url: str, settings: Settings | None = None) -> None:
    """Store ``html`` at ``url`` (a local path or an fsspec URL), atomically."""
    from pneumo import storage

    storage.write_text(url, html, settings)
