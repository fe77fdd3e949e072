"""HTML, written once: Jinja2 templates with autoescape, and the one stylesheet.

Every page pneumo writes or serves (the EDA report, the model card, the comparison report, the
service's own page) is a template under ``templates/``, rendered by :func:`render`. Every value
is escaped by Jinja2 (autoescape is on for every template, whatever its name), and a template
that names a value it was not given fails rather than printing nothing (``StrictUndefined``).
Pages are self-contained: ``base.html.j2`` inlines ``style.css`` in a ``<style>`` element.

Jinja2 is imported on the first render, not at import time: the CLI imports this module on
every start.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2 import Environment

    from pneumo.render.document import Block

MACROS = "macros.html.j2"


@cache
def stylesheet() -> str:
    """The one stylesheet, ``pneumo/render/style.css``, without its comments (they are for its
    readers, not for every page's)."""
    text = resources.files("pneumo.render").joinpath("style.css").read_text(encoding="utf-8")
    return re.sub(r"/\*.*?\*/\n?", "", text, flags=re.DOTALL).lstrip()


@cache
def environment() -> Environment:
    """The template environment (built once): templates from ``pneumo/render/templates``."""
    import jinja2
    from markupsafe import Markup

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pneumo.render", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    # The stylesheet is our own file, not data: inlined as it is (escaping would break ">").
    env.globals["stylesheet"] = Markup(stylesheet())
    return env


def render(template: str, /, **context: Any) -> str:
    """The page ``template`` (a name under ``templates/``) rendered with ``context``."""
    return environment().get_template(template).render(**context)


def render_block(block: Block) -> str:
    """One block of a document (a section, a table, a note ...) as an HTML fragment, through
    the same macro that renders it inside a page."""
    macros = environment().get_template(MACROS).module
    return str(macros.block(block))  # type: ignore[attr-defined]
