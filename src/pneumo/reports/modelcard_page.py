"""The model card as a readable page (``card.html`` in a package, ``GET /v1/model/card``).

Self-contained (the stylesheet inlined, no script, nothing fetched); every value of the card is
escaped by the template, ``templates/model_card.html.j2``. This module decides what the page
says; the card itself is :mod:`pneumo.packaging.modelcard`'s.
"""

from __future__ import annotations

import json
from typing import Any

from pneumo.metrics.names import CARD_METRICS, short_label
from pneumo.packaging.card_fields import missing_fields
from pneumo.packaging.card_rows import plain
from pneumo.render.document import Table, table
from pneumo.render.html import render
from pneumo.render.text import DASH, interval


def _metric_table(metrics: dict[str, Any]) -> Table:
    """Each metric's value and interval on the test split, then the calibration error."""
    rows = []
    for key in CARD_METRICS:
        item = metrics.get(key) or {}
        span = interval(item, 4, sep=" - ") or DASH
        rows.append([short_label(key), plain(item.get("value")), span])
    rows.append(["ECE", plain(metrics.get("ece")), ""])
    return table(["metric", "value", "95% CI"], rows, right=(1, 2))


def render_html(card: dict[str, Any], version: str | None = None) -> str:
    """A self-contained, readable page for the card (no scripts, no external resources)."""
    metrics = card.get("metrics", {})
    threshold = card.get("threshold", {})
    pre = card.get("preprocessing", {})
    data = card.get("data", {})
    model = card.get("model", {})
    parity = card.get("parity") or {}
    performance = (
        f"{plain(metrics.get('n'))} images, {plain(metrics.get('positives'))} with pneumonia; "
        f"{plain(metrics.get('ci_level'))} confidence intervals by "
        f"{plain(metrics.get('resampling'))}-level bootstrap. Sensitivity, specificity, PPV, NPV "
        "and accuracy are at the operating threshold below."
    )
    return render(
        "model_card.html.j2",
        title=f"Model card · {card.get('name', 'model')}" + (f" v{version}" if version else ""),
        missing=missing_fields(card),
        intended_use=str(card.get("intended_use", "")),
        limitations=[str(item) for item in card.get("limitations", [])],
        split=plain(metrics.get("split")),
        performance=performance,
        metrics=_metric_table(metrics),
        threshold={k: plain(threshold.get(k)) for k in ("value", "chosen_on", "method")},
        model={
            "backbone": plain(model.get("backbone")),
            "input": json.dumps(model.get("input")),
            "output": json.dumps(model.get("output")),
            "run": plain(card.get("run_id")),
            "sha256": plain(card.get("model_sha256")),
            "parity": plain(parity.get("max_abs_diff")),
            "parity_images": plain(parity.get("images")),
            "parity_against": str(parity.get("against") or "PyTorch"),
            "variant": str(model.get("variant") or "float32"),
            "quantization": json.dumps(card["quantization"], indent=2)
            if card.get("quantization")
            else "",
        },
        preprocessing={
            "steps": str(pre.get("steps", "")),
            "spec": json.dumps({k: v for k, v in pre.items() if k != "steps"}, indent=2),
        },
        data={
            "dataset": plain(data.get("dataset")),
            "manifest": plain(data.get("manifest_hash")),
            "card": json.dumps(data.get("card", {}), indent=2),
        },
        code=json.dumps(card.get("code", {}), indent=2),
    )
