"""The yearly report (reviews.learning.yearly): five financial years of figures from hand-made rows
(tests/yearly_data.py) on SQLite and PostgreSQL, counted again here from the same rows; the
suppression test that solves the published totals, on every yearly grid and the grids published
together; storing and circulating like a bulletin."""
from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import yaml

from reviews.core import warehouse as wh
from reviews.learning import yearly
from reviews.privacy.suppression import TOTAL
from tests.unit.test_suppression import _published_equations
from tests.yearly_data import ROWS, VOLUMES, YEAR_ENDS, build

REPORT_YEAR = yearly.financial_year(2025)
YEARS = [yearly.financial_year(y) for y in YEAR_ENDS]


def _k(day: date | None) -> int | None:
    """The index of the financial year (of the five) a day falls in."""
    for k, p in enumerate(YEARS):
        if day is not None and p.start <= day <= p.end:
            return k
    return None


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    e = wh.make_engine(url)
    build(e)
    yield e
    e.dispose()


@pytest.fixture
def report(engine, cfg):
    return yearly.compile_yearly(engine, cfg, REPORT_YEAR)


@pytest.mark.parametrize("day, year", [
    (date(2025, 5, 1), "2024-25"), (date(2025, 3, 31), "2024-25"), (date(2025, 3, 30), "2023-24"),
    (date(2025, 4, 1), "2024-25"), (date(2024, 12, 31), "2023-24"),
])
def test_the_financial_year_ended_by_a_day(day, year):
    p = yearly.financial_year_ended_by(day)
    assert yearly.year_label(p) == year and p.start.month == 4 and p.start.day == 1 and (p.end.month, p.end.day) == (3, 31)
    assert [yearly.year_label(x) for x in yearly.five_years(p)][-1] == year


def test_five_years_of_figures_per_partnership(report):
    assert [y["label"] for y in report["years"]] == ["2020-21", "2021-22", "2022-23", "2023-24", "2024-25"]
    m = report["measures"]
    expected = Counter((r["partnership_code"], _k(r["notified_date"] or r["aware_date"]), r["incident_type"])
                       for r in ROWS["notifications"])
    got = Counter({(c, k, t): n for k, year in enumerate(m["notifications"]) for c, row in year.items()
                   for t, n in row.items() if n})
    assert got == expected
    for k in range(5):  # volumes grow by one a year
        assert {c: sum(v.values()) for c, v in m["notifications"][k].items()} == {c: n + k for c, n in VOLUMES.items()}

    rapid = Counter((r["partnership_code"], _k(r["completed_date"]), r["outcome"]) for r in ROWS["rapid_reviews"])
    assert Counter({(c, k, o): n for k, year in enumerate(m["rapid_reviews"]) for c, row in year.items()
                    for o, n in row.items() if n}) == rapid
    panel = Counter((r["partnership_code"], _k(r["completed_date"]), r["panel_decision"] or "not_recorded")
                    for r in ROWS["rapid_reviews"])
    assert Counter({(c, k, d): n for k, year in enumerate(m["panel_decisions"]) for c, row in year.items()
                    for d, n in row.items() if n}) == panel
    decided = Counter((r["partnership_code"], _k(r["decision_date"]), r["review_type"])
                      for r in ROWS["practice_reviews"] if _k(r["decision_date"]) is not None)
    assert Counter({(c, k, t): n for k, year in enumerate(m["practice_reviews"]) for c, row in year.items()
                    for t, n in row.items() if n}) == decided
    assert [year["liverpool"]["national"] for year in m["practice_reviews"]] == [1] * 5  # one national review a year


def test_conversion_is_the_share_of_rapid_reviews_recommending_an_lcspr(report, cfg):
    last = report["measures"]["rapid_reviews"][-1]
    lcspr, total = sum(r["lcspr"] for r in last.values()), sum(sum(r.values()) for r in last.values())
    rendered = yearly.render_report(report, cfg, "region")
    assert f"Rapid reviews that recommended an LCSPR in 2024-25 (conversion): {round(100 * lcspr / total)}%" in rendered.text


def test_timeliness_counts_every_case_due_in_its_year(report):
    """Every clock of the hand-made cases falls due in the year the child's case began; the
    notification stage is met when notified the next day and late when notified 9 days later."""
    t = report["measures"]["timeliness"]
    for k in range(5):
        for code, base in VOLUMES.items():
            row = t["notification"][k][code]
            assert sum(row.values()) == base + k, (k, code)
            assert row["met"] >= sum(1 for i in range(base + k) if i % 3 != 2)
            assert row["open_overdue"] == 0


def _state(r: dict, end: date) -> str:
    """The bulletins' rule (docs/bulletins.md): completed by then, else overdue, else in progress
    (a completion after the year end counts as in progress then), else open."""
    if r["action_completed_date"] is not None and r["action_completed_date"] <= end:
        return "completed"
    if r["action_due_date"] < end:
        return "overdue"
    return "in_progress" if r["action_status"] in ("in_progress", "completed") else "open"


