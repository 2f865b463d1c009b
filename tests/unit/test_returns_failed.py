"""A return that arrived but could not be loaded is "failed" (received, not loaded), never "missing".

Issue 14 item 8: a partnership whose return was in the inbox but whose load failed was told the
business unit its return was missing. Through the real functions on SQLite and PostgreSQL.
"""
from __future__ import annotations

import os
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from reviews.core import warehouse as wh
from reviews.core.config import ReturnsRule, load_config
from reviews.returns.landing import sha256_of
from reviews.returns.returns_due import Arrival, check_returns, judge, source_folder, window_of
from tests.integration.returns_support import write_config

QUARTERLY = ReturnsRule("quarterly", 10, date(2024, 3, 31))
MONTHLY = ReturnsRule("monthly", 5, date(2024, 1, 31))
NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)
SECRET_IN_ERROR = "0151 496 0000"  # a cell a (hypothetical) reader error quoted: never in a notice


def _rows(rule, returns, as_of, failed=()):
    return [(r["period_end"].isoformat(), r["status"], r["received_date"] and r["received_date"].isoformat(), r["file_id"])
            for r in judge(rule, returns, as_of, failed)]


def test_judge_tells_failed_from_missing():
    bad = Arrival(date(2024, 4, 9), 7, "notifications_2024-04-09.csv", date(2024, 4, 9))
    unrecorded = Arrival(date(2024, 4, 9), None, "notifications_2024-04-09.csv", date(2024, 4, 9))
    # before the due date: the row says failed (no notice yet, see check_returns)
    assert _rows(QUARTERLY, [], date(2024, 4, 9), [bad]) == [("2024-03-31", "failed", "2024-04-09", 7)]
    assert _rows(QUARTERLY, [], date(2024, 4, 11), [bad]) == [("2024-03-31", "failed", "2024-04-09", 7)]
    assert _rows(QUARTERLY, [], date(2024, 4, 11), [unrecorded]) == [("2024-03-31", "failed", "2024-04-09", None)]
    # nothing at all: missing, as before
    assert _rows(QUARTERLY, [], date(2024, 4, 11)) == [("2024-03-31", "missing", None, None)]
    # a failed file dated after the as-of date has not arrived yet
    assert _rows(QUARTERLY, [], date(2024, 4, 8), [bad]) == []
    assert _rows(QUARTERLY, [], date(2024, 4, 11), [Arrival(date(2024, 4, 12), 7, "x", None)]) == [
        ("2024-03-31", "missing", None, None)]
    # a loaded return for the period wins over a failed one, before or after it
    assert _rows(QUARTERLY, [(date(2024, 4, 20), 9)], date(2024, 4, 25), [bad]) == [("2024-03-31", "late", "2024-04-20", 9)]
    assert _rows(QUARTERLY, [(date(2024, 4, 5), 9)], date(2024, 4, 25), [bad]) == [("2024-03-31", "on_time", "2024-04-05", 9)]
    # a failed return belongs to its own period only: the next quarter is still missing
    assert _rows(QUARTERLY, [], date(2024, 7, 11), [bad]) == [
        ("2024-03-31", "failed", "2024-04-09", 7), ("2024-06-30", "missing", None, None)]
    # the earliest failed arrival is the one named; a recorded one before an unrecorded one the same day
    later = Arrival(date(2024, 4, 2), 3, "rapid_reviews_2024-04-02.csv", date(2024, 4, 2))
    assert _rows(QUARTERLY, [], date(2024, 4, 11), [bad, later, unrecorded]) == [("2024-03-31", "failed", "2024-04-02", 3)]


@pytest.mark.parametrize("day,rule,expected", [
    (date(2024, 3, 31), QUARTERLY, date(2024, 3, 31)), (date(2024, 4, 9), QUARTERLY, date(2024, 3, 31)),
    (date(2024, 6, 29), QUARTERLY, date(2024, 3, 31)), (date(2024, 6, 30), QUARTERLY, date(2024, 6, 30)),
    (date(2025, 1, 5), QUARTERLY, date(2024, 12, 31)), (date(2024, 3, 1), MONTHLY, date(2024, 2, 29)),
    (date(2024, 2, 29), MONTHLY, date(2024, 2, 29)), (date(2024, 1, 3), MONTHLY, date(2023, 12, 31)),
])
def test_window_of_is_the_period_a_return_is_for(day, rule, expected):
    assert window_of(rule, day) == expected


def _file(conn, code: str, day: date, status: str, *, sha: str | None = None, name: str | None = None,
          error: str | None = None) -> int:
    return conn.execute(sa.insert(wh.return_files).returning(wh.return_files.c.file_id), {
        "partnership_code": code, "file_name": name or f"notifications_{day}.csv", "sha256": sha or f"{code}{day}{status}",
        "size_bytes": 1, "return_date": day, "received_at": datetime(2024, 4, 9, 7, tzinfo=timezone.utc),
        "raw_path": "/raw", "status": status, "error": error}).scalar_one()


