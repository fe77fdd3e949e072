"""The monitoring report: drift over time against the model's reference, distributions now
and at validation, data quality, and the labelled performance over time, each with the sample
sizes behind it. ``report.html`` (self-contained) and ``monitor.json``, from a
:class:`~pneumo.monitoring.timeline.Timeline`."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from pneumo.monitoring.baseline import DriftReference
from pneumo.monitoring.timeline import Timeline
from pneumo.render import figures
from pneumo.render.document import Block, Picture, Section, key_values, note, para, table
from pneumo.render.html import render
from pneumo.render.text import number


def _when(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")


def _tests(windows: pd.DataFrame) -> list[str]:
    return [c.removeprefix("p_") for c in windows.columns if c.startswith("p_")]


def drift_figure(windows: pd.DataFrame, alpha: float) -> bytes:
    from matplotlib.ticker import MaxNLocator

    fig = figures.figure(7.0, 3.2, left=0.8, bottom=0.7)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(windows))
    for i, test in enumerate(_tests(windows)):
        values = windows[f"p_{test}"].astype(float).clip(lower=1e-4)
        ax.plot(x, values, marker="o", ms=3, c=figures.PALETTE[i % 7], label=test)
    ax.axhline(alpha, c=figures.OPERATING, ls="--", lw=1, label=f"alpha {alpha:g}")
    ax.set_yscale("log")
    ax.set_xlabel("window (in time order)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("p-value")
    ax.legend(loc="best", fontsize=figures.FONT - 2, framealpha=0.9)
    figures.style(ax, "both", "Drift tests, window by window (below the line: drift)")
    return figures.png(fig)


def histogram_figure(now: np.ndarray, then: np.ndarray, what: str) -> bytes:
    fig = figures.figure(3.4, 2.6, left=0.6, bottom=0.6)
    ax = fig.add_subplot(1, 1, 1)
    both = np.concatenate([now, then])
    bins = np.linspace(float(both.min()), float(both.max()) + 1e-9, 21).tolist()
    ax.hist(then, bins=bins, density=True, color=figures.LIGHT_GREY, label="validation")
    ax.hist(now, bins=bins, density=True, histtype="step", lw=1.6, color=figures.CURVE,
            label="served")  # fmt: skip
    ax.set_xlabel(what)
    ax.legend(fontsize=figures.FONT - 2)
    figures.style(ax, "y")
    return figures.png(fig)


def performance_figure(perf: pd.DataFrame) -> bytes:
    from matplotlib.ticker import MaxNLocator

    fig = figures.figure(7.0, 3.0, left=0.8, bottom=0.7)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(perf))
    for i, metric in enumerate(("auroc", "sensitivity", "specificity")):
        ax.plot(x, perf[metric].astype(float), marker="o", ms=3, c=figures.PALETTE[i],
                label=metric)  # fmt: skip
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("labelled window (in time order)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="lower left", fontsize=figures.FONT - 2)
    figures.style(ax, "both", "Labelled performance at the carried threshold")
    return figures.png(fig)


def _drift_section(t: Timeline) -> Section:
    w = t.windows
    if w.empty or not _tests(w):
        empty = note("No window to test: no records yet, or no drift reference for them.")
        return Section("drift", "Drift", [empty])
    rows = []
    for _, r in w.iterrows():
        flags = [test for test in _tests(w) if r.get(f"drift_{test}") is True]
        rows.append([r["version"], _when(r["start"]), _when(r["end"]), int(r["images"]),
                     number(r.get("p_embedding_mmd"), 4), ", ".join(flags) or "-"])  # fmt: skip
    flagged = int(sum(1 for row in rows if row[-1] != "-"))
    body: list[Block] = [
        Picture(figures.data_uri(drift_figure(w, t.alpha)), "drift p-values"),
        para(
            f"{len(w)} windows of served images, each tested against its model version's "
            f"drift reference (its validation images): {flagged} flagged at alpha "
            f"{t.alpha:g}."
        ),
        table(
            ["version", "from", "to", "images", "p (embeddings)", "drift in"], rows, right=(3, 4)
        ),
    ]
    return Section("drift", "Drift", body)


def _distribution_section(
    records: pd.DataFrame, refs: Mapping[str, DriftReference | None]
) -> Section:
    body: list[Block] = []
    for version, ref in refs.items():
        part = records[records["model_version"] == version]
        if ref is None or part.empty:
            continue
        body.append(para(f"Version {version}: {len(part)} served images against "
                         f"{len(ref.scores)} validation images."))  # fmt: skip
        body.append(Picture(figures.data_uri(histogram_figure(
            part["probability"].to_numpy(np.float64), ref.scores.astype(np.float64),
            "probability")), "scores now and at validation"))  # fmt: skip
        if "mean_intensity" in ref.stats:
            body.append(Picture(figures.data_uri(histogram_figure(
                part["mean_intensity"].to_numpy(np.float64),
                ref.stats["mean_intensity"].astype(np.float64), "mean intensity")),
                "intensity now and at validation"))  # fmt: skip
    return Section("distributions", "Now and at validation",
                   body or [note("No version with a drift reference was served.")])  # fmt: skip


def _performance_section(t: Timeline) -> Section:
    p = t.performance
    if p.empty:
        return Section("performance", "Labelled performance", [note(
            "No labels joined yet: send them with POST /v1/feedback.")])  # fmt: skip
    rows = [[r["version"], _when(r["start"]), _when(r["end"]), int(r["images"]),
             int(r["positives"]), number(r["auroc"], 3), number(r["sensitivity"], 3),
             number(r["specificity"], 3)] for _, r in p.iterrows()]  # fmt: skip
    return Section("performance", "Labelled performance", [
        Picture(figures.data_uri(performance_figure(p)), "labelled performance"),
        table(["version", "from", "to", "labelled", "positives", "AUROC", "sensitivity",
               "specificity"], rows, right=(3, 4, 5, 6, 7)),
    ])  # fmt: skip


def _quality_section(t: Timeline) -> Section:
    q = t.quality
    pairs = [("records", str(q["records"])), ("replicas", ", ".join(q["replicas"]) or "-"),
             ("refused as out of distribution", str(q["refused_out_of_distribution"])),
             ("labels received / joined", f"{q['labels']} / {q['labels_joined']}")]  # fmt: skip
    pairs += [(f"pixel mode {k}", str(v)) for k, v in q["pixel_modes"].items()]
    return Section("quality", "Data quality", [key_values(pairs), para(
        "Uploads refused before scoring (format, modality, size, colour) are not recorded: "
        "pneumo_inputs_refused_total counts them by reason.")])  # fmt: skip


def page(t: Timeline, records: pd.DataFrame, refs: Mapping[str, DriftReference | None],
         where: str, version: str) -> str:  # fmt: skip
    span = (f"{_when(records['time'].min())} to {_when(records['time'].max())}"
            if len(records) else "no records")  # fmt: skip
    sections = [_drift_section(t), _distribution_section(records, refs),
                _performance_section(t), _quality_section(t)]  # fmt: skip
    return render(
        "monitoring.html.j2", title="Monitoring", meta=f"records {where} · {span}",
        version=version, stamp=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        sections=sections,
    )  # fmt: skip


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _plain(value.item())
    return value


def summary(t: Timeline) -> dict[str, Any]:
    """The report for machines (``--json``): every window, every labelled window, the counts."""

    def rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
        return [{str(k): _plain(v) for k, v in r.items()} for r in frame.to_dict("records")]

    return {
        "alpha": t.alpha, "versions": t.versions, "windows": rows(t.windows),
        "performance": rows(t.performance), "quality": t.quality,
        "drifted_windows": int(sum(any(r.get(f"drift_{x}") is True for x in _tests(t.windows))
                                   for r in t.windows.to_dict("records"))),
    }  # fmt: skip


def to_json(t: Timeline) -> str:
    return json.dumps(summary(t), indent=2, allow_nan=False)
