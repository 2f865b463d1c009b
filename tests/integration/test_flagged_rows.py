"""Rows that break only `flag` rules are loaded and monitored, and reported back (issue 16, item 1),
through `partnership_returns` under `dag.test()`, on SQLite and on PostgreSQL.

Knowsley sends an LCSPR whose author is blank (the reviewer not yet appointed), one whose author is
not on the regional list, and a rapid review whose completed_date is `n/a`: all three are in the
case tables (the unusable cells blank), `row_flags` keeps each flag with what the return said, the
data quality report lists them under "Loaded, but please correct" beside the rejected row, the
status page counts them, and `rows_read = rows_loaded + rows_quarantined` still holds."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tests.integration.returns_support import prepare, run_returns, write_config

pytestmark = pytest.mark.slow

AS_OF = date(2024, 7, 31)
APPROVED = "Independent reviewer A (regional list)"
NOTIFICATIONS = ("notification_id,child_ref,incident_date,aware_date,notified_date,incident_type\r\n"
                 "KNO-1,KNO-CHILD-FLAG-1,01/05/2024,02/05/2024,03/05/2024,death\r\n"
                 "KNO-2,KNO-CHILD-FLAG-2,01/05/2024,02/05/2024,03/05/2024,serious_harm\r\n")
RAPID_REVIEWS = ("rapid_review_id,notification_id,completed_date,outcome,panel_response_date,panel_decision\r\n"
                 "KNO-RR-1,KNO-1,n/a,lcspr,,\r\n"
                 "KNO-RR-2,KNO-2,20/05/2024,lcspr,,\r\n")
PRACTICE_REVIEWS = ("review_id,notification_id,review_type,decision_date,author,methodology,completed_date,"
                    "final_report_sent_date,published_date,status\r\n"
                    "KNO-PR-1,KNO-1,lcspr,01/06/2024,,,,,,in_progress\r\n"
                    "KNO-PR-2,KNO-2,lcspr,03/06/2024,Dr Unlisted,,,,,in_progress\r\n"
                    f"KNO-PR-3,KNO-2,lcspr,04/06/2024,{APPROVED},,,,,in_progress\r\n"
                    "KNO-PR-4,KNO-2,lcspr,sometime,,,,,,in_progress\r\n")  # no decision date: rejected


@pytest.mark.parametrize("url", ["sqlite_url", pytest.param("postgres_url", marks=pytest.mark.postgres)])
def test_flagged_rows_are_loaded_recorded_and_reported(url, request, dagbag, tmp_path, monkeypatch):
    config = write_config(tmp_path, {"knowsley": {}})
    env = prepare(monkeypatch, tmp_path, request.getfixturevalue(url), config)
    kno = env.inbox / "knowsley"
    kno.mkdir()
    for name, text in (("notifications", NOTIFICATIONS), ("rapid_reviews", RAPID_REVIEWS),
                       ("practice_reviews", PRACTICE_REVIEWS)):
        (kno / f"{name}_2024-07-10.csv").write_text(text, encoding="utf-8")

    run_returns(dagbag, AS_OF)

    # Counts: every flagged row is a loaded row; rows_read = rows_loaded + rows_quarantined still holds.
    files = {f["file_name"]: f for f in env.rows("select * from return_files")}
    assert {n: (f["status"], f["rows_read"], f["rows_loaded"], f["rows_quarantined"], f["rows_flagged"])
            for n, f in files.items()} == {
        "notifications_2024-07-10.csv": ("loaded", 2, 2, 0, 0),
        "rapid_reviews_2024-07-10.csv": ("loaded", 2, 2, 0, 1),
        "practice_reviews_2024-07-10.csv": ("partial", 4, 3, 1, 2)}

    # Loaded and monitored: the LCSPRs are in the case table (the unapproved author held blank), the
    # rapid review too, its completed_date blank.
    reviews = {r["review_id"]: r for r in env.rows("select review_id, author, decision_date from practice_reviews")}
    assert sorted(reviews) == ["KNO-PR-1", "KNO-PR-2", "KNO-PR-3"]
    assert (reviews["KNO-PR-1"]["author"], reviews["KNO-PR-2"]["author"], reviews["KNO-PR-3"]["author"]) == (
        None, None, APPROVED)
    assert str(reviews["KNO-PR-2"]["decision_date"])[:10] == "2024-06-03"
    rapid = {r["rapid_review_id"]: r["completed_date"] for r in env.rows("select * from rapid_reviews")}
    assert rapid["KNO-RR-1"] is None and str(rapid["KNO-RR-2"])[:10] == "2024-05-20"

    # row_flags: one row per loaded row and rule, the original text quoted, the cells it blanked.
    flags = env.rows("select dataset, record_id, file_name, row_number, rule_id, columns, blanked, original_text, "
                     "message, superseded_by_file_id from row_flags order by dataset, record_id")
    assert [(f["record_id"], f["row_number"], f["rule_id"], f["columns"], f["blanked"], f["original_text"])
            for f in flags] == [
        ("KNO-PR-1", 2, "author_needed", "author", 0, None),
        ("KNO-PR-2", 3, "approved_author", "author", 1, "'Dr Unlisted'"),
        ("KNO-RR-1", 2, "date:completed_date", "completed_date", 1, "'n/a'")]
    assert all(f["superseded_by_file_id"] is None for f in flags)
    assert flags[2]["message"] == "completed_date 'n/a' is not a date (day/month/year or YYYY-MM-DD)"
    [q] = env.rows("select record_id, failed_rules from quarantine")
    assert q["record_id"] == "KNO-PR-4" and q["failed_rules"].splitlines()[0] == "date:decision_date"

    # The quality report lists them, beside the rejected row, with what the business unit does meanwhile.
    [report] = env.rows("select path from bulletins where audience = 'quality:knowsley'")
    html = Path(report["path"]).read_text(encoding="utf-8")
    text = Path(report["path"]).with_suffix(".txt").read_text(encoding="utf-8")
    for doc in (html, text):
        assert "(3 of them with a value to correct)" in doc
        rejected, flagged = doc.split("Loaded, but please correct", 1)
        assert "KNO-PR-4" in rejected and "KNO-PR-4" not in flagged
        for rid in ("KNO-PR-1", "KNO-PR-2", "KNO-RR-1"):
            assert rid in flagged, rid
        assert "its rapid review is judged" in flagged and "n/a" in flagged and "Dr Unlisted" in flagged
        assert "KNO-CHILD-FLAG" not in doc
    [mail] = [m for m in env.outbox() if m["To"] == "safeguarding.data@knowsley.gov.uk"]
    assert mail["Subject"] == "Data quality report: Knowsley return of 10 July 2024"

    # The status page counts them beside the rejected rows.
    from reviews.core import warehouse as wh
    from reviews.core.config import load_config
    from reviews.status.dashboard import build_dashboard

    engine = wh.make_engine(env.url)
    try:
        dashboard = build_dashboard(engine, load_config(config), AS_OF)
    finally:
        engine.dispose()
    [knowsley] = [p for p in dashboard.partnerships if p.code == "knowsley"]
    assert (knowsley.last_return_rows_loaded, knowsley.last_return_rows_quarantined,
            knowsley.last_return_rows_flagged, knowsley.open_flags) == (7, 1, 3, 3)
    assert "KNO-CHILD-FLAG" not in env.every_table_text()
