"""`make demo` as a newcomer types it: five years at real volumes through the five DAGs.

Run through `make` with `REVIEWS_VAR` pointing the demo's files at a temporary folder and HOME at
another (as tests/integration/test_readme_commands.py does). It must end well and print what
issue 17 asked of it: the action registers' summary and where the yearly report and the analysts'
extract are, and those files must exist; the regional bulletin it builds must read learning first
with fewer than a quarter of its figures `c`.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.bulletin_data import published_figures
from tests.integration.test_readme_commands import clean_env, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    var, home = tmp_path_factory.mktemp("var"), tmp_path_factory.mktemp("home")
    proc = run("make demo", clean_env(var, home))
    return proc.stdout, var


def _path(stdout: str, label: str) -> Path:
    line = next(line for line in stdout.splitlines() if line.strip().startswith(label))
    return Path(line.split(":", 1)[1].split()[0])


def test_demo_prints_the_action_registers_and_where_everything_is(demo):
    stdout, var = demo
    assert "demo finished in" in stdout
    for dag_id in ("partnership_returns", "statutory_timeliness", "regional_learning_summary",
                   "bulletin_circulation", "yearly_report"):
        assert re.search(rf"airflow dags test {dag_id} \S+: success", stdout), dag_id
    assert "Sign off the yearly report: 2025-26" in stdout
    registers = stdout.split("Action registers as of 2026-10-31")[1].split("Where the results are:")[0]
    for name in ("Knowsley", "Liverpool", "Sefton", "St Helens", "Wirral"):
        line = next(line for line in registers.splitlines() if line.strip().startswith(name))
        assert re.search(r"\d+ actions: \d+ overdue, \d+ due within 10 working days", line), line
    for path in re.findall(r"register: (\S+\.xlsx)", registers):
        assert Path(path).is_file() and Path(path).is_relative_to(var)
    yearly = _path(stdout, "yearly report:")
    extract = _path(stdout, "analysts' extract:")
    assert yearly.is_file() and yearly.name == "merseyside-yearly-report-2025-26-v1.html"
    assert yearly.with_suffix(".pdf").is_file() and yearly.with_suffix(".xlsx").is_file()
    assert extract.is_file() and extract.name.startswith("analyst_extract_")


def test_the_demo_bulletin_is_learning_first_at_real_volumes(demo):
    _stdout, var = demo
    region = next((var / "bulletins").glob("*/merseyside-learning-bulletin-*-v1.html"))
    html = region.read_text(encoding="utf-8")
    headings = [h for h in re.findall(r"<h2[^>]*>(.*?)</h2>", html) if h != "Data missing or late"]
    assert headings[0].startswith("What we learned"), headings
    assert headings.index("In numbers") < headings.index("About these figures"), headings
    figures = published_figures(html)
    assert len(figures) >= 8 and figures.count("c") / len(figures) < 0.25, figures