def test_actions_and_themes_as_at_each_year_end(report):
    reviews = {(r["partnership_code"], r["review_id"]): r for r in ROWS["practice_reviews"]}
    m = report["measures"]
    for k, p in enumerate(YEARS):
        done = [x for x in ROWS["learning"]
                if (d := reviews[(x["partnership_code"], x["review_id"])]["completed_date"]) is not None and d <= p.end]
        expected = Counter((x["partnership_code"], _state(x, p.end)) for x in done)
        got = Counter({(c, s): n for c, row in m["actions"][k].items() for s, n in row.items() if n})
        assert got == expected, p
        themes = Counter((x["partnership_code"], x["theme"]) for x in ROWS["learning"]
                         if _k(reviews[(x["partnership_code"], x["review_id"])]["completed_date"]) == k)
        assert Counter({(c, t): n for c, row in m["themes"][k].items() for t, n in row.items() if n}) == themes


def test_characteristics_of_the_children_notified_in_the_year(report):
    chars = report["measures"]["characteristics"]
    year = [r for r in ROWS["notifications"] if _k(r["notified_date"]) == 4]
    assert Counter((r["partnership_code"], yearly.age_band(r["age_years"])) for r in year) == Counter(
        {(c, b): n for c, row in chars["age_band"].items() for b, n in row.items() if n})
    assert report["categories"]["age_band"] == ["under_1", "1_4", "5_9", "10_15", "16_17", "not_recorded"]
    assert sum(chars["sex"]["liverpool"].values()) == VOLUMES["liverpool"] + 4
    assert sum(row["not_recorded"] for row in chars["ethnic_group"].values()) == sum(
        1 for r in year if r["ethnicity"] in (None, "Not recorded"))
    assert sum(row["Y"] for row in chars["cp_plan"].values()) == sum(1 for r in year if r["cp_plan"] == "Y")


@pytest.mark.parametrize("text, group", [
    ("White British", "white"), ("White Other", "white"), ("Mixed", "mixed"), ("Mixed White and Black Caribbean", "mixed"),
    ("Asian or Asian British", "asian"), ("Pakistani", "asian"), ("Black or Black British", "black"),
    ("Other ethnic group", "other"), ("Not recorded", "not_recorded"), (None, "not_recorded"), ("", "not_recorded"),
    ("Refused", "not_recorded"), ("zzz", "not_recorded"),
])
def test_ethnic_groups(text, group):
    assert yearly.ethnic_group(text) == group


@pytest.mark.parametrize("age, band", [(0, "under_1"), (1, "1_4"), (4, "1_4"), (5, "5_9"), (10, "10_15"),
                                       (15, "10_15"), (16, "16_17"), (17, "16_17"), (None, "not_recorded")])
def test_age_bands(age, band):
    assert yearly.age_band(age) == band


# --- disclosure control: the published tables, solved ------------------------------------------


def _joint_recoverable(frames: list) -> list:
    """Hidden cells a reader can pin down from the published grids together: each grid's rows and
    columns add up to their totals, and grids published together share their Total column (the
    same partnership totals), so those cells are the same unknowns in all of them."""
    unknowns: dict[tuple, int] = {}
    blocks = []
    for g, out in enumerate(frames):
        cells, a, b = _published_equations(out)
        last_col = out.shape[1] - 1
        cols = []
        for i, j in cells:
            name = ("shared", i) if j == last_col else (g, i, j)
            cols.append(unknowns.setdefault(name, len(unknowns)))
        blocks.append((cols, a, b))
    if not unknowns:
        return []
    rows = []
    for cols, a, _ in blocks:
        for line in a:
            row = np.zeros(len(unknowns))
            for c, v in zip(cols, line):
                row[c] += v
            rows.append(row)
    a = np.array(rows)
    found = []
    for name, k in unknowns.items():
        e = np.zeros(len(unknowns))
        e[k] = 1.0
        if np.linalg.matrix_rank(np.vstack([a, e])) == np.linalg.matrix_rank(a):
            found.append(name)
    return found


def _true_grid(report: dict, key: tuple) -> tuple[list, list, np.ndarray]:
    m, cats = report["measures"], report["categories"]
    codes = [p["code"] for p in report["partnerships"]]
    if key[0] == "themes":
        themes = [t["theme"] for t in report["themes"]]
        inner = np.array([[m["themes"][key[1]][c][t] for c in codes] for t in themes])
        return themes, codes, inner
    if key[0] == "timeliness":
        counts, columns = m["timeliness"][key[1]][key[2]], cats["timeliness"]
    elif key[0] == "characteristics":
        counts, columns = m["characteristics"][key[1]], cats[key[1]]
    else:
        counts, columns = m[key[0]][key[1]], cats[key[0]]
    return codes, columns, np.array([[counts[c][x] for x in columns] for c in codes])


