"""One whole regional cycle through Airflow itself (`dag.test()`), on SQLite and on PostgreSQL.

Synthetic returns for the five partnerships plus a hand-written Knowsley return whose
timeliness was worked out by hand go through the four DAGs; the tests assert on what landed.
"""
from __future__ import annotations

import email
import json
import os
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from reviews_dev.signoff import Answerer
import sqlalchemy as sa

from reviews.core import warehouse as wh
from reviews_dev.synthetic import generate_returns

pytestmark = pytest.mark.slow

AS_OF = date(2026, 10, 31)
SUMMARY_RUN = date(2026, 10, 1)  # builds July to September 2026 (every return is in by 10 October)
KEY = "test-key-for-pseudonymisation-0123456789"

# Easter 2024: Good Friday 29 March and Easter Monday 1 April are bank holidays.
# Aware Thursday 28 March: day 0; +5 working days = Monday 8 April; +15 = Monday 22 April.
HAND_NOTIFICATIONS = (
    "notification_id,child_ref,incident_date,aware_date,notified_date,incident_type,age_years,sex,"
    "ethnicity,disability,looked_after,cp_plan,cin_plan,known_to_csc\r\n"
    "KNO-HAND-1,HAND-CHILD-1,27/03/2024,28/03/2024,08/04/2024,death,0,female,,N,N,N,N,Y\r\n"
    "KNO-HAND-2,HAND-CHILD-2,27/03/2024,28/03/2024,09/04/2024,serious_harm,4,male,,N,N,Y,N,Y\r\n"
    "KNO-HAND-3,HAND-CHILD-3,27/03/2024,10/04/2024,03/04/2024,serious_harm,4,male,,N,N,Y,N,Y\r\n"
)
HAND_RAPID_REVIEWS = (
    "rapid_review_id,notification_id,completed_date,outcome,panel_response_date,panel_decision\r\n"
    "KNO-HAND-RR-1,KNO-HAND-1,22/04/2024,lcspr,,\r\n"
    "KNO-HAND-RR-2,KNO-HAND-2,23/04/2024,no_further_review,,\r\n"
)


@dataclass
class Cycle:
    url: str
    data_dir: Path
    inbox: Path
    generated: object

    def engine(self):
        return wh.make_engine(self.url)

    def scalar(self, sql: str, **params):
        with self.engine().connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    def rows(self, sql: str, **params):
        with self.engine().connect() as conn:
            return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]


def _midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=timezone.utc)


def run_dag(dagbag, dag_id: str, day: date, **kwargs):
    dag = dagbag.get_dag(dag_id)
    with Answerer():  # the business unit approves the bulletins' sign-off request
        dr = dag.test(logical_date=_midnight(day), **kwargs)
    states = {(ti.task_id, ti.map_index): ti.state for ti in dr.get_task_instances()}
    return dr, states


# Skipped by design when all goes well: circulation's way round the sign-off (nothing new to ask).
BRANCHES_NOT_TAKEN = {("resume_sends", -1)}


def assert_succeeded(dr, states):
    failed = {k: v for k, v in states.items() if v != "success" and not (k in BRANCHES_NOT_TAKEN and v == "skipped")}
    assert dr.state == "success" and not failed, f"{dr.dag_id}: {failed}"


def _prepare(tmp_path: Path, url: str, monkeypatch, smtp=None) -> Cycle:
    from reviews.core.config import load_config

    data_dir = tmp_path / "data"
    inbox = data_dir / "inbox"
    generated = generate_returns(inbox, load_config(), start=date(2023, 10, 1), end=date(2026, 10, 31), seed=7, inflate=10)
    (inbox / "knowsley" / "notifications_2024-04-30.csv").write_text(HAND_NOTIFICATIONS, encoding="utf-8")
    (inbox / "knowsley" / "rapid_reviews_2024-04-30.csv").write_text(HAND_RAPID_REVIEWS, encoding="utf-8")
    monkeypatch.setenv("AIRFLOW_CONN_REVIEWS_WAREHOUSE", url.replace("postgresql+psycopg2://", "postgresql://"))
    monkeypatch.setenv("AIRFLOW_VAR_REVIEWS_INBOX", str(inbox))
    monkeypatch.setenv("AIRFLOW_VAR_REVIEWS_DATA_DIR", str(data_dir))
    monkeypatch.setenv("REVIEWS_PSEUDONYMISATION_KEY", KEY)
    if smtp is not None:
        monkeypatch.setenv(
            "AIRFLOW_CONN_REVIEWS_SMTP",
            json.dumps({"conn_type": "smtp", "host": smtp.host, "port": smtp.port, "login": smtp.user,
                        "password": smtp.password, "extra": {"security": "none", "timeout": 10}}),
        )
    else:
        monkeypatch.delenv("AIRFLOW_CONN_REVIEWS_SMTP", raising=False)
    return Cycle(url, data_dir, inbox, generated)


