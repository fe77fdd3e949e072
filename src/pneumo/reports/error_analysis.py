"""The error-analysis section of an evaluation: its most confident mistakes, and where it looked.

The false positives the model was surest of (a healthy image, the highest probabilities) and the
false negatives it was surest of (pneumonia, the lowest), at the operating threshold, up to
:data:`SHOWN` of each, drawn as the model saw them with the Grad-CAM map over them when the
model has maps (:mod:`pneumo.explain`), and listed in the report with the map's peak.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pneumo import paths
from pneumo.explain.cam import ActivationMap, Explain
from pneumo.render.markdown import table
from pneumo.render.text import number

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SHOWN = 4  # of each kind of error
FALSE_POSITIVE = "false positive"
FALSE_NEGATIVE = "false negative"


@dataclass(frozen=True)
class Case:
    kind: str  # FALSE_POSITIVE | FALSE_NEGATIVE
    index: int  # the image's row in the evaluated arrays
    image_id: str
    label: int
    probability: float


@dataclass(frozen=True)
class ErrorAnalysis:
    cases: list[Case]
    figure: bytes  # PNG: the cases as the model saw them, with their maps when there are any
    maps: list[ActivationMap] | None  # None: the model has no activation maps
    threshold: float
    counts: dict[str, int]  # all false positives and false negatives, not only those shown

    def to_dict(self) -> dict[str, Any]:
        rows = []
        for i, case in enumerate(self.cases):
            row: dict[str, Any] = {
                "kind": case.kind, "image_id": case.image_id, "label": case.label,
                "probability": case.probability,
            }  # fmt: skip
            if self.maps is not None:
                row["peak_at"] = [round(v, 4) for v in self.maps[i].peak_at]
            rows.append(row)
        return {"shown": rows, "counts": self.counts, "maps": self.maps is not None}


def worst_errors(
    labels: np.ndarray,
    probabilities: np.ndarray,
    threshold: float,
    image_ids: Sequence[str],
    shown: int = SHOWN,
) -> tuple[list[Case], dict[str, int]]:
    """The ``shown`` most confident false positives, then false negatives (ties: file order),
    and how many of each there are."""
    y = np.asarray(labels)
    p = np.asarray(probabilities, dtype=np.float64)
    fp = np.nonzero((y == 0) & (p >= threshold))[0]
    fn = np.nonzero((y == 1) & (p < threshold))[0]
    fp = fp[np.argsort(-p[fp], kind="stable")][:shown]
    fn = fn[np.argsort(p[fn], kind="stable")][:shown]
    cases = [
        Case(kind, i, str(image_ids[i]), int(y[i]), float(p[i]))
        for kind, rows in ((FALSE_POSITIVE, fp), (FALSE_NEGATIVE, fn))
        for i in rows.tolist()
    ]
    counts = {FALSE_POSITIVE: int(((y == 0) & (p >= threshold)).sum())}
    counts[FALSE_NEGATIVE] = int(((y == 1) & (p < threshold)).sum())
    return cases, counts


def analyse_errors(
    cases: list[Case],
    counts: dict[str, int],
    pixels: np.ndarray,
    threshold: float,
    explain: Explain | None,
) -> ErrorAnalysis:
    """The analysis of ``cases`` whose model inputs are ``pixels`` (uint8 (len(cases), S, S));
    ``explain`` gives their maps (None: the model has none)."""
    from pneumo.render.figures import png

    if len(pixels) != len(cases):
        raise ValueError(f"{len(cases)} cases but {len(pixels)} images")
    maps = None if explain is None else explain(pixels) if cases else []
    figure = png(_figure(cases, pixels, maps))
    return ErrorAnalysis(cases, figure, maps, threshold, counts)


def _figure(cases: list[Case], pixels: np.ndarray, maps: list[ActivationMap] | None) -> Figure:
    from pneumo.explain.overlay import overlay, overlay_side
    from pneumo.render.figures import figure

    columns = max(2, max((sum(c.kind == k for c in cases) for k in _KINDS), default=1))
    fig = figure(2.4 * columns, 5.6, left=0.1, right=0.1, bottom=0.15, top=0.75, wspace=0.08)
    fig.suptitle("Most confident errors" + (" and where the model looked" if maps else ""))
    grid = fig.add_gridspec(2, columns, hspace=0.28)
    for row, kind in enumerate(_KINDS):
        mine = [i for i, c in enumerate(cases) if c.kind == kind]
        for col in range(columns):
            ax = fig.add_subplot(grid[row, col])
            ax.set_xticks([])
            ax.set_yticks([])
            if col >= len(mine):
                ax.axis("off")
                if col == 0:
                    ax.text(0.5, 0.5, f"no {kind}s", ha="center", va="center", color="#8c8c8c")
                continue
            i = mine[col]
            image = pixels[i]
            if maps is not None:
                side = overlay_side(image.shape[0])
                ax.imshow(overlay(image, maps[i].upsampled(side)))
            else:
                ax.imshow(image, cmap="gray", vmin=0, vmax=255)
            ax.set_title(f"{kind}\np = {cases[i].probability:.3f}", fontsize=8)
            ax.set_xlabel(_short(cases[i].image_id), fontsize=7)
    return fig


_KINDS = (FALSE_POSITIVE, FALSE_NEGATIVE)


def _short(image_id: str, width: int = 28) -> str:
    return image_id if len(image_id) <= width else "…" + image_id[-(width - 1) :]


def markdown(analysis: ErrorAnalysis) -> list[str]:
    """The report's "Error analysis" section."""
    c = analysis.counts
    lines = ["## Error analysis", ""]
    lines += [
        f"The most confident mistakes at threshold {number(analysis.threshold, 4)}: up to "
        f"{SHOWN} of the {number(c[FALSE_POSITIVE])} false positives (highest probability "
        f"first) and of the {number(c[FALSE_NEGATIVE])} false negatives (lowest first).",
        "",
    ]
    if not analysis.cases:
        return [*lines, "There are no errors at this threshold.", ""]
    if analysis.maps is None:
        lines += ["This model has no activation maps (registered before they existed).", ""]
    else:
        lines += [
            "Each image carries its Grad-CAM map (red: what raised the probability most); "
            "peak is the map's maximum as (row, column) fractions of the image.",
            "",
        ]
    header = ["Error", "Image", "Probability"] + (["Map peak"] if analysis.maps else [])
    rows = []
    for i, case in enumerate(analysis.cases):
        cells = [case.kind, f"`{case.image_id}`", number(case.probability, 4)]
        if analysis.maps:
            r, col = analysis.maps[i].peak_at
            cells.append(f"({r:.2f}, {col:.2f})")
        rows.append(cells)
    lines.append(table(header, rows))
    return [*lines, "", f"![Most confident errors]({paths.ERRORS_FIGURE})", ""]
