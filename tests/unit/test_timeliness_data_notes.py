"""Timeliness says what it does not know (issue 16, items 1 and 2), on a hand-made warehouse.

A stage that reads a cell a return got wrong (a current `row_flags` row: ingest loaded the cell
blank) is `unknown` with the flag's words, never met, late or overdue on a guess, and is never
alerted. A case alerted from older data, because the latest return row for it was rejected
(quarantined) or loaded with a flag on another cell, says so in the email, naming the file, the
row and the rule. Judged by `run_timeliness` and sent by `run_alerts` through a real SMTP server,
on SQLite and PostgreSQL.
"""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
import sqlalchemy as sa

from reviews.core import warehouse as wh
from reviews.core.mail import SmtpTransport
from reviews.timeliness.alerts import data_notes, run_alerts
from reviews.timeliness.run import run_timeliness
from tests.smtp_fixtures import AIOSMTPD_WARNING, smtp_server  # noqa: F401

AS_OF = date(2026, 10, 30)  # a Friday
NOW = datetime(2026, 10, 30, 8, 0, tzinfo=timezone.utc)
OLD, NEW, NEWER = 1, 2, 3  # file ids: returns of July, October and (for one case) a later restatement
FILES = {OLD: ("liverpool_2026-07-10.csv", date(2026, 7, 10)), NEW: ("liverpool_2026-10-10.csv", date(2026, 10, 10)),
         NEWER: ("liverpool_2026-10-20.csv", date(2026, 10, 20))}
N_DATE = "n/a' is not a date (day/month/year or YYYY-MM-DD)"


def clock():
    return NOW


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    engine = wh.make_engine(url)
    wh.ensure_schema(engine)
    _build(engine)
    yield engine
    engine.dispose()


def _lineage(file_id: int, row: int) -> dict:
    return {"return_date": FILES[file_id][1], "source_file_id": file_id, "source_row": row, "row_hash": f"{file_id}{row:063d}",
            "loaded_at": NOW}


def _note(nid: str, aware: date, notified: date | None, file_id: int = OLD, row: int = 2) -> dict:
    return {"partnership_code": "liverpool", "notification_id": nid, "child_key": "c" * 64,
            "incident_date": aware, "aware_date": aware, "notified_date": notified, "incident_type": "serious_harm",
            **_lineage(file_id, row)}


def _rapid(rid: str, nid: str, completed: date | None, file_id: int = OLD, row: int = 2) -> dict:
    return {"partnership_code": "liverpool", "rapid_review_id": rid, "notification_id": nid,
            "completed_date": completed, **_lineage(file_id, row)}


def _quarantine(file_id: int, dataset: str, row: int, record_id: str, column: str, resolved: int | None = None,
                raw: str | None = None) -> dict:
    return {"partnership_code": "liverpool", "dataset": dataset, "file_id": file_id, "file_name": FILES[file_id][0],
            "row_number": row, "record_id": record_id, "failed_checks": f"{column} '{N_DATE}",
            "failed_rules": f"date:{column}", "raw_values": raw or "{}", "quarantined_at": NOW,
            "resolved_by_file_id": resolved, "resolved_at": NOW if resolved else None}


def _flag(file_id: int, dataset: str, row: int, record_id: str, column: str) -> dict:
    return {"partnership_code": "liverpool", "dataset": dataset, "record_id": record_id, "file_id": file_id,
            "file_name": FILES[file_id][0], "row_number": row, "rule_id": f"date:{column}", "columns": column,
            "blanked": 1, "original_text": "'n/a'", "message": f"{column} '{N_DATE}", "flagged_at": NOW,
            "superseded_by_file_id": None}


