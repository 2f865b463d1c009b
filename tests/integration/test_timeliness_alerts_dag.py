"""statutory_timeliness through Airflow (`dag.test()`): identical partitions on rerun, and the
business unit's alert emails, once per case and status change.

A small warehouse is written by hand (no returns to ingest), so each date and status below was
worked out on paper. The at-risk windows are the project's: notification 2, rapid review 3
working days (LCSPR 20).

  KNO-N-0001  aware Tue 18 Jun 2024, not notified: notification due Tue 25 Jun.
              as of Fri 21 Jun: at risk (2 working days left); as of Wed 26 Jun: overdue (by 1).
  KNO-N-0002  aware Mon 3 Jun, notified Wed 5 Jun, rapid review Thu 20 Jun: both met.
  WIR-N-0001  aware Mon 10 Jun, notified Wed 12 Jun; no rapid review: due Mon 1 Jul.
              as of 21 Jun on track; as of 26 Jun at risk (3 working days left).
  SEF-R-001   LCSPR decided Wed 20 Dec 2023: due Thu 20 Jun 2024 (6 calendar months), not done:
              overdue as of 21 Jun.
  STH-N-0001  aware Tue 25 Jun: notification due Tue 2 Jul; on track as of Wed 26 Jun (4 working days
              left), at risk as of Fri 28 Jun (2 left: the notification's window).
"""
from __future__ import annotations

import email
from datetime import date, datetime, timezone
from email import policy
from pathlib import Path

import pytest
import sqlalchemy as sa

from reviews.core import warehouse as wh

pytestmark = pytest.mark.slow

D1, D2, D3 = date(2024, 6, 21), date(2024, 6, 26), date(2024, 6, 28)
LOADED = datetime(2024, 6, 20, 12, 0, tzinfo=timezone.utc)


def _lineage(i: int) -> dict:
    return {"return_date": date(2024, 6, 20), "source_file_id": 1, "source_row": i + 2, "row_hash": f"{i:064d}",
            "loaded_at": LOADED}


NOTIFICATIONS = [
    ("knowsley", "KNO-N-0001", date(2024, 6, 18), None),
    ("knowsley", "KNO-N-0002", date(2024, 6, 3), date(2024, 6, 5)),
    ("wirral", "WIR-N-0001", date(2024, 6, 10), date(2024, 6, 12)),
    ("st_helens", "STH-N-0001", date(2024, 6, 25), None),
]


def _build_warehouse(url: str) -> None:
    engine = wh.make_engine(url)
    wh.ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(wh.notifications), [
            {"partnership_code": code, "notification_id": nid, "child_key": "c" * 64, "incident_date": aware,
             "aware_date": aware, "notified_date": notified, "incident_type": "serious_harm", **_lineage(i)}
            for i, (code, nid, aware, notified) in enumerate(NOTIFICATIONS)
        ])
        conn.execute(sa.insert(wh.rapid_reviews), [
            {"partnership_code": "knowsley", "rapid_review_id": "KNO-RR-0002", "notification_id": "KNO-N-0002",
             "completed_date": date(2024, 6, 20), "outcome": "no_further_review", **_lineage(0)},
        ])
        conn.execute(sa.insert(wh.practice_reviews), [
            {"partnership_code": "sefton", "review_id": "SEF-R-001", "review_type": "lcspr",
             "decision_date": date(2023, 12, 20), "status": "in_progress", **_lineage(0)},
        ])
    engine.dispose()


def _partition(url: str, as_of: date) -> list[dict]:
    engine = wh.make_engine(url)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(
            sa.select(wh.timeliness).where(wh.timeliness.c.as_of_date == as_of)
            .order_by(wh.timeliness.c.partnership_code, wh.timeliness.c.stage, wh.timeliness.c.record_id)).mappings()]
    engine.dispose()
    return rows


def _emails(outbox: Path) -> dict[str, email.message.EmailMessage]:
    return {p.name: email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in outbox.glob("*.eml")}


