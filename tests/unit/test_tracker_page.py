"""The tracker and case pages as the api-server renders them (reviews_airflow.ui), from the hand-made
warehouse of test_journeys: filters answered, untrusted parameters refused with 400, case ids that
are not in the journeys are 404s, and no child's key reaches the HTML. (Logging in, the screenshot
and axe-core: tests/browser/test_tracker_page.py; the login on every route: test_security_access.)"""
from __future__ import annotations

import pytest

from reviews.core import warehouse as wh
from reviews.journeys.store import run_journeys
from tests.unit.test_journeys import AS_OF, _fill


@pytest.fixture
def site(tmp_path, monkeypatch, cfg):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = wh.make_engine(url)
    _fill(engine)
    run_journeys(engine, cfg, AS_OF)
    engine.dispose()
    monkeypatch.setenv("AIRFLOW_CONN_REVIEWS_WAREHOUSE", url)
    monkeypatch.setenv("AIRFLOW_VAR_REVIEWS_DATA_DIR", str(tmp_path / "data"))
    from reviews_airflow import ui

    monkeypatch.setattr(ui, "_today", lambda: AS_OF)
    return ui


def test_the_tracker_lists_what_is_due_within_5_working_days(site):
    status, html = site._tracker_html([("due_within", "5")])
    assert status == 200
    body = html.split('<tbody>', 1)[1]
    assert body.index("KNO-N-1") < body.index("STH-R-1") < body.index("KNO-N-2")
    assert "KNO-N-3" not in body and "KNO-N-4" not in body
    assert "3 cases matching, due by 24 Jun 2024" in " ".join(html.split())
    assert 'href="/reviews/cases/st_helens/STH-R-1"' in html and 'value="5"' in html
    assert "k" * 16 not in html


@pytest.mark.parametrize("items", [
    [("partnership", "<script>alert(1)</script>")], [("due_within", "1e9")], [("sort", "name")],
    [("status", "met"), ("status", "late")],
])
def test_a_filter_the_tracker_does_not_offer_is_refused(site, items):
    status, text = site._tracker_html(items)
    assert status == 400 and "<script>" not in text and text.startswith("Not a filter the tracker offers")


def test_the_case_page(site):
    html = site._case_html("liverpool", "LIV-N-1")
    text = " ".join(html.split())
    for words in ("Case LIV-N-1, Liverpool", "improvements published instead", "return_2024-06-14.xlsx",
                  "published_date &#34;n/a&#34; is not a date", "LIV-RR-9", "waiting for a correction"):
        assert words in text, words
    assert site._case_html("liverpool", "LIV-N-404") is None
    assert site._case_html("liverpool", "<b>x</b>") is None
    assert site._case_html("mars", "LIV-N-1") is None