def test_no_suppressed_value_of_the_yearly_tables_can_be_recovered_from_totals(report, cfg):
    grids = yearly.suppressed_grids(report, cfg)
    assert len(grids.published) == 5 * (5 + 4 + 1) + 5  # per year: 5 measures, 4 stages, themes; 5 characteristics
    for key, out in grids.published.items():
        _, _, inner = _true_grid(report, key)
        full = np.vstack([np.hstack([inner, inner.sum(axis=1, keepdims=True)]),
                          np.append(inner.sum(axis=0), inner.sum())])
        shown = out.to_numpy()
        for (i, j), n in np.ndenumerate(full):  # every count from 1 to 5 hidden; shown numbers true
            assert shown[i, j] == "c" if 1 <= n <= 5 else shown[i, j] in ("c", str(n)), (key, i, j)
        assert _joint_recoverable([out]) == [], key
    linked = {k for group in grids.links for k in group}
    assert ("characteristics", "sex") in linked and ("panel_decisions", 4) in linked
    for group in grids.links:  # tables publishing the same totals: solved together
        frames = [grids.published[k] for k in group]
        totals = {tuple(f[TOTAL]) for f in frames}
        assert len(totals) == 1, group  # a total hidden in one is hidden in all
        assert _joint_recoverable(frames) == [], group


def test_the_joint_solver_would_catch_a_total_shown_in_one_table_only():
    """The check above is not vacuous: two tables suppressed apart can leak through a shared total."""
    import pandas as pd

    from reviews.privacy.suppression import suppress_table

    inner_a = pd.DataFrame([[0, 12], [6, 2], [3, 0]], index=list("pqr"), columns=["x", "y"])
    inner_b = pd.DataFrame([[0, 2, 10], [0, 4, 4], [0, 2, 1]], index=list("pqr"), columns=["u", "v", "w"])
    a, b = suppress_table(inner_a), suppress_table(inner_b)  # the same row totals, suppressed apart
    assert a.loc["p", TOTAL] == "c" and b.loc["p", TOTAL] == "12"
    assert _joint_recoverable([a]) == [] and _joint_recoverable([b]) == []
    assert _joint_recoverable([a, b]) != []  # p's total from b solves a
    linked = yearly._suppress_linked([inner_a, inner_b], _Cfg())
    assert list(linked[0][TOTAL]) == list(linked[1][TOTAL])
    assert _joint_recoverable(linked) == []


class _Cfg:
    suppression_low, suppression_high, suppression_symbol = 1, 5, "c"


def test_every_published_table_reads_the_suppressed_grids(report, cfg):
    grids = yearly.suppressed_grids(report, cfg)
    for audience in ("region", "knowsley", "sefton"):
        r = yearly.render_report(report, cfg, audience, grids)
        assert r.tables
        for t in r.tables:
            for _, cells, _ in t.rows:
                for v in cells:
                    assert v not in {"1", "2", "3", "4", "5"}, (audience, t.caption)
        assert "c" in r.text and "<script" not in r.html
        assert "Financial year 2024-25" in r.html
        if audience != "region":
            assert "Merseyside total" in r.text and "commissioned by the Panel" in r.text


# --- stored like a bulletin ------------------------------------------------------------------------


def _no_pdf_config(folder: Path) -> Path:
    root = Path(__file__).resolve().parents[2]
    raw = yaml.safe_load((root / "config" / "reviews.yaml").read_text(encoding="utf-8"))
    raw["summary"]["pdf"] = False
    path = folder / "reviews-no-pdf.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def test_build_stores_a_version_per_audience_and_a_rebuild_adds_none(tmp_path):
    import sqlalchemy as sa

    from reviews.circulation.bulletin_sends import queue_bulletin_sends, recipients_for
    from reviews.core.config import load_config

    cfg = load_config(_no_pdf_config(tmp_path))
    e = wh.make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    build(e)
    first = yearly.build_yearly(e, cfg, REPORT_YEAR, tmp_path / "yearly")
    assert [b["audience"] for b in first.built] == ["yearly:region", *(f"yearly:{c}" for c in cfg.partnerships)]
    assert all(b["new"] and b["version"] == 1 for b in first.built)
    folder = tmp_path / "yearly" / "2024-25"
    assert (folder / "merseyside-yearly-report-2024-25-v1.xlsx").read_bytes()[:2] == b"PK"
    assert (folder / "knowsley-yearly-report-2024-25-v1.html").is_file()
    assert (folder / "internal" / "summary.json").is_file()
    again = yearly.build_yearly(e, cfg, REPORT_YEAR, tmp_path / "yearly")
    assert [b["bulletin_id"] for b in again.built] == [b["bulletin_id"] for b in first.built]
    assert not any(b["new"] for b in again.built)
    with e.connect() as conn:
        rows = conn.execute(sa.select(wh.bulletins.c.period_start, wh.bulletins.c.period_end)).all()
    assert set(rows) == {(date(2024, 4, 1), date(2025, 3, 31))}

    # Recipients: each partnership's business contact its own report; the region's to all of them.
    assert recipients_for(cfg, "yearly:knowsley") == list(cfg.partnership("knowsley").business_contact)
    region = recipients_for(cfg, "yearly:region")
    assert set(region) == {a for p in cfg.partnerships.values() for a in p.business_contact} | set(cfg.business_unit_email)
    ids = [b["bulletin_id"] for b in first.built]
    report = queue_bulletin_sends(e, cfg, resend_bulletin_ids=ids, approved_ids=ids)
    assert report.queued == len(region) + len(cfg.partnerships) and not report.problems