def _run_cycle(dagbag, cycle: Cycle, again: bool = False) -> None:
    for dag_id, day in [
        ("partnership_returns", AS_OF),
        ("statutory_timeliness", AS_OF),
        ("regional_learning_summary", SUMMARY_RUN),
        ("bulletin_circulation", AS_OF),
    ]:
        dr, states = run_dag(dagbag, dag_id, day)
        if dag_id == "bulletin_circulation" and again:
            assert_nothing_asked(dr, states)
        else:
            assert_succeeded(dr, states)


def assert_nothing_asked(dr, states):
    """Circulation run again: everything was approved and sent, so nothing is asked or sent."""
    assert dr.state == "success", states
    assert {k: v for k, v in states.items() if v != "skipped"} == {("plan_signoff", -1): "success",
                                                                  ("ask_or_send", -1): "success"}, states


def _check_loaded(cycle: Cycle, cfg) -> None:
    # Every file the generator wrote, plus the two hand-written ones, is recorded once.
    expected_files = len(cycle.generated.files) + 2
    assert cycle.scalar("select count(*) from return_files") == expected_files
    # rows_read = rows_loaded + rows_quarantined for every file.
    assert cycle.scalar("select count(*) from return_files where rows_read != rows_loaded + rows_quarantined") == 0
    for code in cfg.partnerships:
        generated_rows = sum(cycle.generated.rows[code].values()) + (5 if code == "knowsley" else 0)
        read = cycle.scalar("select sum(rows_read) from return_files where partnership_code = :c", c=code)
        assert read == generated_rows, code
        assert cycle.scalar("select count(*) from notifications where partnership_code = :c", c=code) > 10
    # Quarantine (rules of severity `reject`) and row_flags (`flag`: loaded) hold each kind of injected
    # fault, in plain words.
    reasons = "\n".join([r["failed_checks"] for r in cycle.rows("select failed_checks from quarantine")]
                        + [r["message"] for r in cycle.rows("select message from row_flags")])
    for phrase in ("is after notified_date", "is blank (it is required)", "incident_type 'accident' is not one of",
                   "appears more than once in this file", "is not a known learning theme", "is not a date",
                   "is not a whole number of years from 0 to 17"):
        assert phrase in reasons, phrase
    # Dates in the wrong order are a flag: the row is loaded, both dates kept, the flag recorded.
    assert cycle.rows("select * from quarantine where record_id = 'KNO-HAND-3'") == []
    hand = cycle.rows("select row_number, message, file_name, original_text from row_flags "
                      "where record_id = 'KNO-HAND-3'")
    assert hand == [{"row_number": 4, "message": "aware_date 10/04/2024 is after notified_date 03/04/2024",
                     "file_name": "notifications_2024-04-30.csv",
                     "original_text": "aware_date '10/04/2024', notified_date '03/04/2024'"}]
    # Dropped columns are recorded by name; their values and raw child references are nowhere.
    dropped = cycle.scalar("select count(*) from return_files where dropped_columns is not null")
    assert dropped >= 1
    assert cycle.scalar("select count(*) from notifications where child_key like 'HAND%'") == 0


def _check_timeliness(cycle: Cycle) -> None:
    rows = {
        (r["record_id"], r["stage"]): r
        for r in cycle.rows("select * from timeliness where as_of_date = :d and record_id like 'KNO-HAND-%'", d=AS_OF)
    }
    n1, n2 = rows[("KNO-HAND-1", "notification")], rows[("KNO-HAND-2", "notification")]
    assert (str(n1["due_date"])[:10], n1["status"], n1["working_days_taken"]) == ("2024-04-08", "met", 5)
    assert (str(n2["due_date"])[:10], n2["status"], n2["working_days_taken"]) == ("2024-04-08", "late", 6)
    r1, r2 = rows[("KNO-HAND-1", "rapid_review")], rows[("KNO-HAND-2", "rapid_review")]
    assert (str(r1["due_date"])[:10], r1["status"]) == ("2024-04-22", "met")
    assert (str(r2["due_date"])[:10], r2["status"]) == ("2024-04-22", "late")
    # Loaded with its dates in the wrong order (a flag): judged `unknown`, never met or late on a guess.
    assert rows[("KNO-HAND-3", "notification")]["status"] == "unknown"
    statuses = {r["status"] for r in cycle.rows("select distinct status from timeliness where as_of_date = :d", d=AS_OF)}
    assert {"met", "late"} <= statuses


