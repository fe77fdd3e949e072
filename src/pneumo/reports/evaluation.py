"""The evaluation report: metrics.json, a readable report.md and four PNG figures.

Everything is written through :mod:`pneumo.storage` (atomic; a local folder or s3://), so an
interrupted evaluation never leaves a half-written report. The markdown states what was
evaluated, how the threshold was chosen and the intervals' resampling unit, and ends with the
caveats a reader needs before quoting a number: small subgroups, image-level intervals,
prevalence-dependent PPV/NPV.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from pneumo import paths, storage
from pneumo.metrics.arrays import probabilities
from pneumo.reports import error_analysis
from pneumo.reports.error_analysis import ErrorAnalysis
from pneumo.reports.evaluation_text import render_markdown
from pneumo.settings import Settings

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FIGURES = (paths.ROC_FIGURE, paths.PR_FIGURE, paths.RELIABILITY_FIGURE, paths.CONFUSION_FIGURE)
FILES = (paths.METRICS, paths.HEADLINE, paths.ROC_POINTS, *FIGURES, paths.REPORT_MD)


def write_evaluation_report(
    summary: dict[str, Any],
    y: npt.ArrayLike,
    p: npt.ArrayLike,
    out_url: str,
    *,
    title: str,
    context: dict[str, Any] | None = None,
    settings: Settings | None = None,
    errors: ErrorAnalysis | None = None,
) -> dict[str, str]:
    """Write the report files under ``out_url``; returns {file name: url}.

    ``summary`` is :func:`pneumo.metrics.curves.summarize`'s output, optionally with a
    ``threshold_rule`` entry (see :meth:`pneumo.metrics.threshold.Threshold.to_dict`);
    ``y`` and ``p`` are the same arrays, needed again for the curves; ``errors``, when given,
    adds the error-analysis section (:mod:`pneumo.reports.error_analysis`).
    """
    from pneumo.render.figures import png
    from pneumo.reports import evaluation_figures as figures

    labels, scores = probabilities(y, p)
    if labels.size != summary.get("n"):
        raise ValueError(f"summary is for n={summary.get('n')} images, y and p hold {labels.size}")
    context = dict(context or {})
    files: dict[str, str] = {}

    def put(name: str, data: bytes) -> None:
        url = storage.join(out_url, name)
        storage.write_bytes(url, data, settings)
        files[name] = url

    document = {"title": title, "context": context, **summary}
    if errors is not None:
        document["error_analysis"] = errors.to_dict()
    text = json.dumps(jsonable(document), indent=2, allow_nan=False) + "\n"
    put(paths.METRICS, text.encode())
    put(paths.HEADLINE, (json.dumps(headline(summary, context), indent=2) + "\n").encode())
    put(paths.ROC_POINTS, (json.dumps(roc_points(labels, scores)) + "\n").encode())
    drawers: dict[str, Callable[[], Figure]] = {
        paths.ROC_FIGURE: lambda: figures.roc_figure(labels, scores, summary, title),
        paths.PR_FIGURE: lambda: figures.pr_figure(labels, scores, summary, title),
        paths.RELIABILITY_FIGURE: lambda: figures.reliability_figure(
            labels, scores, summary, title
        ),
        paths.CONFUSION_FIGURE: lambda: figures.confusion_figure(summary, title),
    }
    for name, draw in drawers.items():
        put(name, png(draw()))
    if errors is not None:
        put(paths.ERRORS_FIGURE, errors.figure)
    extra = error_analysis.markdown(errors) if errors is not None else []
    text = render_markdown(summary, title=title, context=context, sections=extra)
    put(paths.REPORT_MD, text.encode())
    return files


HEADLINE_METRICS = ("auroc", "accuracy", "sensitivity", "specificity")


def headline(summary: dict[str, Any], context: dict[str, Any]) -> dict[str, float | None]:
    """The figures two runs are compared by, flat (`dvc metrics show/diff`): the split's AUROC,
    accuracy, sensitivity and specificity at the threshold, the threshold, validation AUROC."""
    out: dict[str, float | None] = {
        name: (summary.get(name) or {}).get("value") for name in HEADLINE_METRICS
    }
    out["threshold"] = summary.get("threshold")
    out["val_auroc"] = context.get("val_auroc_at_training")
    return jsonable(out)  # type: ignore[no-any-return]


def roc_points(labels: np.ndarray, scores: np.ndarray) -> list[dict[str, float | None]]:
    """The ROC curve as [{fpr, tpr, threshold}] (collinear points dropped), for `dvc plots`;
    [] when one class only."""
    from pneumo.metrics.curves import roc_curve

    if np.unique(labels).size < 2:
        return []
    fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=True)
    rows = [
        {"fpr": round(float(f), 6), "tpr": round(float(t), 6), "threshold": float(h)}
        for f, t, h in zip(fpr, tpr, thresholds, strict=True)
    ]
    return jsonable(rows)  # type: ignore[no-any-return]


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays made Python and NaN/inf made None (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
