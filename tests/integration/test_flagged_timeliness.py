"""A flagged cell is judged `unknown`, never overdue on a guess, end to end (issue 16, items 1 and 2):
`partnership_returns` loads Knowsley's return (a rapid review whose completed_date is `n/a`, an LCSPR
with no author yet, an age out of range), then `statutory_timeliness` judges and alerts, both under
`dag.test()`, on SQLite and on PostgreSQL.

  KNO-1  aware 2 May 2024, its rapid review completed 'n/a': flagged, loaded blank. Without the
         flag it would be overdue (due 24 May); it is unknown, with the flag's words, and never alerted.
  KNO-2  aware 2 May 2024, no rapid review: overdue and alerted; its row's age (25) was flagged,
         and the alert says so under the case (file, row and rule).
  KNO-PR-1  an LCSPR decided 1 June 2024 with its author blank (reviewer not yet appointed):
         loaded and judged (open, due 1 December 2024), the author flag changing nothing.
  KNO-PR-2  a published LCSPR whose author is not on the approved list: loaded (author held blank,
         flagged) and judged on both stages, completion and publication notice (both met).
"""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from tests.integration.returns_support import prepare, run_returns, write_config

pytestmark = pytest.mark.slow

AS_OF = date(2024, 7, 31)
NOTIFICATIONS = ("notification_id,child_ref,incident_date,aware_date,notified_date,incident_type,age_years\r\n"
                 "KNO-1,KNO-CHILD-T-1,01/05/2024,02/05/2024,03/05/2024,death,4\r\n"
                 "KNO-2,KNO-CHILD-T-2,01/05/2024,02/05/2024,03/05/2024,serious_harm,25\r\n")
RAPID_REVIEWS = ("rapid_review_id,notification_id,completed_date,outcome,panel_response_date,panel_decision\r\n"
                 "KNO-RR-1,KNO-1,n/a,lcspr,,\r\n")
PRACTICE_REVIEWS = ("review_id,notification_id,review_type,decision_date,author,methodology,completed_date,"
                    "final_report_sent_date,published_date,status\r\n"
                    "KNO-PR-1,KNO-1,lcspr,01/06/2024,,,,,,in_progress\r\n"
                    "KNO-PR-2,KNO-2,lcspr,08/01/2024,Dr Unlisted,,20/06/2024,24/06/2024,08/07/2024,published\r\n")


@pytest.mark.parametrize("url", ["sqlite_url", pytest.param("postgres_url", marks=pytest.mark.postgres)])
def test_a_flagged_completion_is_unknown_and_never_alerted_as_overdue(url, request, dagbag, tmp_path, monkeypatch):
    config = write_config(tmp_path, {"knowsley": {}})
    env = prepare(monkeypatch, tmp_path, request.getfixturevalue(url), config)
    kno = env.inbox / "knowsley"
    kno.mkdir()
    for name, text in (("notifications", NOTIFICATIONS), ("rapid_reviews", RAPID_REVIEWS),
                       ("practice_reviews", PRACTICE_REVIEWS)):
        (kno / f"{name}_2024-07-10.csv").write_text(text, encoding="utf-8")
    run_returns(dagbag, AS_OF)
    assert {(f["record_id"], f["columns"]) for f in env.rows("select record_id, columns from row_flags")} >= {
        ("KNO-RR-1", "completed_date"), ("KNO-PR-1", "author"), ("KNO-PR-2", "author")}

    dag = dagbag.get_dag("statutory_timeliness")
    dr = dag.test(logical_date=datetime(AS_OF.year, AS_OF.month, AS_OF.day, tzinfo=timezone.utc))
    assert dr.state == "success", {ti.task_id: ti.state for ti in dr.get_task_instances()}

    judged = {(r["stage"], r["record_id"]): r for r in env.rows(
        "select stage, record_id, status, reason, due_date from timeliness where partnership_code = 'knowsley'")}
    kno1 = judged[("rapid_review", "KNO-1")]
    assert kno1["status"] == "unknown"
    assert kno1["reason"] == ("return rapid_reviews_2024-07-10.csv row 2: completed_date 'n/a' is not a date "
                              "(day/month/year or YYYY-MM-DD); judged unknown until corrected")
    assert judged[("rapid_review", "KNO-2")]["status"] == "open_overdue"
    lcspr = judged[("lcspr_completion", "KNO-PR-1")]
    assert lcspr["status"] == "open_on_track" and str(lcspr["due_date"])[:10] == "2024-12-01"
    # The unapproved author's LCSPR is judged on both its stages, the author flag changing neither:
    # completed 20 June, due 8 July (6 months from 8 January); report sent 24 June, 10 working days
    # before publication on 8 July (7 needed: the latest day to send it was 27 June).
    done = judged[("lcspr_completion", "KNO-PR-2")]
    assert (done["status"], str(done["due_date"])[:10], done["reason"]) == ("met", "2024-07-08", None)
    notice = judged[("publication_notice", "KNO-PR-2")]
    assert (notice["status"], str(notice["due_date"])[:10], notice["reason"]) == ("met", "2024-06-27", None)

    [alert] = [m for m in env.outbox() if "Statutory timeliness" in m["Subject"]]
    text = alert.get_body(("plain",)).get_content()
    assert "KNO-1" not in text  # unknown: not alerted, not as overdue, not at all
    lines = text.splitlines()
    at = next(i for i, ln in enumerate(lines) if "case KNO-2" in ln)
    assert "Rapid review" in lines[at] and "overdue by" in lines[at]
    assert lines[at + 1].startswith("  Note: Its latest return row (notifications_2024-07-10.csv, row 3) was loaded "
                                    "with a flag (rule: age_years is not a whole number from 0 to 17)")
    assert "KNO-CHILD" not in text and "KNO-CHILD" not in env.every_table_text()