@pytest.mark.parametrize("url_fixture", ["sqlite_url", "postgres_url"])
def test_failed_and_unrecorded_returns_are_not_missing(tmp_path, url_fixture, request):
    url = request.getfixturevalue(url_fixture)
    codes = ("knowsley", "wirral", "sefton", "st_helens")
    cfg = load_config(write_config(tmp_path, {c: {} for c in codes},
                                   returns={"frequency": "quarterly", "due_days_after_period_end": 10,
                                            "expected_from": "2024-03-31"}))
    inbox = tmp_path / "inbox"
    for c in codes:
        (inbox / c).mkdir(parents=True)
    # Wirral: its file is in the drop folder, but its load failed before recording anything.
    (inbox / "wirral" / "notifications_2024-04-08.csv").write_text("notification_id\nW1\n", encoding="utf-8")
    os.utime(inbox / "wirral" / "notifications_2024-04-08.csv", (1712570400, 1712570400))  # 8 April 2024
    # Wirral also has a file dated after the as-of date (not yet arrived) and junk that is not a return.
    (inbox / "wirral" / "notifications_2024-04-30.csv").write_text("x", encoding="utf-8")
    (inbox / "wirral" / "notes.txt").write_text("x", encoding="utf-8")
    (inbox / "wirral" / ".notifications_2024-04-07.csv.part").write_text("x", encoding="utf-8")
    # St Helens: its file is in the folder and was loaded (recorded by sha256).
    sth = inbox / "st_helens" / "notifications_2024-04-05.csv"
    sth.write_text("notification_id\nS1\n", encoding="utf-8")
    engine = wh.make_engine(url)
    wh.ensure_schema(engine)
    with engine.begin() as conn:
        # Knowsley: the return arrived, every file of it failed (recorded as failed).
        bad_id = _file(conn, "knowsley", date(2024, 4, 9), "failed",
                       error=f"the CSV is malformed at line 4 (near {SECRET_IN_ERROR})")
        _file(conn, "st_helens", date(2024, 4, 5), "loaded", sha=sha256_of(sth)[0], name=sth.name)
        # Sefton sends nothing.
    folders = {c: source_folder(cfg.partnership(c), inbox, tmp_path / "staging") for c in codes}
    out = tmp_path / "notices"

    def check(day):
        return check_returns(engine, cfg, day, out, clock=lambda: NOW, folders=folders)

    before_due = check(date(2024, 4, 9))
    assert (before_due["failed"], before_due["missing"], before_due["on_time"]) == (2, 0, 1)
    assert before_due["new_notices"] == []  # not due yet: the partnership's quality report tells it
    first = check(date(2024, 4, 15))
    assert (first["on_time"], first["late"], first["missing"], first["failed"]) == (1, 0, 1, 2)
    assert len(first["new_notices"]) == 3  # Knowsley and Wirral not loaded, Sefton missing
    assert check(date(2024, 4, 15))["new_notices"] == []  # a rerun: nothing new
    assert check(date(2024, 4, 20))["new_notices"] == []  # still failed: told once
    with engine.begin() as conn:  # Knowsley sends a corrected return, late
        _file(conn, "knowsley", date(2024, 4, 22), "loaded")
    corrected = check(date(2024, 4, 25))
    assert (corrected["late"], corrected["failed"], len(corrected["new_notices"])) == (1, 1, 1)

    with engine.connect() as conn:
        state = conn.execute(sa.text(
            "select as_of_date, partnership_code, status, received_date, file_id from return_expectations "
            "where as_of_date in ('2024-04-15', '2024-04-25') order by as_of_date, partnership_code")).all()
        notices = conn.execute(sa.text("select audience, subject, path from bulletins order by bulletin_id")).all()
    assert [(str(a)[:10], c, s, str(r)[:10], f) for a, c, s, r, f in state] == [
        ("2024-04-15", "knowsley", "failed", "2024-04-09", bad_id),
        ("2024-04-15", "sefton", "missing", "None", None),
        ("2024-04-15", "st_helens", "on_time", "2024-04-05", 2),
        ("2024-04-15", "wirral", "failed", "2024-04-08", None),
        ("2024-04-25", "knowsley", "late", "2024-04-22", 3),
        ("2024-04-25", "sefton", "missing", "None", None),
        ("2024-04-25", "st_helens", "on_time", "2024-04-05", 2),
        ("2024-04-25", "wirral", "failed", "2024-04-08", None),
    ]
    assert [(a, s) for a, s, _ in notices] == [
        ("returns:knowsley", "Return not loaded: Knowsley, quarter ending 31 March 2024"),
        ("returns:wirral", "Return not loaded: Wirral, quarter ending 31 March 2024"),
        ("returns:sefton", "Return missing: Sefton, quarter ending 31 March 2024"),
        ("returns:knowsley", "Return late: Knowsley, quarter ending 31 March 2024"),
    ]
    knowsley = Path(notices[0][2]).with_suffix(".txt").read_text(encoding="utf-8")
    assert "Received, but not loaded." in knowsley
    assert ("The return from Knowsley for the quarter 01 January 2024 to 31 March 2024, dated 09 April 2024, "
            "arrived on 09 April 2024 but could not be loaded.") in knowsley
    assert "It is not missing" in knowsley and "File received: notifications_2024-04-09.csv." in knowsley
    assert "data quality report for the return of 09 April 2024" in knowsley
    wirral = Path(notices[1][2]).with_suffix(".txt").read_text(encoding="utf-8")
    assert "dated 08 April 2024, arrived on 08 April 2024 but could not be loaded" in wirral
    assert "File received: notifications_2024-04-08.csv." in wirral
    assert "1 file is in the partnership's folder but no load recorded it" in wirral
    assert "notifications_2024-04-30.csv" not in wirral and "notes.txt" not in wirral
    html = Path(notices[1][2]).read_text(encoding="utf-8")
    assert "Received, but not loaded." in html and "could not be loaded" in html
    for _a, _s, path in notices:
        for suffix in (".html", ".txt"):
            text = Path(path).with_suffix(suffix).read_text(encoding="utf-8")
            assert SECRET_IN_ERROR not in text and "malformed" not in text  # the error text is never quoted
    engine.dispose()


