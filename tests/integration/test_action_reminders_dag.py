"""statutory_timeliness's remind_actions through Airflow (`dag.test()`), to a real SMTP server on
localhost (aiosmtpd): each reminder and overdue notice arrives once, across a rerun, a run about a
later day and one about an earlier day; the registers are written per partnership.

Hand-made learning rows (reminders 10 working days ahead, the config's default):
  KNO-F-1  due Thu 20 Jun 2024, open         as of Fri 21 Jun: overdue
  KNO-F-2  due Fri 5 Jul, in progress        as of 21 Jun: due soon (10 working days); as of 8 Jul: overdue
  SEF-F-1  due Mon 8 Jul, open               as of 21 Jun: nothing (11); as of 8 Jul: due soon (due today)
  SEF-F-2  due Mon 3 Jun, completed 31 May   never
"""
from __future__ import annotations

import json
from datetime import date, datetime, timezone

import pytest
import sqlalchemy as sa

from reviews.core import warehouse as wh
from tests.smtp_fixtures import AIOSMTPD_WARNING, smtp_server  # noqa: F401

pytestmark = [pytest.mark.slow, AIOSMTPD_WARNING]

LOADED = datetime(2024, 6, 20, 12, 0, tzinfo=timezone.utc)
SECRET = "Finding about the child Jamie at home"
ROWS = [
    ("knowsley", "KNO-F-1", "Merseyside Police", date(2024, 6, 20), "open", None),
    ("knowsley", "KNO-F-2", "Health", date(2024, 7, 5), "in_progress", None),
    ("sefton", "SEF-F-1", "Education", date(2024, 7, 8), "open", None),
    ("sefton", "SEF-F-2", "Education", date(2024, 6, 3), "completed", date(2024, 5, 31)),
]


def _lineage(i: int) -> dict:
    return {"return_date": date(2024, 6, 20), "source_file_id": 1, "source_row": i + 2, "row_hash": f"{i:064d}",
            "loaded_at": LOADED}


def _build(url: str) -> None:
    engine = wh.make_engine(url)
    wh.ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(wh.practice_reviews), [
            {"partnership_code": code, "review_id": f"{code[:3].upper()}-R-1", "review_type": "lcspr",
             "decision_date": date(2023, 6, 1), "completed_date": date(2024, 3, 1), "status": "completed",
             **_lineage(i)} for i, code in enumerate(("knowsley", "sefton"))])
        conn.execute(sa.insert(wh.learning), [
            {"partnership_code": code, "finding_id": fid, "review_id": f"{code[:3].upper()}-R-1",
             "theme": "information_sharing", "finding": SECRET, "recommendation": "Share records",
             "owner_agency": agency, "action_due_date": due, "action_status": status,
             "action_completed_date": done, **_lineage(i)}
            for i, (code, fid, agency, due, status, done) in enumerate(ROWS)])
    engine.dispose()


def _run(dagbag, day: date):
    dag = dagbag.get_dag("statutory_timeliness")
    dr = dag.test(logical_date=datetime(day.year, day.month, day.day, tzinfo=timezone.utc))
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert dr.state == "success" and set(states.values()) == {"success"}, states


def _told(messages) -> list[tuple[str, str, str]]:
    """(recipient, finding, group) for every action listed in the emails received so far."""
    out = []
    for m in messages:
        group = None
        for line in m.text.splitlines():
            if line.startswith(("Overdue (", "Due soon (")):
                group = line.split(" (")[0]
            elif line.startswith("- Finding "):
                out.append((m.rcpt_tos[0], line.split()[2], group))
    return sorted(out)


def test_each_reminder_arrives_once(dagbag, tmp_path, monkeypatch, smtp_server):  # noqa: F811
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    _build(url)
    data = tmp_path / "data"
    monkeypatch.setenv("AIRFLOW_CONN_REVIEWS_WAREHOUSE", url)
    monkeypatch.setenv("AIRFLOW_VAR_REVIEWS_DATA_DIR", str(data))
    monkeypatch.setenv("REVIEWS_SEND_BACKOFF_SECONDS", "0")
    monkeypatch.setenv("AIRFLOW_CONN_REVIEWS_SMTP", json.dumps({
        "conn_type": "smtp", "host": smtp_server.host, "port": smtp_server.port, "login": smtp_server.user,
        "password": smtp_server.password, "extra": {"security": "none", "timeout": 10}}))
    received = smtp_server.handler.messages

    _run(dagbag, date(2024, 6, 21))
    first = [("learning@knowsley.gov.uk", "KNO-F-1", "Overdue"), ("learning@knowsley.gov.uk", "KNO-F-2", "Due soon")]
    assert _told(received) == first
    for code in ("knowsley", "sefton", "wirral"):
        assert (data / "actions" / code / f"action_register_{code}_2024-06-21.xlsx").is_file()

    _run(dagbag, date(2024, 6, 21))  # a rerun: nothing new
    assert _told(received) == first

    _run(dagbag, date(2024, 7, 8))  # later: KNO-F-2 overdue, SEF-F-1 due today
    later = sorted(first + [("learning@knowsley.gov.uk", "KNO-F-2", "Overdue"),
                            ("lscp.learning@sefton.gov.uk", "SEF-F-1", "Due soon")])
    assert _told(received) == later
    assert len(received) == 3

    _run(dagbag, date(2024, 6, 14))  # an earlier day: KNO-F-1 was due soon then, but was told overdue
    _run(dagbag, date(2024, 7, 8))  # and that later day again
    assert _told(received) == later and len(received) == 3
    for m in received:
        assert SECRET not in m.text and SECRET not in m.html and "Share records" not in m.text
        assert str(m.message["Subject"]).strip().startswith("[reviews] ")
    engine = wh.make_engine(url)
    with engine.connect() as conn:
        ledger = conn.execute(sa.select(wh.action_reminders.c.finding_id, wh.action_reminders.c.state,
                                        wh.action_reminders.c.send_status)).all()
    engine.dispose()
    assert sorted(ledger) == sorted([("KNO-F-1", "overdue", "sent"), ("KNO-F-2", "due_soon", "sent"),
                                     ("KNO-F-2", "overdue", "sent"), ("SEF-F-1", "due_soon", "sent")])
