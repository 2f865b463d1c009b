"""docs/design.md is the data contract: it keeps up with the code.

Every warehouse table (the SQLAlchemy metadata of `reviews.core.warehouse`) has a section of its
own under "Warehouse contract" naming each of its columns, and every template dataset
(`reviews.core.template`) one under "The regional return template" naming each of its columns;
the column lists there name no column the code does not have; every reporting view
(`reviews.core.views`) likewise under "Reporting views". And the repository cites its own
docs, never the brief's copies outside it.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from reviews.core import warehouse
from reviews.core.template import DATASETS

ROOT = Path(__file__).resolve().parents[2]
DESIGN = ROOT / "docs" / "design.md"
TICKED = re.compile(r"`([^`]+)`")


def _sections(text: str, marker: str, *, nested: bool) -> dict[str, str]:
    """The text under each heading `marker` ("##", "###", ...): up to the next heading of that
    level or above (`nested`), or up to the next heading of any level. Code blocks are skipped."""
    level = len(marker)
    out, heading, body, fenced = {}, None, [], False
    for line in text.splitlines():
        fenced ^= line.startswith("```")
        hashes = 0 if fenced else len(line) - len(line.lstrip("#"))
        if hashes and line[hashes:hashes + 1] == " ":
            if heading is not None and (hashes <= level or not nested):
                out[heading], heading = "\n".join(body), None
            if hashes == level:
                heading, body = line[level + 1:].strip(), []
                continue
        if heading is not None:
            body.append(line)
    if heading is not None:
        out[heading] = "\n".join(body)
    return out


def _part(title: str) -> str:
    parts = _sections(DESIGN.read_text(encoding="utf-8"), "##", nested=True)
    assert title in parts, f"docs/design.md has no section '## {title}'"
    return parts[title]


def _listed_columns(body: str) -> set[str]:
    """Names given as columns: the first cell of each table row, and the 'Columns:' paragraphs."""
    names, in_list = set(), False
    for line in body.splitlines():
        if line.startswith("|") and not set(line) <= set("|- "):
            first = line.split("|")[1]
            names.update(TICKED.findall(first))
        in_list = line.startswith("Columns:") or (in_list and line.strip() != "")
        if in_list:
            names.update(TICKED.findall(line))
    return names


def _described(part: str, names: set[str]) -> dict[str, tuple[str, set[str]]]:
    """name -> (text of every subsection whose heading names it, names those headings give)."""
    found: dict[str, tuple[str, set[str]]] = {}
    for marker in ("###", "####"):
        for heading, body in _sections(part, marker, nested=False).items():
            named = set(TICKED.findall(heading))
            for name in named & names:
                text, together = found.get(name, ("", set()))
                found[name] = (text + "\n" + body, together | named)
    return found


def test_every_warehouse_table_and_column_is_in_the_design_doc():
    tables = warehouse.metadata.tables
    described = _described(_part("Warehouse contract"), set(tables))
    assert sorted(set(tables) - set(described)) == [], "tables with no section under 'Warehouse contract'"
    for name, table in tables.items():
        text, together = described[name]
        missing = [c.name for c in table.columns if f"`{c.name}`" not in text]
        assert missing == [], f"{name}: columns not in its section of docs/design.md"
        known = {c.name for t in together if t in tables for c in tables[t].columns}
        stale = sorted(_listed_columns(text) - known)
        assert stale == [], f"{name}: docs/design.md lists columns the warehouse does not have"


def test_every_reporting_view_and_column_is_in_the_design_doc():
    from reviews.core.views import VIEWS

    described = _described(_part("Reporting views"), set(VIEWS))
    assert sorted(set(VIEWS) - set(described)) == [], "views with no section under 'Reporting views'"
    for name, view in VIEWS.items():
        text, _ = described[name]
        listed = _listed_columns(text)
        assert [c for c in view.columns() if c not in listed] == [], f"{name}: view columns not in its table"
        assert sorted(listed - set(view.columns())) == [], f"{name}: docs/design.md lists columns the view lacks"


def test_every_template_dataset_and_column_is_in_the_design_doc():
    described = _described(_part("The regional return template"), set(DATASETS))
    assert sorted(set(DATASETS) - set(described)) == [], "datasets with no section under 'The regional return template'"
    for name, dataset in DATASETS.items():
        text, _ = described[name]
        listed = _listed_columns(text)
        assert [c for c in dataset.column_names if c not in listed] == [], f"{name}: template columns not in its table"
        assert sorted(listed - set(dataset.column_names)) == [], f"{name}: docs/design.md lists columns the template lacks"


def test_the_checks_above_would_catch_a_missing_column():
    part = "### `t`\n\n| column | what |\n|---|---|\n| `a` | |\n\n### `u`\n\nColumns: `b`,\n`c`.\n"
    described = _described(part, {"t", "u"})
    assert _listed_columns(described["t"][0]) == {"a"}
    assert _listed_columns(described["u"][0]) == {"b", "c"}
    assert "`z`" not in described["t"][0]


def _project_files() -> list[Path]:
    """Tracked files, and new ones not ignored (what a commit would hold), outside vendored assets."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    paths = [ROOT / p for p in out.decode("utf-8").split("\0") if p]
    return [p for p in paths if p.is_file() and not p.relative_to(ROOT).parts[:2] == ("tests", "assets")]


def test_no_file_cites_the_brief_outside_the_repository():
    # Built here, so this file does not match itself.
    outside = ".." + "/shared"
    brief = "DESIGN" + ".md"
    cites = []
    for path in _project_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if outside in line or brief in line:
                cites.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert cites == [], "cite docs/design.md and docs/domain.md instead:\n" + "\n".join(cites)