def _run(dagbag, day: date, **kwargs):
    dag = dagbag.get_dag("statutory_timeliness")
    dr = dag.test(logical_date=datetime(day.year, day.month, day.day, tzinfo=timezone.utc), **kwargs)
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert dr.state == "success" and set(states.values()) == {"success"}, states
    return dr


def test_reruns_are_identical_and_each_change_is_alerted_once(own_dagbag, tmp_path, monkeypatch, cfg):
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    _build_warehouse(url)
    monkeypatch.setenv("AIRFLOW_CONN_REVIEWS_WAREHOUSE", url)
    monkeypatch.setenv("AIRFLOW_VAR_REVIEWS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("AIRFLOW_CONN_REVIEWS_SMTP", raising=False)
    outbox = tmp_path / "data" / "outbox"

    # D1: one email, listing the Knowsley notification (at risk) and the Sefton LCSPR (overdue).
    _run(own_dagbag, D1)
    first = _partition(url, D1)
    by_case = {(r["record_id"], r["stage"]): r["status"] for r in first}
    assert by_case[("KNO-N-0001", "notification")] == "open_at_risk"
    assert by_case[("SEF-R-001", "lcspr_completion")] == "open_overdue"
    assert by_case[("WIR-N-0001", "rapid_review")] == "open_on_track"
    assert ("STH-N-0001", "notification") not in by_case  # aware after D1: not begun
    emails = _emails(outbox)
    assert len(emails) == 1
    [alert] = emails.values()
    text = alert.get_body(("plain",)).get_content()
    assert alert["To"] == ", ".join(cfg.business_unit_email) and alert["From"] == cfg.sender
    assert "as of 21 June 2024: 1 now overdue, 1 now at risk" in alert["Subject"]
    assert "KNO-N-0001" in text and "2 working days left" in text and "25 June 2024" in text
    assert "SEF-R-001" in text and "overdue by 1 working day" in text and "20 June 2024" in text
    assert "WIR-N-0001" not in text and "KNO-N-0002" not in text and "c" * 16 not in text

    # D1 again: identical partition, no email.
    _run(own_dagbag, D1)
    assert _partition(url, D1) == first
    assert len(_emails(outbox)) == 1

    # D2: the Knowsley notification became overdue, Wirral's rapid review at risk: one more email.
    _run(own_dagbag, D2)
    emails = _emails(outbox)
    assert len(emails) == 2
    [new] = [m for name, m in emails.items() if m["Subject"] != alert["Subject"]]
    text = new.get_body(("plain",)).get_content()
    assert "as of 26 June 2024: 1 now overdue, 1 now at risk" in new["Subject"]
    assert "KNO-N-0001" in text and "overdue by 1 working day" in text
    assert "WIR-N-0001" in text and "Rapid review" in text and "3 working days left" in text
    assert "SEF-R-001" not in text  # still overdue: told on D1

    # D3 with alerts switched off in the run conf (as a backfill would be): judged, nobody told, and
    # nothing recorded, so a later ordinary run still tells about St Helens.
    _run(own_dagbag, D3, run_conf={"send_alerts": False})
    assert any(r["record_id"] == "STH-N-0001" and r["status"] == "open_at_risk" for r in _partition(url, D3))
    assert len(_emails(outbox)) == 2
    engine = wh.make_engine(url)
    with engine.connect() as conn:
        ledger = conn.execute(sa.select(wh.timeliness_alerts.c.record_id, wh.timeliness_alerts.c.status,
                                        wh.timeliness_alerts.c.send_status, wh.timeliness_alerts.c.first_seen_as_of)
                              .order_by(wh.timeliness_alerts.c.alert_id)).all()
    engine.dispose()
    assert [tuple(r) for r in ledger] == [
        ("KNO-N-0001", "open_at_risk", "sent", D1), ("SEF-R-001", "open_overdue", "sent", D1),
        ("KNO-N-0001", "open_overdue", "sent", D2), ("WIR-N-0001", "open_at_risk", "sent", D2),
    ]

    # D1 once more, after later runs (as a rerun a year on would be): still the same rows, no email.
    _run(own_dagbag, D1)
    assert _partition(url, D1) == first
    assert len(_emails(outbox)) == 2
