"""Jinja2 for free text only (script headers, comments). Never for YAML or shell words."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from vllmtune import __version__


def oneline(value: Any) -> str:
    """Make any value safe inside a one-line comment: control characters escaped."""
    text = str(value)
    return json.dumps(text, ensure_ascii=False)[1:-1] if any(ord(c) < 32 or c == "\x7f" for c in text) else text


@cache
def _env() -> Any:
    import jinja2  # lazily: only renderers with free text need it

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("vllmtune", "templates"),
        autoescape=False,
        keep_trailing_newline=False,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["oneline"] = oneline
    return env


def render_template(name: str, **context: Any) -> str:
    """Render a template from vllmtune/templates with the tool version available."""
    return str(_env().get_template(name).render(tool_version=__version__, **context))
