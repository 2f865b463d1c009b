"""statutory_timeliness through Airflow (`dag.test()`) writes the case journeys of its as-of date
and the business unit's dated XLSX tracker; a rerun leaves both the same.

A warehouse written by hand, as of Friday 21 June 2024 (alerts off: this is about the journeys):
  KNO-N-0001  aware Tue 18 Jun, not notified: notification due Tue 25 Jun (2 working days left)
  SEF-N-0001  aware 2 Apr, notified 4 Apr; rapid review SEF-RR-0001 sent 19 Apr chose an LCSPR,
              the Panel responded Tue 30 Apr; no LCSPR record 37 working days later: a finding
  SEF-R-001   an LCSPR decided 20 Dec 2023, due 20 Jun 2024, not done: overdue; it has no
              notification (so no rapid review): a finding
"""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
import sqlalchemy as sa

from reviews.core import warehouse as wh

pytestmark = pytest.mark.slow

AS_OF = date(2024, 6, 21)
LOADED = datetime(2024, 6, 20, 12, 0, tzinfo=timezone.utc)


def _lineage(i: int) -> dict:
    return {"return_date": date(2024, 6, 20), "source_file_id": 1, "source_row": i + 2, "row_hash": f"{i:064d}",
            "loaded_at": LOADED}


def _build(url: str) -> None:
    engine = wh.make_engine(url)
    wh.ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(wh.notifications), [
            {"partnership_code": code, "notification_id": nid, "child_key": "c" * 64, "incident_date": aware,
             "aware_date": aware, "notified_date": notified, "incident_type": "serious_harm", **_lineage(i)}
            for i, (code, nid, aware, notified) in enumerate([
                ("knowsley", "KNO-N-0001", date(2024, 6, 18), None),
                ("sefton", "SEF-N-0001", date(2024, 4, 2), date(2024, 4, 4))])])
        conn.execute(sa.insert(wh.rapid_reviews), [
            {"partnership_code": "sefton", "rapid_review_id": "SEF-RR-0001", "notification_id": "SEF-N-0001",
             "completed_date": date(2024, 4, 19), "outcome": "lcspr", "panel_response_date": date(2024, 4, 30),
             "panel_decision": "agree", **_lineage(0)}])
        conn.execute(sa.insert(wh.practice_reviews), [
            {"partnership_code": "sefton", "review_id": "SEF-R-001", "review_type": "lcspr",
             "decision_date": date(2023, 12, 20), "status": "in_progress", **_lineage(1)}])
    engine.dispose()


def _run(dagbag, day: date):
    dag = dagbag.get_dag("statutory_timeliness")
    dr = dag.test(logical_date=datetime(day.year, day.month, day.day, tzinfo=timezone.utc),
                  run_conf={"send_alerts": False})
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert dr.state == "success" and states == {"judge": "success", "alert": "success", "journeys": "success", "remind_actions": "success"}, states


def _journeys(url: str) -> list[dict]:
    engine = wh.make_engine(url)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.select(wh.case_journeys).order_by(
            wh.case_journeys.c.partnership_code, wh.case_journeys.c.notification_id)).mappings()]
    engine.dispose()
    return rows


def test_the_dag_writes_case_journeys_and_the_dated_tracker(own_dagbag, tmp_path, monkeypatch):
    from openpyxl import load_workbook

    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    _build(url)
    data = tmp_path / "data"
    monkeypatch.setenv("AIRFLOW_CONN_REVIEWS_WAREHOUSE", url)
    monkeypatch.setenv("AIRFLOW_VAR_REVIEWS_DATA_DIR", str(data))
    monkeypatch.delenv("AIRFLOW_CONN_REVIEWS_SMTP", raising=False)

    _run(own_dagbag, AS_OF)
    rows = _journeys(url)
    by_case = {(r["partnership_code"], r["notification_id"]): r for r in rows}
    assert set(by_case) == {("knowsley", "KNO-N-0001"), ("sefton", "SEF-N-0001"), ("sefton", "SEF-R-001")}
    assert {r["as_of_date"] for r in rows} == {AS_OF}
    kno = by_case[("knowsley", "KNO-N-0001")]
    assert (kno["current_stage"], kno["next_due_date"], kno["working_days_left"]) == ("notification", date(2024, 6, 25), 2)
    assert kno["current_status"] in ("open_at_risk", "open_on_track")  # the at-risk window is per stage config
    assert by_case[("sefton", "SEF-N-0001")]["findings"].startswith("lcspr_missing: rapid review SEF-RR-0001")
    assert by_case[("sefton", "SEF-R-001")]["findings"].startswith("no_rapid_review: LCSPR SEF-R-001")
    xlsx = data / "tracker" / "case_tracker_2024-06-21.xlsx"
    first_bytes = xlsx.read_bytes()
    sheet = load_workbook(xlsx)["Cases"]
    # due first: the LCSPR (due 20 Jun, overdue), the notification (25 Jun), then nothing dated
    assert [sheet.cell(r, 2).value for r in range(4, 7)] == ["SEF-R-001", "KNO-N-0001", "SEF-N-0001"]
    assert "c" * 16 not in str([[c.value for c in row] for row in sheet.iter_rows()])

    _run(own_dagbag, AS_OF)  # a rerun: the same partition, the same workbook
    assert _journeys(url) == rows
    assert xlsx.read_bytes() == first_bytes