def _build(engine) -> None:
    """Five Liverpool cases, all aware in 2024 and so long past their rapid review's 15 days:

    LIV-N-0065  its rapid review restated in October with completed_date 'n/a': rejected; the July row stands
    LIV-N-0066  the same, but the rejected row is older than the row that loaded (replaced): no note
    LIV-N-0067  a rejected October row that a later return resolved: no note
    LIV-N-0068  October's row loaded with notified_date 'n/a' flagged (blank): the notification is
                unknown; its rapid review (clock from aware_date) is still overdue, and says so
    LIV-N-0069  its rapid review's completed_date flagged blank in October: unknown, never alerted
    LIV-N-0070  a rapid review for it rejected, never loaded: overdue, and the note says why
    """
    aware = date(2024, 10, 1)
    with engine.begin() as conn:
        conn.execute(sa.insert(wh.return_files), [
            {"file_id": fid, "partnership_code": "liverpool", "file_name": name, "sha256": f"{fid:064d}",
             "size_bytes": 100, "return_date": when, "received_at": NOW, "raw_path": f"raw/{name}",
             "status": "partial"} for fid, (name, when) in FILES.items()])
        conn.execute(sa.insert(wh.notifications), [
            _note("LIV-N-0065", aware, date(2024, 10, 3)), _note("LIV-N-0066", aware, date(2024, 10, 3)),
            _note("LIV-N-0067", aware, date(2024, 10, 3)), _note("LIV-N-0068", aware, None, NEW, 20),
            _note("LIV-N-0069", aware, date(2024, 10, 3)), _note("LIV-N-0070", aware, date(2024, 10, 3))])
        conn.execute(sa.insert(wh.rapid_reviews), [
            _rapid("LIV-RR-0065", "LIV-N-0065", None), _rapid("LIV-RR-0066", "LIV-N-0066", None, NEW, 3),
            _rapid("LIV-RR-0067", "LIV-N-0067", None), _rapid("LIV-RR-0069", "LIV-N-0069", None, NEW, 9)])
        conn.execute(sa.insert(wh.quarantine), [
            _quarantine(NEW, "rapid_reviews", 14, "LIV-RR-0065", "completed_date"),
            _quarantine(OLD, "rapid_reviews", 5, "LIV-RR-0066", "completed_date"),
            _quarantine(NEW, "rapid_reviews", 6, "LIV-RR-0067", "completed_date", resolved=NEWER),
            _quarantine(NEW, "rapid_reviews", 8, "LIV-RR-0070", "completed_date",
                        raw='{"rapid_review_id": "LIV-RR-0070", "notification_id": "LIV-N-0070", "completed_date": "n/a"}'),
        ])
        conn.execute(sa.insert(wh.row_flags), [
            _flag(NEW, "notifications", 20, "LIV-N-0068", "notified_date"),
            _flag(NEW, "rapid_reviews", 9, "LIV-RR-0069", "completed_date"),
        ])


def _statuses(engine) -> dict[tuple[str, str], tuple[str, str | None]]:
    t = wh.timeliness.c
    with engine.connect() as conn:
        return {(r.stage, r.record_id): (r.status, r.reason) for r in conn.execute(
            sa.select(t.stage, t.record_id, t.status, t.reason).where(t.as_of_date == AS_OF))}


def test_a_flagged_cell_makes_its_stage_unknown_with_the_reason(engine, cfg):
    run_timeliness(engine, cfg, AS_OF)
    got = _statuses(engine)
    assert got[("rapid_review", "LIV-N-0069")] == (
        "unknown", f"return liverpool_2026-10-10.csv row 9: completed_date '{N_DATE}; judged unknown until corrected")
    assert got[("notification", "LIV-N-0068")] == (
        "unknown", f"return liverpool_2026-10-10.csv row 20: notified_date '{N_DATE}; judged unknown until corrected")
    # the other stage of the same case does not read notified_date: judged, overdue as it is
    assert got[("rapid_review", "LIV-N-0068")][0] == "open_overdue"
    # rejected rows change nothing in the judgement: the loaded (older) data is judged
    assert got[("rapid_review", "LIV-N-0065")] == ("open_overdue", None)


