"""The comparison report: report.md (for a PR comment), report.html (self-contained), figures.

Metrics with intervals and deltas, the ROC and PR curves overlaid, what differs between the two
data cards, and the promotion gate's verdict when a registered version is compared with another.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pneumo import storage
from pneumo.config import PromoteConfig
from pneumo.packaging.modelcard import delta, lookup, markdown_table, plain
from pneumo.packaging.modelcard import metric_rows as card_metric_rows
from pneumo.packaging.promotion import Gate, check_gate
from pneumo.settings import Settings

COLORS = ("#c0392b", "#1f4e79")
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


@dataclass(frozen=True)
class Subject:
    ref: str
    label: str  # e.g. "pneumonia v3 (challenger)" or "run 1b0c5af4"
    card: dict[str, Any]
    predictions: pd.DataFrame | None  # columns label, probability
    registered: bool


@dataclass(frozen=True)
class Report:
    folder: str
    files: dict[str, str]
    gate: Gate | None
    markdown: str


def metric_rows(a: Subject, b: Subject | None) -> list[list[str]]:
    rows = card_metric_rows(a.card, b.card if b else None)
    for label, path in (("ECE", "metrics.ece"), ("threshold", "threshold.value")):
        new = lookup(a.card, path)
        old = lookup(b.card, path) if b else None
        rows.append([label, plain(new), plain(old), delta(new, old)])
    return rows


def data_rows(a: Subject, b: Subject | None) -> list[list[str]]:
    rows = []
    for label, path in DATA_FIELDS:
        new = lookup(a.card, f"data.card.{path}") if path != "manifest_hash" else None
        new = new if new is not None else lookup(a.card, f"data.{path}")
        old = None
        if b is not None:
            old = lookup(b.card, f"data.card.{path}") if path != "manifest_hash" else None
            old = old if old is not None else lookup(b.card, f"data.{path}")
        same = "" if b is None else ("same" if new == old else "**differs**")
        rows.append([label, _short(new), _short(old), same])
    return rows


def _short(value: Any) -> str:
    if isinstance(value, str) and len(value) == 64:
        return value[:12]
    return plain(value)


def curves_png(subjects: list[Subject]) -> bytes | None:
    from pneumo.metrics.curves import pr_curve, roc_curve
    from pneumo.render.figures import png

    usable = [
        s for s in subjects
        if s.predictions is not None and 0 < int(s.predictions["label"].sum()) < len(s.predictions)
    ]  # fmt: skip
    if not usable:
        return None
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 4), dpi=110, facecolor="white")
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
    roc_ax.plot([0, 1], [0, 1], color="#8c8c8c", lw=0.8, ls="--")
    roc_ax.set(xlabel="1 - specificity", ylabel="sensitivity", title="ROC (test split)")
    pr_ax.set(xlabel="recall (sensitivity)", ylabel="precision (PPV)", title="Precision-recall")
    for ax in (roc_ax, pr_ax):
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.grid(True, color="#e5e5e5")
        ax.legend(loc="lower right" if ax is roc_ax else "lower left", fontsize=7)
    fig.tight_layout()
    return png(fig)


def render_markdown(
    a: Subject, b: Subject | None, gate: Gate | None, figure: str | None, gate_note: str
) -> str:
    other = b.label if b else "(no champion yet)"
    parts = [
        f"## pneumo report: {a.label} vs {other}",
        "",
        markdown_table(["metric (test)", a.label, other, "Δ"], metric_rows(a, b)),
        "",
        "Intervals: 95% bootstrap. Sensitivity, specificity, PPV, NPV and accuracy at each "
        "model's own validation-chosen threshold.",
        "",
    ]
    if gate is not None:
        verdict = "PASS" if gate.passed else "FAIL"
        parts += [f"**Promotion gate: {verdict}**", ""]
        parts += [f"- {item}" for item in gate.checks + gate.reasons]
        parts.append("")
    else:
        parts += [f"Promotion gate: {gate_note}", ""]
    if figure:
        parts += [f"![ROC and PR curves]({figure})", ""]
    parts += ["### Data", "", markdown_table(["", a.label, other, ""], data_rows(a, b)), ""]
    return "\n".join(parts)


def render_html(markdown: str, png_bytes: bytes | None, title: str) -> str:
    """A self-contained page: the markdown's tables as HTML, the figure embedded."""
    body: list[str] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("|"):
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                block.append(lines[i])
                i += 1
            cells = [[c.strip() for c in row.strip("|").split("|")] for row in block]
            head = "".join(f"<th>{_inline(c)}</th>" for c in cells[0])
            rows = "".join(
                "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>"
                for row in cells[2:]
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
            continue
        if line.startswith("## "):
            body.append(f"<h1>{html.escape(line[3:])}</h1>")
        elif line.startswith("### "):
            body.append(f"<h2>{html.escape(line[4:])}</h2>")
        elif line.startswith("- "):
            body.append(f"<li>{_inline(line[2:])}</li>")
        elif line.startswith("!["):
            if png_bytes:
                data = base64.b64encode(png_bytes).decode()
                body.append(f'<img alt="ROC and PR curves" src="data:image/png;base64,{data}">')
        elif line.strip():
            body.append(f"<p>{_inline(line)}</p>")
        i += 1
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
        "</title><style>body{font:14px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
        "padding:0 1rem;color:#1d2530}table{border-collapse:collapse;margin:.5rem 0}"
        "th,td{border-bottom:1px solid #e1e5ea;padding:.25rem .8rem;text-align:left}"
        "img{max-width:100%}</style></head><body>" + "\n".join(body) + "</body></html>\n"
    )


def _inline(text: str) -> str:
    escaped = html.escape(text)
    while "**" in escaped:
        escaped = escaped.replace("**", "<strong>", 1).replace("**", "</strong>", 1)
    return escaped


def write_report(
    a: Subject, b: Subject | None, out: str, cfg: PromoteConfig, settings: Settings
) -> Report:
    gate: Gate | None = None
    note = "n/a (compare registered versions for a verdict)"
    if a.registered and (b is None or b.registered):
        gate = check_gate(a.card, b.card if b else None, cfg, rollback=False)
    figure = curves_png([s for s in (a, b) if s is not None])
    files: dict[str, str] = {}
    if figure is not None:
        files["curves.png"] = storage.join(out, "curves.png")
        storage.write_bytes(files["curves.png"], figure, settings)
    markdown = render_markdown(a, b, gate, "curves.png" if figure else None, note)
    files["report.md"] = storage.join(out, "report.md")
    storage.write_text(files["report.md"], markdown, settings)
    files["report.html"] = storage.join(out, "report.html")
    title = f"pneumo report: {a.label} vs {b.label if b else 'no champion'}"
    storage.write_text(files["report.html"], render_html(markdown, figure, title), settings)
    return Report(out, files, gate, markdown)