def test_without_folders_only_recorded_files_count(tmp_path, sqlite_url):
    cfg = load_config(write_config(tmp_path, {"wirral": {}},
                                   returns={"frequency": "quarterly", "due_days_after_period_end": 10,
                                            "expected_from": "2024-03-31"}))
    (tmp_path / "inbox" / "wirral").mkdir(parents=True)
    (tmp_path / "inbox" / "wirral" / "notifications_2024-04-08.csv").write_text("x", encoding="utf-8")
    engine = wh.make_engine(sqlite_url)
    wh.ensure_schema(engine)
    assert check_returns(engine, cfg, date(2024, 4, 15), tmp_path / "n", clock=lambda: NOW)["missing"] == 1
    # A partnership whose folder does not exist has had nothing arrive.
    got = check_returns(engine, cfg, date(2024, 4, 15), tmp_path / "n", clock=lambda: NOW,
                        folders={"wirral": tmp_path / "nowhere"})
    assert (got["missing"], got["failed"]) == (1, 0)
    got = check_returns(engine, cfg, date(2024, 4, 15), tmp_path / "n", clock=lambda: NOW,
                        folders={"wirral": tmp_path / "inbox" / "wirral"})
    assert (got["missing"], got["failed"]) == (0, 1)
    engine.dispose()


def test_source_folder_by_kind(tmp_path, cfg):
    from dataclasses import replace

    p = cfg.partnership("knowsley")
    assert source_folder(p, tmp_path / "in", tmp_path / "st") == tmp_path / "in" / "knowsley"
    sftp = replace(p, source={"kind": "sftp", "conn_id": "x", "path": "/r"})
    assert source_folder(sftp, tmp_path / "in", tmp_path / "st") == tmp_path / "st" / "knowsley" / "sftp"
    sql = replace(p, source={"kind": "sql", "conn_id": "x", "queries": {"notifications": "select 1"}})
    assert source_folder(sql, tmp_path / "in", tmp_path / "st") == tmp_path / "st" / "knowsley" / "sql"


def test_an_unreadable_file_counts_once(tmp_path, sqlite_url, monkeypatch):
    """A file that cannot be read is still an arrival; once ingest has recorded it (as failed, under
    a stand-in digest), it is that recorded file, not a second, unrecorded one."""
    import reviews.returns.returns_due as rd

    cfg = load_config(write_config(tmp_path, {"wirral": {}},
                                   returns={"frequency": "quarterly", "due_days_after_period_end": 10,
                                            "expected_from": "2024-03-31"}))
    folder = tmp_path / "inbox" / "wirral"
    folder.mkdir(parents=True)
    (folder / "notifications_2024-04-08.csv").write_text("x", encoding="utf-8")

    def unreadable(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(rd, "sha256_of", unreadable)
    engine = wh.make_engine(sqlite_url)
    wh.ensure_schema(engine)
    first = check_returns(engine, cfg, date(2024, 4, 15), tmp_path / "n", clock=lambda: NOW, folders={"wirral": folder})
    assert (first["failed"], first["missing"]) == (1, 0)
    with engine.begin() as conn:
        file_id = _file(conn, "wirral", date(2024, 4, 8), "failed", sha="stand-in-digest",
                        name="notifications_2024-04-08.csv")
    wanted = lambda day: True  # noqa: E731
    assert rd.unrecorded_arrivals(folder, {"stand-in-digest"}, date(2024, 4, 16), wanted,
                                  recorded_names={"notifications_2024-04-08.csv"}) == []
    assert [a.file_name for a in rd.unrecorded_arrivals(folder, set(), date(2024, 4, 16), wanted)] == [
        "notifications_2024-04-08.csv"]
    again = check_returns(engine, cfg, date(2024, 4, 16), tmp_path / "n", clock=lambda: NOW, folders={"wirral": folder})
    assert again["failed"] == 1
    with engine.connect() as conn:
        assert conn.execute(sa.text("select file_id from return_expectations where as_of_date = '2024-04-16'")
                            ).scalar_one() == file_id
    engine.dispose()