def test_notes_name_the_file_row_and_rule_of_the_latest_rejected_or_flagged_row(engine, cfg):
    run_timeliness(engine, cfg, AS_OF)
    rows = [{"partnership_code": "liverpool", "stage": "rapid_review", "record_id": f"LIV-N-00{n}"}
            for n in (65, 66, 67, 68, 70)]
    notes = data_notes(engine, rows)
    assert notes[("liverpool", "rapid_review", "LIV-N-0065")] == [
        "The latest rapid review row (liverpool_2026-10-10.csv, row 14) was rejected (rule: completed_date is not "
        f"a date): completed_date '{N_DATE}. This status is from the earlier return."]
    assert ("liverpool", "rapid_review", "LIV-N-0066") not in notes  # the rejected row is older than the loaded one
    assert ("liverpool", "rapid_review", "LIV-N-0067") not in notes  # resolved by a later return
    assert notes[("liverpool", "rapid_review", "LIV-N-0068")] == [
        "Its latest return row (liverpool_2026-10-10.csv, row 20) was loaded with a flag (rule: notified_date is "
        f"not a date): notified_date '{N_DATE}."]
    assert notes[("liverpool", "rapid_review", "LIV-N-0070")] == [
        "A rapid review row for this case (liverpool_2026-10-10.csv, row 8) was rejected (rule: completed_date is "
        f"not a date): completed_date '{N_DATE}. Until it is corrected, that rapid review is not counted."]


@AIOSMTPD_WARNING
def test_the_alert_email_says_what_it_does_not_know(engine, cfg, smtp_server):  # noqa: F811
    run_timeliness(engine, cfg, AS_OF)
    report = run_alerts(engine, cfg, SmtpTransport(smtp_server.settings()), AS_OF, clock=clock)
    assert report.ok and report.emails == 1
    [got] = smtp_server.handler.messages
    text, html = got.text, got.message.get_body(("html",)).get_content()
    lines = text.splitlines()
    # unknown is never alerted as overdue (nor at all): the flagged rapid review and notification
    assert "LIV-N-0069" not in text
    assert not any("LIV-N-0068" in ln and "Notification to the Panel" in ln for ln in lines)
    # the case alerted from the older data says its latest row was rejected, naming file, row and rule
    at = next(i for i, ln in enumerate(lines) if "case LIV-N-0065" in ln)
    assert "overdue by" in lines[at]
    assert lines[at + 1] == (
        "  Note: The latest rapid review row (liverpool_2026-10-10.csv, row 14) was rejected (rule: completed_date "
        f"is not a date): completed_date '{N_DATE}. This status is from the earlier return.")
    assert "LIV-N-0066" in text and not lines[next(i for i, ln in enumerate(lines) if "case LIV-N-0066" in ln) + 1].strip(
        ).startswith("Note:")
    assert "row 20) was loaded with a flag (rule: notified_date is not a date)" in text
    assert "row 8) was rejected (rule: completed_date is not a date)" in text
    assert "ask the partnership to correct and resend that row first" in text
    assert "<strong>Note on LIV-N-0065:</strong> The latest rapid review row (liverpool_2026-10-10.csv, row 14)" in html
    assert "c" * 32 not in text and "c" * 32 not in html  # no child key


def test_a_case_that_becomes_unknown_is_withdrawn_not_sent(engine, cfg):
    """An overdue alert not yet sent, then a flag on the date it hangs on: never told "overdue"."""
    run_timeliness(engine, cfg, AS_OF)

    class Down:
        name = "down"

        def send(self, sender, message):
            from reviews.core.mail import PermanentSendError
            raise PermanentSendError("SMTP 554 no")

    run_alerts(engine, cfg, Down(), AS_OF, clock=clock)
    with engine.begin() as conn:
        conn.execute(sa.insert(wh.row_flags), [_flag(NEW, "rapid_reviews", 3, "LIV-RR-0066", "completed_date")])
    run_timeliness(engine, cfg, AS_OF)
    assert _statuses(engine)[("rapid_review", "LIV-N-0066")][0] == "unknown"

    class Kept:
        name = "kept"
        sent: list = []

        def send(self, sender, message):
            self.sent.append(message)
            return "<ok@test>"

    kept = Kept()
    report = run_alerts(engine, cfg, kept, AS_OF, clock=clock)
    assert report.withdrawn == 1 and "LIV-N-0066" not in kept.sent[0].text
    with engine.connect() as conn:
        status, error = conn.execute(sa.select(wh.timeliness_alerts.c.send_status, wh.timeliness_alerts.c.error).where(
            wh.timeliness_alerts.c.record_id == "LIV-N-0066")).one()
    assert status == "withdrawn" and "the case is unknown" in error
