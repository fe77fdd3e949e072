"""The EDA report: one self-contained HTML document (inline CSS, figures as base64 PNG).

:func:`render_report` only reads its arguments and returns a string; :func:`write_eda_report` stores
it atomically. The CLI wires the manifest, the data card and the sample images in. The sections
(here, :mod:`~pneumo.reports.eda.label_sections` and :mod:`~pneumo.reports.eda.image_sections`)
decide what the page says; ``templates/eda.html.j2`` lays it out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy.typing as npt
import pandas as pd

import pneumo
from pneumo.data import schema
from pneumo.render.document import Block, Bullets, Cell, Section, key_values, note, subheading
from pneumo.render.html import render
from pneumo.render.text import DASH, count, percent
from pneumo.reports.eda import card_tables, image_sections, stats
from pneumo.reports.eda import label_sections as sections
from pneumo.reports.eda.card_tables import mapping

if TYPE_CHECKING:
    from pneumo.settings import Settings

IMAGE_COLUMNS = (schema.MEAN_INTENSITY, schema.STD_INTENSITY)


def _yes_no(value: Any) -> str:
    if value is None:
        return DASH
    return "yes" if value else "no: images of one patient may fall in different splits"


def _summary(ctx: sections.Context) -> Section:
    card = ctx.card
    totals = mapping(card.get("totals"))
    images = totals.get("images", len(ctx.manifest))
    pneumonia = totals.get("pneumonia", int((ctx.label == 1).sum()))
    try:
        share = percent(float(pneumonia) / float(images)) if images else DASH
    except (TypeError, ValueError):
        share = DASH
    patients = totals.get("patients")
    problems = mapping(card.get("problems"))
    pairs: list[tuple[str, str | Cell]] = [
        (label, str(card[key]))
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
        (label, count(totals[key]))
        for key, label in (
            ("listed", "Images listed by the source"),
            ("quarantined", "Quarantined (see problems)"),
            ("undersampled_out", "Left out by undersampling"),
        )
        if totals.get(key) is not None
    ]
    pairs += [
        ("Usable images", count(images)),
        ("Patients", count(patients) if patients is not None else "not available (no ids)"),
        ("Pneumonia", f"{count(pneumonia)} ({share})"),
        ("Split method", str(card.get("split_method", DASH))),
        ("Patient-grouped split", _yes_no(card.get("patient_grouped"))),
        ("Problems found", count(problems.get("total")) if problems else DASH),
    ]
    if card.get("manifest_hash"):
        pairs.append(("Manifest hash", Cell(str(card["manifest_hash"]), emphasis="code")))
    body: list[Block] = [key_values(pairs)]
    if not ctx.has_images:
        body.append(
            note(
                "Metadata-only report: the intensity statistics (section 6) and the sample images "
                "(section 7) are not available. " + sections.METADATA_ONLY_WHY
            )
        )
    body += card_tables.splits(mapping(card.get("splits")))
    if problems:
        body += card_tables.problems(problems)
    notes = card.get("notes")
    if isinstance(notes, list) and notes:
        body += [subheading("Notes"), Bullets([str(n) for n in notes], "notes")]
    return Section("summary", "Summary", body)


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
    return render(
        "eda.html.j2",
        title=title,
        dataset=card.get("dataset"),
        rows=count(len(manifest)),
        version=pneumo.__version__,
        stamp=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        sections=parts,
    )


def write_eda_report(html: str, url: str, settings: Settings | None = None) -> None:
    """Store ``html`` at ``url`` (a local path or an fsspec URL), atomically."""
    from pneumo import storage

    storage.write_text(url, html, settings)
