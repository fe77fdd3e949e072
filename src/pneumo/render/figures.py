"""Figures, written once: a bare Agg figure, the house style, PNG bytes and data URIs.

Every figure pneumo draws (the EDA report, the evaluation and comparison reports, the training
history) is a ``matplotlib.figure.Figure`` on an Agg canvas: no pyplot, no backend switch, no
rcParams, so nothing global changes and a report can render in a server thread. Matplotlib is
imported inside the functions to keep ``import pneumo`` cheap.

Margins are fixed in inches rather than left to a layout engine: constrained layout measured a
third of the EDA report's render time, and every label is known in advance.
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.axis import Axis
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

DPI = 100
FONT = 9
TEXT = "#222222"
GRID = "#e5e5e5"
POSITIVE = "#c0392b"  # pneumonia, everywhere
NEGATIVE = "#2e86c1"  # no pneumonia
CURVE = "#1f4e79"  # a model's curve
OPERATING = "#e67e22"  # the operating threshold
GREY = "#8c8c8c"  # reference lines (chance, perfect calibration), "undefined" messages
LIGHT_GREY = "#b0b0b0"  # unknown values, "no finding"
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#edc948", "#76b7b2", "#ff9da7")


def figure(
    width: float,
    height: float,
    *,
    dpi: int = DPI,
    left: float = 0.8,
    right: float = 0.25,
    bottom: float = 0.6,
    top: float = 0.2,
    wspace: float = 0.25,
    hspace: float | None = None,
) -> Figure:
    """A white ``width`` x ``height`` inch figure on an Agg canvas whose subplots leave the given
    margins (inches; ``wspace`` and ``hspace`` are matplotlib's fractions of an axes)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi, facecolor="white")
    FigureCanvasAgg(fig)
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        bottom=bottom / height,
        top=1 - top / height,
        wspace=wspace,
        hspace=hspace,
    )
    return fig


def style(ax: Axes, grid: Literal["x", "y", "both"] = "y", title: str | None = None) -> None:
    """The house style: no top or right spine, a light grid below the data, small dark ticks,
    and a left-aligned title when one is given."""
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(True, axis=grid, color=GRID, linewidth=0.8)
    ax.set_axisbelow(True)
    ax.tick_params(labelsize=FONT, colors=TEXT)
    if title is not None:
        ax.set_title(title, fontsize=FONT + 2, color=TEXT, loc="left")


def thousands(axis: Axis) -> None:
    """Tick labels as integers with thousands separators."""
    axis.set_major_formatter(lambda v, _pos: f"{v:,.0f}")


def patch(colour: str) -> Patch:
    """A legend handle: a filled square of ``colour``."""
    from matplotlib.patches import Patch

    return Patch(facecolor=colour)


def png(fig: Figure) -> bytes:
    """``fig`` rendered with Agg at its own dpi as PNG bytes (no software or time metadata, so
    the same figure gives the same bytes)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi, metadata={"Software": None})
    return buffer.getvalue()


def data_uri(image: bytes | Figure) -> str:
    """A PNG (bytes, or a figure to render) as a ``data:image/png;base64,...`` URI, for pages
    that must not fetch anything."""
    data = image if isinstance(image, bytes) else png(image)
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")
