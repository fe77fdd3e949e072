"""The tuning report: what a study tried, what it found, and which settings mattered.

``report.html`` (self-contained) holds the best trial with the commands that use it, the
optimisation history (every trial's validation AUROC and the best so far), the validation
AUROC of every trial epoch by epoch (where the pruner stopped which), the parameters'
importance, and every trial in a table. It is built from plain :class:`TrialRecord` values,
so nothing here knows Optuna.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pneumo import paths
from pneumo.render import figures
from pneumo.render.document import (
    Block,
    Picture,
    Section,
    key_values,
    note,
    para,
    table,
)
from pneumo.render.html import render
from pneumo.render.text import number

STATES = ("complete", "pruned", "failed", "running", "waiting")


@dataclass(frozen=True)
class TrialRecord:
    number: int
    state: str  # one of STATES
    value: float | None  # best val AUROC (pruned: the last one reported)
    params: Mapping[str, Any]
    curve: Mapping[int, float] = field(default_factory=dict)  # epochs done -> val AUROC
    run_id: str | None = None
    retry_of: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class Study:
    name: str
    storage: str
    dataset: str
    pruner: str
    target: int  # finished trials asked for
    trials: Sequence[TrialRecord]
    importance: Mapping[str, float] | None  # parameter -> share; None when not computable
    importance_note: str = ""
    parent_run: str | None = None
    best_config: str | None = None  # where best.yaml is

    def count(self, state: str) -> int:
        return sum(t.state == state for t in self.trials)

    @property
    def best(self) -> TrialRecord | None:
        done = [t for t in self.trials if t.state == "complete" and t.value is not None]
        return max(done, key=lambda t: (t.value, -t.number)) if done else None


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def trials_csv(study: Study) -> str:
    keys = sorted({k for t in study.trials for k in t.params})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["trial", "state", "val_auroc", "epochs", *keys, "run_id", "retry_of", "error"])
    for t in study.trials:
        writer.writerow(
            [t.number, t.state, "" if t.value is None else f"{t.value:.6f}", len(t.curve)]
            + [t.params.get(k, "") for k in keys]
            + [t.run_id or "", "" if t.retry_of is None else t.retry_of, t.error or ""]
        )
    return out.getvalue()


def history_figure(study: Study) -> bytes:
    """Each trial's validation AUROC by trial number, and the best so far."""
    from matplotlib.ticker import MaxNLocator

    fig = figures.figure(7.0, 3.2, left=0.8, bottom=0.6)
    ax = fig.add_subplot(1, 1, 1)
    styles = (("complete", "o", figures.CURVE), ("pruned", "x", figures.GREY))
    for state, marker, colour in styles:
        shown = [
            (t.number, t.value) for t in study.trials if t.state == state and t.value is not None
        ]
        ax.scatter(
            [n for n, _ in shown], [v for _, v in shown], marker=marker, c=colour,
            s=28, label=f"{state} ({len(shown)})", zorder=3,
        )  # fmt: skip
    steps, best = [], float("-inf")
    for t in sorted(study.trials, key=lambda t: t.number):
        if t.state == "complete" and t.value is not None:
            best = max(best, t.value)
        if best > float("-inf"):
            steps.append((t.number, best))
    if steps:
        ax.step(*zip(*steps, strict=True), where="post", c=figures.OPERATING, label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("val AUROC")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="best", fontsize=figures.FONT - 1, framealpha=0.9)
    figures.style(ax, "both", "Optimisation history")
    return figures.png(fig)


def curves_figure(study: Study) -> bytes:
    """Validation AUROC epoch by epoch: where each trial went, and where pruned ones stopped."""
    from matplotlib.ticker import MaxNLocator

    fig = figures.figure(7.0, 3.2, left=0.8, bottom=0.6)
    ax = fig.add_subplot(1, 1, 1)
    best = study.best
    for t in study.trials:
        if not t.curve:
            continue
        epochs = sorted(t.curve)
        colour = figures.GREY if t.state == "pruned" else figures.PALETTE[0]
        width = 2.2 if best is not None and t.number == best.number else 0.9
        ax.plot(epochs, [t.curve[e] for e in epochs], c=colour, lw=width, alpha=0.8)
        if t.state == "pruned":
            ax.scatter([epochs[-1]], [t.curve[epochs[-1]]], marker="x", c=figures.GREY, s=20)
    ax.set_xlabel("epochs done")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("val AUROC")
    figures.style(ax, "both", "Every trial, epoch by epoch (grey: pruned; thick: best)")
    return figures.png(fig)


