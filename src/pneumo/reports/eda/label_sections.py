"""Sections 1-5 of the EDA report (labels and metadata); each returns one :class:`Section`.

Sections 6 and 7, on the images themselves, are in :mod:`pneumo.reports.eda.image_sections`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pneumo.data import schema
from pneumo.render.document import Block, Picture, Section, note, para, table
from pneumo.render.text import percent
from pneumo.reports.eda import label_figures as figures
from pneumo.reports.eda import stats
from pneumo.reports.eda.card_tables import split_breakdown

METADATA_ONLY_WHY = (
    "The data was prepared in metadata-only mode: only the label file was read and no image was "
    "downloaded or decoded, so there are no pixels to measure or show. Prepare the dataset with "
    "images to get these figures."
)


@dataclass(frozen=True)
class Context:
    manifest: pd.DataFrame
    card: Mapping[str, Any]
    label: stats.LabelArray
    has_images: bool  # the manifest carries the per-image columns of a full (image) prepare

    def breakdown(self, key: str, caption: str, order: Sequence[str] = ()) -> list[Block]:
        return split_breakdown(self.card.get(key), caption, order)


def _composition(
    ctx: Context, anchor: str, heading: str, col: str, what: str, order: tuple[str, ...]
) -> Section:
    """A categorical column by class: its figure, its table and the card's per-split counts
    (the card's ``by_<anchor>``)."""
    counts = stats.category_by_class(ctx.manifest, col, ctx.label, order)
    if counts is None:
        if stats.column(ctx.manifest, col) is None:
            why = f"{what.capitalize()} is not recorded for this dataset."
        else:
            why = f"No image has both a {what} and a known label."
        return Section(anchor, heading, [note(why)])
    uri = figures.composition_by_class(counts, what)
    caption = (
        f"Share of each {what} within each class (Pneumonia above, No Pneumonia below), counts in "
        "brackets. Shares rather than counts, because Pneumonia is the rare class; a difference "
        f"between the bars means {what} is associated with the label."
    )
    rows = [[v, *(int(c) for c in counts.counts[i])] for i, v in enumerate(counts.values)]
    return Section(
        anchor,
        heading,
        [
            Picture(uri, f"{what} by class", caption),
            table([what, *counts.classes], rows),
            *ctx.breakdown(f"by_{anchor}", f"{what.capitalize()} per split (data card)", order),
        ],
    )


def sex(ctx: Context) -> Section:
    return _composition(ctx, "sex", "1. Sex distribution", schema.SEX, "sex", ("M", "F"))


def age(ctx: Context) -> Section:
    heading = "2. Age distribution"
    ages = stats.floats(ctx.manifest, schema.AGE)
    if ages is None:
        return Section("age", heading, [note("Age is not recorded for this dataset.")])
    overall = stats.describe(ages)
    per_class = stats.by_class(ages, ctx.label)
    if not any(v.size for v in per_class.values()):
        return Section("age", heading, [note("No image has both an age and a known label.")])
    parts = []
    for cls, values in per_class.items():
        d = stats.describe(values)
        if d is not None:
            parts.append(f"{cls}: mean {d['mean']:.1f}, median {d['median']:.0f}")
    missing = int(np.isnan(ages).sum())
    text = ""
    if overall is not None:
        text = (
            f"Ages range from {overall['min']:.0f} to {overall['max']:.0f} years, mean "
            f"{overall['mean']:.1f} (" + "; ".join(parts) + ")."
        )
    if missing:
        text += f" {missing:,} images have no age."
    caption = (
        "Age histogram per class, each normalised to its own class size (5-year bins) so the rare "
        "Pneumonia class is as visible as the common one; the legend gives counts and means."
    )
    body: list[Block] = [
        para(text),
        Picture(figures.age_histogram(per_class), "age histogram", caption),
    ]
    bands = [name for name, _, _ in schema.AGE_BANDS] + [stats.UNKNOWN]
    body += ctx.breakdown("by_age_band", "Age bands per split (data card)", bands)
    return Section("age", heading, body)


def findings(ctx: Context) -> Section:
    heading = "3. Findings"
    f = stats.findings(ctx.manifest)
    if f is None:
        text = (
            "Finding labels are not available for this dataset: it only records Pneumonia versus "
            "normal, so the finding counts and their co-occurrence cannot be shown."
        )
        return Section("findings", heading, [note(text)])
    body: list[Block] = [
        para(
            f"{f.labelled:,} images have finding labels; {f.no_finding:,} of them have none of "
            f"the {len(f.names)} findings (No Finding). An image can carry several findings."
        )
    ]
    if f.pneumonia_alone is not None and stats.POSITIVE in f.names:
        total = int(f.counts[f.names.index(stats.POSITIVE)])
        body.append(
            para(
                f"Of the {total:,} Pneumonia images, {f.pneumonia_alone:,} have no other finding "
                f"and {total - f.pneumonia_alone:,} carry at least one other."
            )
        )
    body.append(
        Picture(
            figures.findings_bar(f.names, f.counts, f.no_finding),
            "finding counts",
            "Images per finding, most frequent first; Pneumonia (the target) in red, images with "
            "no finding in grey.",
        )
    )
    body.append(
        Picture(
            figures.cooccurrence_heatmap(f.names, f.cooccurrence),
            "finding co-occurrence heatmap",
            "Co-occurrence: each cell counts the images carrying both the row's and the column's "
            "finding; the diagonal is the finding's own count. Log colour scale; light grey is 0.",
        )
    )
    return Section("findings", heading, body)


def view(ctx: Context) -> Section:
    heading = "4. View position"
    return _composition(ctx, "view", heading, schema.VIEW, "view position", ("PA", "AP"))


def prevalence(ctx: Context) -> Section:
    heading = "5. Pneumonia prevalence per split"
    rows = stats.splits(ctx.manifest, ctx.label)
    if not rows:
        return Section("splits", heading, [note("The manifest has no split column.")])
    caption = (
        "Share of Pneumonia images in each split, with positives / images above each bar. Similar "
        "bars mean the split kept the class balance."
    )
    body: list[Block] = [
        Picture(figures.prevalence_by_split(rows), "prevalence per split", caption)
    ]
    body.append(
        table(
            ["split", "images", "patients", "pneumonia", "prevalence"],
            [
                [
                    r.name,
                    r.images,
                    r.patients if r.patients is not None else "n/a",
                    r.pneumonia,
                    percent(r.prevalence),
                ]
                for r in rows
            ],
            right=(2, 4),
        )
    )
    p = stats.patients(ctx.manifest)
    if p is None:
        body.append(
            note(
                "The dataset has no patient ids, so the split cannot be grouped by patient: "
                "images of one patient may sit in different splits, and test scores may be "
                "optimistic."
            )
        )
        return Section("splits", heading, body)
    body.append(
        para(
            f"{p.count:,} patients; images per patient: median {p.images_median:.0f}, "
            f"at most {p.images_max:,} (follow-up studies)."
        )
    )
    if p.in_several_splits:
        body.append(
            note(
                f"{p.in_several_splits:,} patients have images in more than one split: the "
                "split leaks patients between train and evaluation.",
                "warn",
            )
        )
    elif p.in_several_splits == 0:
        body.append(note("No patient has images in more than one split.", "ok"))
    return Section("splits", heading, body)