def _check_bulletins(cycle: Cycle, cfg) -> list[dict]:
    # Feedback from partnership_returns ('quality:{code}', 'returns:{code}') shares the table and the
    # ledger; this checks the learning bulletins and returns every send (for the outbox/SMTP counts).
    built = cycle.rows("select * from bulletins where audience not like '%:%' order by bulletin_id")
    assert [b["audience"] for b in built] == ["region", *cfg.partnerships]
    assert {(str(b["period_start"])[:10], str(b["period_end"])[:10]) for b in built} == {("2026-07-01", "2026-09-30")}
    html = Path(built[0]["path"]).read_text()
    assert "<img" in html and 'alt=""' not in html
    all_sends = cycle.rows("select * from circulation_log")
    sends = [s for s in all_sends if s["bulletin_id"] in {b["bulletin_id"] for b in built}]
    expected = {(b["bulletin_id"], r) for b in built for r in _recipients(cfg, b["audience"])}
    assert {(s["bulletin_id"], s["recipient"]) for s in sends} == expected
    assert {s["status"] for s in all_sends} == {"sent"}
    return all_sends


def _alert_emails(cycle: Cycle) -> int:
    """Timeliness alert emails to the business unit (statutory_timeliness; ledger timeliness_alerts)."""
    return cycle.scalar("select count(distinct message_ref) from timeliness_alerts where send_status = 'sent'")


def _reminder_recipients(cycle: Cycle) -> list[str]:
    """The addresses of each action reminder email (statutory_timeliness.remind_actions; ledger
    action_reminders: one email per partnership and run, every action it listed on its row)."""
    emails = cycle.rows("select distinct message_ref, recipients from action_reminders where send_status = 'sent'")
    return [r for e in emails for r in e["recipients"].splitlines()]


def _recipients(cfg, audience: str) -> set[str]:
    if audience == "region":
        return {r for p in cfg.partnerships.values() for r in p.distribution} | set(cfg.business_unit_email)
    return set(cfg.partnership(audience).distribution)


def test_cycle_on_sqlite_with_outbox(dagbag, tmp_path, sqlite_url, monkeypatch, cfg):
    cycle = _prepare(tmp_path, sqlite_url, monkeypatch)
    _run_cycle(dagbag, cycle)
    _check_loaded(cycle, cfg)
    _check_timeliness(cycle)
    sends = _check_bulletins(cycle, cfg)
    outbox = sorted((cycle.data_dir / "outbox").glob("*.eml"))
    assert _alert_emails(cycle) == 1  # one statutory_timeliness run with cases at risk or overdue
    reminders = cycle.scalar("select count(distinct message_ref) from action_reminders where send_status = 'sent'")
    assert reminders >= 1  # the synthetic returns have actions overdue and due soon
    assert len(outbox) == len(sends) + _alert_emails(cycle) + reminders
    first = email.message_from_bytes(outbox[0].read_bytes())
    assert first["Subject"] and first.is_multipart()

    # A rerun of every DAG changes nothing and sends nothing again.
    before = {t: cycle.scalar(f"select count(*) from {t}") for t in ("return_files", "quarantine", "notifications", "timeliness", "bulletins", "circulation_log")}
    _run_cycle(dagbag, cycle, again=True)
    after = {t: cycle.scalar(f"select count(*) from {t}") for t in before}
    assert after == before
    assert len(sorted((cycle.data_dir / "outbox").glob("*.eml"))) == len(outbox)


@pytest.mark.postgres
def test_cycle_on_postgres_with_smtp(dagbag, tmp_path, postgres_url, monkeypatch, cfg, smtp_server):
    cycle = _prepare(tmp_path, postgres_url, monkeypatch, smtp=smtp_server)
    _run_cycle(dagbag, cycle)
    _check_loaded(cycle, cfg)
    _check_timeliness(cycle)
    sends = _check_bulletins(cycle, cfg)
    received = smtp_server.handler.messages
    alerts = list(cfg.business_unit_email) * _alert_emails(cycle)
    assert sorted(r for m in received for r in m.rcpt_tos) == sorted(
        [s["recipient"] for s in sends] + alerts + _reminder_recipients(cycle))
    # Nothing is sent twice when circulation runs again.
    assert_nothing_asked(*run_dag(dagbag, "bulletin_circulation", AS_OF))
    assert len(smtp_server.handler.messages) == len(received)
    assert os.environ["AIRFLOW_CONN_REVIEWS_WAREHOUSE"].startswith("postgresql://")
