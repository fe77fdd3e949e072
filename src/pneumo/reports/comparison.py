"""The comparison report: report.md (for a PR comment), report.html (self-contained), figures.

Metrics with intervals and deltas, the ROC and PR curves overlaid, what differs between the two
data cards, and the promotion gate's verdict when a registered version is compared with another.
The markdown and the page are two renderings of the same :class:`Comparison` (rows, gate,
figure): render.markdown for one, ``templates/comparison.html.j2`` for the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from pneumo import paths, storage
from pneumo.config import PromoteConfig
from pneumo.packaging.card_fields import lookup
from pneumo.packaging.card_rows import metric_rows as card_metric_rows
from pneumo.packaging.card_rows import plain
from pneumo.packaging.external_results import ROW_HEADER, result_rows
from pneumo.packaging.promotion import Gate, check_gate
from pneumo.render.document import Cell, Table, table
from pneumo.render.figures import CURVE, GREY, GRID, POSITIVE, data_uri
from pneumo.render.html import render
from pneumo.render.markdown import table as markdown_table
from pneumo.render.text import delta
from pneumo.settings import Settings

COLORS = (POSITIVE, CURVE)
DATA_FIELDS = (
    ("dataset", "dataset"),
    ("source", "source"),
    ("layout", "layout"),
    ("manifest", "manifest_hash"),
    ("images", "totals.images"),
    ("patients", "totals.patients"),
    ("pneumonia", "totals.pneumonia"),
    ("quarantined", "totals.quarantined"),
    ("patient-grouped split", "patient_grouped"),
    ("split method", "split_method"),
    ("test images", "splits.test.images"),
    ("test prevalence", "splits.test.prevalence"),
)
INTERVALS = (
    "Intervals: 95% bootstrap. Sensitivity, specificity, PPV, NPV and accuracy at each "
    "model's own validation-chosen threshold."
)
NO_GATE = "n/a (compare registered versions for a verdict)"
EXTERNAL_NOTE = (
    "Each at the model's own threshold, on images it never saw (those it trained or validated "
    "on are left out): `pneumo evaluate MODEL --external DATASET`."
)
NO_EXTERNAL = (
    "No external results yet: `pneumo evaluate MODEL --external DATASET` scores a model on "
    "data it never saw."
)


@dataclass(frozen=True)
class Subject:
    ref: str
    label: str  # e.g. "pneumonia v3 (challenger)" or "run 1b0c5af4"
    card: dict[str, Any]
    predictions: pd.DataFrame | None  # columns label, probability
    registered: bool
    external: dict[str, dict[str, Any]] = field(default_factory=dict)  # label → result record


@dataclass(frozen=True)
class Report:
    folder: str
    files: dict[str, str]
    gate: Gate | None
    markdown: str


@dataclass(frozen=True)
class DataRow:
    """One field of the two data cards; ``same`` is None when there is nothing to compare."""

    label: str
    new: str
    old: str
    same: bool | None


@dataclass(frozen=True)
class Comparison:
    """What the report says, whatever it is rendered as."""

    title: str  # "pneumo report: A vs B"
    page_title: str  # the same, shorter where there is no baseline
    labels: tuple[str, str]  # the candidate's, the baseline's (or "(no champion yet)")
    metrics: list[list[str]]
    data: list[DataRow]
    gate: Gate | None
    figure: bytes | None  # the curves' PNG
    external: list[list[str]]  # each model's results on data it never saw


def metric_rows(a: Subject, b: Subject | None) -> list[list[str]]:
    rows = card_metric_rows(a.card, b.card if b else None)
    for label, path in (("ECE", "metrics.ece"), ("threshold", "threshold.value")):
        new = lookup(a.card, path)
        old = lookup(b.card, path) if b else None
        rows.append([label, plain(new), plain(old), delta(new, old)])
    return rows


def _data_value(card: dict[str, Any], path: str) -> Any:
    """A field of the subject's data card, or of its card's ``data`` section."""
    value = lookup(card, f"data.card.{path}") if path != "manifest_hash" else None
    return value if value is not None else lookup(card, f"data.{path}")


def data_rows(a: Subject, b: Subject | None) -> list[DataRow]:
    rows = []
    for label, path in DATA_FIELDS:
        new = _data_value(a.card, path)
        old = _data_value(b.card, path) if b is not None else None
        same = None if b is None else new == old
        rows.append(DataRow(label, _short(new), _short(old), same))
    return rows


def _short(value: Any) -> str:
    if isinstance(value, str) and len(value) == 64:
        return value[:12]
    return plain(value)


def curves_png(subjects: list[Subject]) -> bytes | None:
    """Both subjects' ROC (left) and precision-recall (right) curves, overlaid; None when no
    subject has test predictions of both classes."""
    from pneumo.metrics.curves import pr_curve, roc_curve
    from pneumo.render.figures import figure, png

    usable = [
        s for s in subjects
        if s.predictions is not None and 0 < int(s.predictions["label"].sum()) < len(s.predictions)
    ]  # fmt: skip
    if not usable:
        return None
    fig = figure(9, 4, dpi=110)
    roc_ax, pr_ax = fig.subplots(1, 2)
    for subject, color in zip(usable, COLORS, strict=False):
        assert subject.predictions is not None
        y = subject.predictions["label"].to_numpy(dtype=bool)
        p = subject.predictions["probability"].to_numpy(dtype=np.float64)
        fpr, tpr, _ = roc_curve(y, p, drop_intermediate=True)
        auroc = lookup(subject.card, "metrics.auroc.value")
        roc_ax.plot(fpr, tpr, color=color, lw=1.8, label=f"{subject.label}  AUROC {plain(auroc)}")
        precision, recall, _ = pr_curve(y, p)
        auprc = lookup(subject.card, "metrics.auprc.value")
        pr_ax.plot(
            recall, precision, color=color, lw=1.8, label=f"{subject.label}  AUPRC {plain(auprc)}"
        )
    roc_ax.plot([0, 1], [0, 1], color=GREY, lw=0.8, ls="--")
    roc_ax.set(xlabel="1 - specificity", ylabel="sensitivity", title="ROC (test split)")
    pr_ax.set(xlabel="recall (sensitivity)", ylabel="precision (PPV)", title="Precision-recall")
    for ax in (roc_ax, pr_ax):
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.grid(True, color=GRID)
        ax.legend(loc="lower right" if ax is roc_ax else "lower left", fontsize=7)
    fig.tight_layout()
    return png(fig)


def compare(a: Subject, b: Subject | None, gate: Gate | None) -> Comparison:
    other = b.label if b else "(no champion yet)"
    figure = curves_png([s for s in (a, b) if s is not None])
    return Comparison(
        title=f"pneumo report: {a.label} vs {other}",
        page_title=f"pneumo report: {a.label} vs {b.label if b else 'no champion'}",
        labels=(a.label, other),
        metrics=metric_rows(a, b),
        data=data_rows(a, b),
        gate=gate,
        figure=figure,
        external=[row for s in (a, b) if s is not None for row in result_rows(s.label, s.external)],
    )


def _verdict(gate: Gate) -> str:
    return f"Promotion gate: {'PASS' if gate.passed else 'FAIL'}"


def _same(row: DataRow, differs: str) -> str:
    return "" if row.same is None else ("same" if row.same else differs)


def _strong(row: DataRow) -> Literal["", "strong"]:
    return "strong" if row.same is False else ""


def render_markdown(c: Comparison) -> str:
    """report.md: the metric table, the gate, a link to curves.png and the data table."""
    a, b = c.labels
    parts = [f"## {c.title}", ""]
    parts += [markdown_table(["metric (test)", a, b, "Δ"], c.metrics), "", INTERVALS, ""]
    if c.gate is not None:
        parts += [f"**{_verdict(c.gate)}**", ""]
        parts += [f"- {item}" for item in c.gate.checks + c.gate.reasons]
        parts.append("")
    else:
        parts += [f"Promotion gate: {NO_GATE}", ""]
    if c.figure:
        parts += [f"![ROC and PR curves]({paths.CURVES_FIGURE})", ""]
    rows = [[r.label, r.new, r.old, _same(r, "**differs**")] for r in c.data]
    parts += ["### Data", "", markdown_table(["", a, b, ""], rows), ""]
    parts += ["### External validation", ""]
    if c.external:
        parts += [markdown_table(ROW_HEADER, c.external), "", EXTERNAL_NOTE, ""]
    else:
        parts += [NO_EXTERNAL, ""]
    return "\n".join(parts)


def render_html(c: Comparison) -> str:
    """report.html: the same rows, gate and figure as a self-contained page."""
    a, b = c.labels
    rows = [
        [Cell(r.label), Cell(r.new), Cell(r.old), Cell(_same(r, "differs"), emphasis=_strong(r))]
        for r in c.data
    ]
    tone: Literal["ok", "warn"] = "ok" if c.gate is None or c.gate.passed else "warn"
    return render(
        "comparison.html.j2",
        title=c.page_title,
        heading=c.title,
        metrics=table(["metric (test)", a, b, "Δ"], c.metrics),
        intervals=INTERVALS,
        verdict=None if c.gate is None else _verdict(c.gate),
        tone=tone,
        gate_items=[] if c.gate is None else c.gate.checks + c.gate.reasons,
        no_gate=f"Promotion gate: {NO_GATE}",
        figure=data_uri(c.figure) if c.figure else None,
        data=Table(["", a, b, ""], rows),
        external=table(ROW_HEADER, c.external) if c.external else None,
        external_note=EXTERNAL_NOTE if c.external else NO_EXTERNAL,
    )


def write_comparison(
    a: Subject, b: Subject | None, out: str, cfg: PromoteConfig, settings: Settings
) -> Report:
    gate: Gate | None = None
    if a.registered and (b is None or b.registered):
        gate = check_gate(a.card, b.card if b else None, cfg, rollback=False)
    comparison = compare(a, b, gate)
    files: dict[str, str] = {}
    if comparison.figure is not None:
        files[paths.CURVES_FIGURE] = storage.join(out, paths.CURVES_FIGURE)
        storage.write_bytes(files[paths.CURVES_FIGURE], comparison.figure, settings)
    markdown = render_markdown(comparison)
    files[paths.REPORT_MD] = storage.join(out, paths.REPORT_MD)
    storage.write_text(files[paths.REPORT_MD], markdown, settings)
    files[paths.REPORT_HTML] = storage.join(out, paths.REPORT_HTML)
    storage.write_text(files[paths.REPORT_HTML], render_html(comparison), settings)
    return Report(out, files, gate, markdown)
