"""The business package is layered by pipeline stage, and imports only go down the layers.

core (config, template, warehouse, dates, mail) < privacy < returns < timeliness < learning
< circulation, journeys < status, admin. A stage may use its own modules and any stage below it, never
one above it, and nothing in the product imports the dev package (synthetic data, benchmarks,
reference implementations), which the image does not contain. Airflow stays out of `include/`.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "include" / "reviews"
LAYERS = {"core": 0, "privacy": 1, "returns": 2, "timeliness": 3, "learning": 4, "circulation": 5,
          "journeys": 5, "status": 6, "admin": 6}


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "reviews":
                names += [f"reviews.{a.name}" for a in node.names]
            else:
                names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
    return names


def _stage_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] in LAYERS)


def test_every_module_lives_in_a_stage_package():
    loose = [p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    assert loose == [], f"modules outside the stage packages: {loose}"
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == {*LAYERS, "templates"}


@pytest.mark.parametrize("path", _stage_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_go_down_the_layers(path):
    stage = path.relative_to(PACKAGE).parts[0]
    wrong = []
    for name in _imports(path):
        top, _, rest = name.partition(".")
        if top in {"reviews_dev", "airflow", "reviews_airflow"}:
            wrong.append(f"{name} (not allowed in the product package)")
        elif top == "reviews" and rest:
            other = rest.split(".")[0]
            if other != stage and LAYERS.get(other, 99) >= LAYERS[stage]:
                wrong.append(f"{name} ({other} is not below {stage})")
    assert wrong == []


def test_the_layer_check_would_catch_an_upward_import(tmp_path):
    """The check above reads real import statements (a guard against it silently passing)."""
    probe = tmp_path / "probe.py"
    probe.write_text("from reviews.learning.summary import theme_label\nfrom reviews import warehouse\n")
    assert _imports(probe) == ["reviews.learning.summary", "reviews.warehouse"]


def test_one_jinja_environment_renders_every_template():
    """Only reviews.core.rendering makes a Jinja environment (one per process, over the templates
    folder); the bulletins, briefings, quality reports and return notices all render through it,
    and its source is part of the bulletins' inputs digest."""
    from reviews.core import rendering
    from reviews.learning.publication import RENDERER_FILES

    makers = []
    for path in _stage_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name in {"Environment", "FileSystemLoader", "PackageLoader"}:
                    makers.append(str(path.relative_to(PACKAGE)))
    assert sorted(set(makers)) == ["core/rendering.py"]
    assert rendering.templates() is rendering.templates()
    assert rendering.templates().loader.searchpath == [str(PACKAGE / "templates")]
    assert "core/rendering.py" in RENDERER_FILES
