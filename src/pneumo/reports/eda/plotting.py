"""Shared plumbing for the report's figures: a bare Agg figure, house style, PNG data URIs.

Figures are ``matplotlib.figure.Figure`` objects drawn on an Agg canvas: no pyplot, no backend
switch, no rcParams, so nothing global changes and a report can render in a server thread.
Matplotlib is imported inside the functions to keep ``import pneumo`` cheap.

Margins are fixed in inches rather than left to a layout engine: constrained layout measured a
third of the render time, and every label here is known in advance.
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING, Literal

from pneumo.reports.eda.stats import NEGATIVE, POSITIVE

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.axis import Axis
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

DPI = 100
CLASS_COLOURS = {POSITIVE: "#c0392b", NEGATIVE: "#2e86c1"}
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#edc948", "#76b7b2", "#ff9da7")
GREY = "#b0b0b0"
TEXT = "#222222"
FONT = 9


def figure(
    width: float,
    height: float,
    *,
    left: float = 0.8,
    right: float = 0.25,
    bottom: float = 0.6,
    top: float = 0.2,
    wspace: float = 0.25,
) -> Figure:
    """A figure ``width`` x ``height`` inches whose subplots leave the given margins (inches)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, facecolor="white")
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        bottom=bottom / height,
        top=1 - top / height,
        wspace=wspace,
    )
    return fig


def style(ax: Axes, grid_axis: Literal["x", "y", "both"] = "y") -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(True, axis=grid_axis, color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.tick_params(labelsize=FONT, colors=TEXT)


def thousands(axis: Axis) -> None:
    """Tick labels as integers with thousands separators."""
    axis.set_major_formatter(lambda v, _pos: f"{v:,.0f}")


def patch(colour: str) -> Patch:
    from matplotlib.patches import Patch

    return Patch(facecolor=colour)


def to_data_uri(fig: Figure) -> str:
    """Render ``fig`` with Agg into a base64 PNG data URI."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
