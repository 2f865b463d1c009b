"""Late and missing returns on their own: periods, the judgement, the table and the notices."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
import sqlalchemy as sa

from reviews.core import warehouse as wh
from reviews.core.config import ReturnsRule, load_config
from reviews.returns.returns_due import check_returns, judge, periods
from tests.integration.returns_support import write_config

QUARTERLY = ReturnsRule("quarterly", 10, date(2024, 3, 31))
NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)  # audit stamps only: nothing judged depends on it


def test_periods_monthly_and_quarterly():
    assert periods(QUARTERLY, date(2024, 9, 29)) == [(date(2024, 1, 1), date(2024, 3, 31)), (date(2024, 4, 1), date(2024, 6, 30))]
    monthly = ReturnsRule("monthly", 5, date(2024, 1, 15))  # not a month end: the month containing it
    assert periods(monthly, date(2024, 3, 31)) == [
        (date(2024, 1, 1), date(2024, 1, 31)), (date(2024, 2, 1), date(2024, 2, 29)), (date(2024, 3, 1), date(2024, 3, 31))]


@pytest.mark.parametrize("returns,as_of,expected", [
    ([], date(2024, 4, 10), []),  # due today, nothing yet: not flagged
    ([], date(2024, 4, 11), [("2024-03-31", "missing", None)]),
    ([(date(2024, 4, 10), 1)], date(2024, 4, 11), [("2024-03-31", "on_time", "2024-04-10")]),
    ([(date(2024, 3, 31), 1)], date(2024, 4, 11), [("2024-03-31", "on_time", "2024-03-31")]),  # sent on the last day
    ([(date(2024, 4, 12), 1)], date(2024, 4, 11), [("2024-03-31", "missing", None)]),  # dated after the as-of date
    ([(date(2024, 4, 12), 1)], date(2024, 4, 30), [("2024-03-31", "late", "2024-04-12")]),
    ([(date(2024, 4, 20), 2), (date(2024, 4, 12), 1)], date(2024, 7, 11),
     [("2024-03-31", "late", "2024-04-12"), ("2024-06-30", "missing", None)]),
    ([(date(2024, 6, 30), 3)], date(2024, 7, 1), [("2024-03-31", "missing", None), ("2024-06-30", "on_time", "2024-06-30")]),
])
def test_judge(returns, as_of, expected):
    got = [(r["period_end"].isoformat(), r["status"], r["received_date"] and r["received_date"].isoformat())
           for r in judge(QUARTERLY, returns, as_of)]
    assert got == expected


def _file(conn, code: str, day: date, status: str = "loaded") -> None:
    conn.execute(sa.insert(wh.return_files), {
        "partnership_code": code, "file_name": f"notifications_{day}.csv", "sha256": f"{code}{day}{status}",
        "size_bytes": 1, "return_date": day, "received_at": NOW, "raw_path": "/raw", "status": status})


def test_check_returns_table_and_notices_once(tmp_path, sqlite_url):
    cfg = load_config(write_config(tmp_path, {"knowsley": {}, "wirral": {}},
                                   returns={"frequency": "quarterly", "due_days_after_period_end": 10, "expected_from": "2024-03-31"}))
    engine = wh.make_engine(sqlite_url)
    wh.ensure_schema(engine)
    with engine.begin() as conn:
        _file(conn, "knowsley", date(2024, 4, 9))
        # Wirral sends nothing (a return that arrived but failed is "failed", not missing:
        # tests/unit/test_returns_failed.py)
    out = tmp_path / "notices"

    first = check_returns(engine, cfg, date(2024, 4, 15), out, clock=lambda: NOW)
    assert (first["on_time"], first["late"], first["missing"], len(first["new_notices"])) == (1, 0, 1, 1)
    again = check_returns(engine, cfg, date(2024, 4, 15), out, clock=lambda: NOW)  # a rerun: same rows, no new notice
    assert again["new_notices"] == []
    later = check_returns(engine, cfg, date(2024, 4, 20), out, clock=lambda: NOW)  # still missing: not told twice
    assert later["missing"] == 1 and later["new_notices"] == []
    with engine.begin() as conn:
        _file(conn, "wirral", date(2024, 4, 22))
    arrived = check_returns(engine, cfg, date(2024, 4, 25), out, clock=lambda: NOW)  # arrived late: a new flag
    assert (arrived["late"], len(arrived["new_notices"])) == (1, 1)
    # A backfill of an earlier day judges as of then, and tells nobody again.
    assert check_returns(engine, cfg, date(2024, 4, 15), out, clock=lambda: NOW)["new_notices"] == []

    with engine.connect() as conn:
        rows = conn.execute(sa.text("select as_of_date, partnership_code, status, received_date from return_expectations "
                                    "order by as_of_date, partnership_code")).all()
        notices = conn.execute(sa.text("select audience, subject, version, path from bulletins order by bulletin_id")).all()
    assert [(str(a)[:10], c, s) for a, c, s, _ in rows] == [
        ("2024-04-15", "knowsley", "on_time"), ("2024-04-15", "wirral", "missing"),
        ("2024-04-20", "knowsley", "on_time"), ("2024-04-20", "wirral", "missing"),
        ("2024-04-25", "knowsley", "on_time"), ("2024-04-25", "wirral", "late")]
    assert [(a, s, v) for a, s, v, _ in notices] == [
        ("returns:wirral", "Return missing: Wirral, quarter ending 31 March 2024", 1),
        ("returns:wirral", "Return late: Wirral, quarter ending 31 March 2024", 2)]
    text = open(notices[1][3].replace(".html", ".txt"), encoding="utf-8").read()
    assert "was due on 10 April 2024 and is dated 22 April 2024: 12 days late." in text
    engine.dispose()


def test_no_returns_config_means_no_check(tmp_path, sqlite_url, cfg):
    from dataclasses import replace

    engine = wh.make_engine(sqlite_url)
    assert check_returns(engine, replace(cfg, returns=None), date(2024, 4, 15), tmp_path) == {"checked": False}
