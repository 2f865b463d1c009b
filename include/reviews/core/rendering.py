"""The one Jinja environment over include/reviews/templates, for every document the pipelines
write: learning bulletins and 7-minute briefings (learning.bulletin), data quality reports and
late or missing return notices (returns.quality_reports, returns.returns_due).

HTML templates are autoescaped and the text ones are not; an undefined name fails the render
instead of printing nothing; block tags leave no blank lines; a template's final newline is kept.
One environment per process (`templates()`), so each template is compiled once, not once per
document (Jinja caches compiled templates per environment, and reloads one whose file changed).

learning.publication hashes this file's source into every bulletin's inputs digest: a change
here re-renders the bulletins (and keeps them when their bytes come out the same).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from jinja2 import BaseLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def environment(loader: BaseLoader) -> Environment:
    """An environment with the templates' settings over any loader (a test's DictLoader, say)."""
    return Environment(
        loader=loader,
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), disabled_extensions=("txt.j2",), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


@lru_cache(maxsize=1)
def templates() -> Environment:
    """The process's environment over include/reviews/templates."""
    return environment(FileSystemLoader(str(TEMPLATES)))