def importance_figure(importance: Mapping[str, float]) -> bytes:
    names = list(importance)[::-1]
    fig = figures.figure(7.0, 0.6 + 0.35 * len(names), left=2.4, bottom=0.5)
    ax = fig.add_subplot(1, 1, 1)
    ax.barh(names, [importance[n] for n in names], color=figures.CURVE)
    ax.set_xlabel("share of the variation in val AUROC (PED-ANOVA)")
    figures.style(ax, "x")
    return figures.png(fig)


def _best_section(study: Study) -> Section:
    best = study.best
    if best is None:
        return Section("best", "Best trial", [note("No trial has completed yet.")])
    rows = [("trial", str(best.number)), ("val AUROC", number(best.value, 4))]
    rows += [(k, _value(v)) for k, v in sorted(best.params.items())]
    if best.run_id:
        rows.append(("MLflow run", best.run_id))
    body: list[Block] = [key_values(rows)]
    if study.best_config:
        body.append(
            note(
                f"Train with these settings: pneumo train -c {study.best_config}; or register "
                f"the trial's own run: pneumo evaluate {best.run_id} && pneumo register "
                f"{best.run_id}.",
                "use",
            )
        )
    return Section("best", "Best trial", body)


def _importance_section(study: Study) -> Section:
    if not study.importance:
        text = study.importance_note or "Not enough completed trials to say."
        return Section("importance", "Which settings mattered", [note(text)])
    body: list[Block] = [
        Picture(figures.data_uri(importance_figure(study.importance)), "parameter importance"),
        para(
            "PED-ANOVA (Optuna): how much of the spread of validation AUROC among the best "
            "trials each parameter explains, over completed trials. A guide for the next "
            "search space, not a causal claim."
        ),
    ]
    return Section("importance", "Which settings mattered", body)


def _trials_section(study: Study) -> Section:
    keys = sorted({k for t in study.trials for k in t.params})
    short = [k.removeprefix("train.") for k in keys]
    header = ["trial", "state", "val AUROC", "epochs", *short, "MLflow run"]
    rows = []
    for t in sorted(study.trials, key=lambda t: t.number):
        state = t.state + (f" (retry of {t.retry_of})" if t.retry_of is not None else "")
        if t.error:
            state += f": {t.error}"
        rows.append(
            [str(t.number), state, number(t.value, 4), len(t.curve)]
            + [_value(t.params[k]) if k in t.params else "-" for k in keys]
            + [t.run_id[:8] if t.run_id else "-"]
        )
    body: list[Block] = [
        table(header, rows, right=(2,)),
        para(
            f"Keys below train.; MLflow runs by their first 8 characters (all of it in "
            f"{paths.TRIALS_TABLE})."
        ),
    ]
    return Section("trials", "Every trial", body)


def sections(study: Study) -> list[Section]:
    history: list[Block] = []
    if any(t.value is not None for t in study.trials):
        history.append(Picture(figures.data_uri(history_figure(study)), "optimisation history"))
    if any(t.curve for t in study.trials):
        history.append(Picture(figures.data_uri(curves_figure(study)), "learning curves"))
    if not history:
        history.append(note("No trial has reported a validation AUROC yet."))
    return [
        _best_section(study),
        Section("history", "Optimisation history", history),
        _importance_section(study),
        _trials_section(study),
    ]


def page(study: Study, version: str, stamp: str) -> str:
    counts = ", ".join(f"{study.count(s)} {s}" for s in STATES if study.count(s))
    meta = (
        f"dataset {study.dataset} · {counts or 'no trials'} of {study.target} asked for · "
        f"pruner {study.pruner} · study database {study.storage}"
        + (f" · MLflow parent run {study.parent_run}" if study.parent_run else "")
    )
    return render(
        "tuning.html.j2", title=f"Tuning study {study.name}", meta=meta, version=version,
        stamp=stamp, sections=sections(study),
    )  # fmt: skip
