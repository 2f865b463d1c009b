"""The reporting views (reviews.core.views) on SQLite and PostgreSQL, and the analysts' extract.

A hand-made warehouse: every view is queried by its name with plain SQL, as an analyst would,
and its rows asserted; no view shows a child's key or free text; ensure_schema makes the views
once and remakes one that changed; sql/views.*.sql is what `make schema` writes and runs as it
is; the extract holds each view's rows, reads back with pandas, has the same bytes on a rerun
and is never attached to an email.
"""
from __future__ import annotations

import re

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from reviews.core import warehouse as wh
from reviews.core.views import NEVER_SHOWN, VIEWS, ensure_views, views_ddl

ROOT = Path(__file__).resolve().parents[2]
CHILD = "c" * 64  # every child_key here: a view showing it would show this
TODAY = date.today()
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")  # a date (or time) as SQLite gives it back: compared as its day


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    eng = wh.make_engine(url)
    wh.ensure_schema(eng)
    yield eng
    eng.dispose()


def _lineage(row: int) -> dict:
    return {"return_date": date(2024, 7, 10), "source_file_id": 1, "source_row": row, "row_hash": "0" * 64,
            "loaded_at": datetime(2024, 7, 10, 9, tzinfo=timezone.utc)}


def _rows(table: str, rows: list[dict]) -> list[dict]:
    return [{**r, **_lineage(i)} for i, r in enumerate(rows, 2)] if table in wh.CASE_TABLES else rows


def _notification(code, nid, aware):
    return {"partnership_code": code, "notification_id": nid, "child_key": CHILD, "incident_date": aware,
            "aware_date": aware, "notified_date": aware + timedelta(days=3), "incident_type": "serious_harm",
            "age_years": 4, "sex": "female", "ethnicity": "White British", "disability": "N", "looked_after": "N",
            "cp_plan": "Y", "cin_plan": "N", "known_to_csc": "Y"}


def _review(rid, nid, decided, completed=None, review_type="lcspr", status="in_progress"):
    return {"partnership_code": "knowsley", "review_id": rid, "notification_id": nid, "review_type": review_type,
            "decision_date": decided, "author": "Reviewer A", "methodology": "Systems approach",
            "completed_date": completed, "final_report_sent_date": None, "published_date": None, "status": status}


def _finding(fid, rid, theme, *, rec="Agree guidance.", due=None, status=None, done=None):
    return {"partnership_code": "knowsley", "finding_id": fid, "review_id": rid, "theme": theme,
            "finding": "Practice was inconsistent.", "recommendation": rec, "owner_agency": "health",
            "action_due_date": due, "action_status": status, "action_completed_date": done}


def _timeliness(stage, as_of, status, **extra):
    return {"partnership_code": "knowsley", "stage": stage, "record_id": "KNO-N1", "as_of_date": as_of,
            "start_date": date(2024, 4, 2), "due_date": date(2024, 4, 9), "completed_date": extra.get("done"),
            "working_days_taken": extra.get("days"), "status": status, "rule_set": "working_together_2023",
            "reason": "free text that no view shows"}


def _fill(engine) -> None:
    data = {
        "notifications": [_notification("knowsley", "KNO-N1", date(2024, 4, 2)),
                          _notification("knowsley", "KNO-N2", date(2024, 5, 7)),
                          _notification("sefton", "KNO-N1", date(2024, 6, 3))],  # same id, another partnership
        "rapid_reviews": [
            {"partnership_code": "knowsley", "rapid_review_id": "KNO-RR-A", "notification_id": "KNO-N1",
             "completed_date": None, "outcome": None, "panel_response_date": None, "panel_decision": None},
            {"partnership_code": "knowsley", "rapid_review_id": "KNO-RR-B", "notification_id": "KNO-N1",
             "completed_date": date(2024, 4, 20), "outcome": "lcspr", "panel_response_date": date(2024, 5, 1),
             "panel_decision": "agree"},
            {"partnership_code": "sefton", "rapid_review_id": "SEF-RR-1", "notification_id": "KNO-N1",
             "completed_date": date(2024, 6, 20), "outcome": "no_further_review", "panel_response_date": None,
             "panel_decision": None},
        ],
        "practice_reviews": [
            _review("KNO-R2", "KNO-N1", date(2024, 6, 1)),
            _review("KNO-R1", "KNO-N1", date(2024, 5, 1), completed=date(2024, 5, 15), status="completed"),
            _review("KNO-R0", None, date(2024, 2, 10)),  # no notification: in no journey
            _review("KNO-R3", None, date(2024, 9, 1), completed=date(2025, 1, 20), review_type="national",
                    status="completed"),
        ],
        "learning": [
            _finding("KNO-F1", "KNO-R1", "neglect", due=date(2000, 1, 1), status="open"),
            _finding("KNO-F2", "KNO-R1", "neglect", due=date(2000, 1, 1), status="completed", done=date(2001, 1, 1)),
            _finding("KNO-F3", "KNO-R0", "voice_of_child", rec="  "),  # no recommendation, no action
            _finding("KNO-F4", "KNO-R1", "neglect", due=date(2999, 12, 31), status="in_progress"),
            _finding("KNO-F5", "KNO-R3", "domestic_abuse", status="open"),
        ],
    }
    received = datetime(2024, 7, 10, 9, tzinfo=timezone.utc)
    with engine.begin() as conn:
        for table, rows in data.items():
            conn.execute(sa.insert(wh.CASE_TABLES[table]), _rows(table, rows))
        conn.execute(sa.insert(wh.return_files), [
            {"file_id": 1, "partnership_code": "knowsley", "file_name": "notifications_2024-07-10.csv",
             "sha256": "1" * 64, "size_bytes": 10, "return_date": date(2024, 7, 10), "received_at": received,
             "raw_path": "raw", "rows_read": 10, "rows_loaded": 8, "rows_quarantined": 2, "status": "partial",
             "notes": "free text", "error": None},
            {"file_id": 2, "partnership_code": "knowsley", "file_name": "notifications_2024-08-10.csv",
             "sha256": "2" * 64, "size_bytes": 10, "return_date": date(2024, 8, 10), "received_at": received,
             "raw_path": "raw", "rows_read": 1, "rows_loaded": 1, "rows_quarantined": 0, "status": "loaded",
             "notes": None, "error": None},
        ])
        conn.execute(sa.insert(wh.quarantine), [
            {"partnership_code": "knowsley", "dataset": "notifications", "file_id": 1,
             "file_name": "notifications_2024-07-10.csv", "row_number": n, "record_id": f"KNO-Q{n}",
             "failed_checks": "x", "raw_values": "{}", "quarantined_at": received,
             "resolved_by_file_id": 2 if n == 2 else None, "resolved_at": received if n == 2 else None}
            for n in (2, 3)])
        conn.execute(sa.insert(wh.timeliness), [
            _timeliness("notification", date(2024, 6, 30), "open_overdue"),
            _timeliness("notification", date(2024, 7, 31), "late", done=date(2024, 7, 2), days=61),
            _timeliness("rapid_review", date(2024, 6, 30), "met", done=date(2024, 4, 20), days=13),
        ])


def _query(engine, view: str, order: str) -> list[dict]:
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.text(f"SELECT * FROM {view} ORDER BY {order}")).mappings()]
    return [{k: (str(v)[:10] if isinstance(v, (date, datetime)) or (isinstance(v, str) and _DATE.match(v)) else v)
             for k, v in r.items()} for r in rows]


def test_every_view_answers_with_the_hand_made_rows(engine):
    _fill(engine)

    journeys = _query(engine, "v_case_journeys", "partnership_code, notification_id")
    assert [(j["partnership_code"], j["notification_id"]) for j in journeys] == [
        ("knowsley", "KNO-N1"), ("knowsley", "KNO-N2"), ("sefton", "KNO-N1")]
    n1, n2, sefton = journeys
    assert (n1["rapid_review_id"], n1["rapid_review_completed_date"], n1["rapid_review_outcome"],
            n1["panel_decision"], n1["rapid_reviews"]) == ("KNO-RR-B", "2024-04-20", "lcspr", "agree", 2)
    assert (n1["review_id"], n1["review_decision_date"], n1["review_completed_date"], n1["review_status"],
            n1["practice_reviews"]) == ("KNO-R1", "2024-05-01", "2024-05-15", "completed", 2)
    assert (n1["incident_type"], n1["aware_date"], n1["notified_date"]) == ("serious_harm", "2024-04-02", "2024-04-05")
    assert (n2["rapid_review_id"], n2["review_id"], n2["rapid_reviews"], n2["practice_reviews"]) == (None, None, 0, 0)
    assert (sefton["rapid_review_id"], sefton["review_id"], sefton["rapid_reviews"]) == ("SEF-RR-1", None, 1)

    latest = _query(engine, "v_latest_timeliness", "stage")
    assert [(t["stage"], t["as_of_date"], t["status"], t["completed_date"], t["working_days_taken"]) for t in latest] == [
        ("notification", "2024-07-31", "late", "2024-07-02", 61), ("rapid_review", "2024-06-30", "met", "2024-04-20", 13)]

    acts = _query(engine, "v_actions", "finding_id")
    assert [(a["finding_id"], a["action_state"], a["is_overdue"]) for a in acts] == [
        ("KNO-F1", "overdue", 1), ("KNO-F2", "completed", 0), ("KNO-F4", "in_progress", 0), ("KNO-F5", "open", 0)]
    assert {a["state_as_of"] for a in acts} in ({TODAY.isoformat()}, {(TODAY - timedelta(days=1)).isoformat()},
                                                {(TODAY + timedelta(days=1)).isoformat()})  # the database's today
    f1 = acts[0]
    assert (f1["review_id"], f1["review_type"], f1["review_completed_date"], f1["theme"], f1["owner_agency"],
            f1["action_due_date"], f1["action_status"], f1["action_completed_date"]) == (
        "KNO-R1", "lcspr", "2024-05-15", "neglect", "health", "2000-01-01", "open", None)

    themes = _query(engine, "v_themes_by_period", "year, quarter, theme")
    assert [(t["partnership_code"], t["theme"], t["year"], t["quarter"], t["period"], t["financial_year"],
             t["dated_by"], t["findings"], t["reviews"]) for t in themes] == [
        ("knowsley", "voice_of_child", 2024, 1, "2024-Q1", "2023-24", "decided", 1, 1),
        ("knowsley", "neglect", 2024, 2, "2024-Q2", "2024-25", "completed", 3, 1),
        ("knowsley", "domestic_abuse", 2025, 1, "2025-Q1", "2024-25", "completed", 1, 1),
    ]

    files = _query(engine, "v_returns_quality", "file_id")
    assert [(f["file_id"], f["file_name"], f["return_date"], f["rows_read"], f["rows_loaded"], f["rows_quarantined"],
             f["rows_awaiting_correction"], f["status"]) for f in files] == [
        (1, "notifications_2024-07-10.csv", "2024-07-10", 10, 8, 2, 1, "partial"),
        (2, "notifications_2024-08-10.csv", "2024-08-10", 1, 1, 0, 0, "loaded")]

    # Pseudonymised keys, codes and dates only: no child key, no free text, in any view.
    with engine.connect() as conn:
        for name in VIEWS:
            result = conn.execute(sa.text(f"SELECT * FROM {name}"))
            assert not set(result.keys()) & NEVER_SHOWN, name
            values = {str(v) for row in result for v in row}
            assert not {CHILD, "White British", "Practice was inconsistent.", "Agree guidance.", "Reviewer A",
                        "free text", "free text that no view shows"} & values, name


def test_the_selects_with_a_date_answer_as_of_that_date(engine):
    from reviews.core.views import actions, latest_timeliness

    _fill(engine)
    with engine.connect() as conn:
        latest = conn.execute(latest_timeliness(as_of=date(2024, 6, 30)).order_by("stage")).mappings().all()
        acts = {r["finding_id"]: r for r in conn.execute(actions(as_of=date(2000, 6, 1))).mappings()}
    assert [(r["stage"], r["as_of_date"], r["status"]) for r in latest] == [
        ("notification", date(2024, 6, 30), "open_overdue"), ("rapid_review", date(2024, 6, 30), "met")]
    # On 1 June 2000: F1 due 1 January 2000 overdue; F2 completed only in 2001, so overdue then too.
    assert {k: (r["state_as_of"], r["action_state"]) for k, r in acts.items()} == {
        "KNO-F1": (date(2000, 6, 1), "overdue"), "KNO-F2": (date(2000, 6, 1), "overdue"),
        "KNO-F4": (date(2000, 6, 1), "in_progress"), "KNO-F5": (date(2000, 6, 1), "open")}


def _view_names(engine) -> set[str]:
    with engine.connect() as conn:
        return set(sa.inspect(conn).get_view_names())


def test_ensure_schema_makes_the_views_once_and_remakes_a_changed_one(engine):
    assert _view_names(engine) >= set(VIEWS)
    with engine.begin() as conn:
        assert ensure_views(conn) == []  # already there, unchanged: nothing done
    with engine.begin() as conn:  # an out-of-date definition (as after an upgrade)
        conn.exec_driver_sql("DROP VIEW v_actions")
        conn.exec_driver_sql("CREATE VIEW v_actions AS SELECT partnership_code FROM learning")
        conn.exec_driver_sql("DROP VIEW v_returns_quality")
    wh.ensure_schema(engine)
    with engine.begin() as conn:
        assert ensure_views(conn) == []
        assert "is_overdue" in conn.execute(sa.text("SELECT * FROM v_actions")).keys()
    assert _view_names(engine) >= set(VIEWS)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_sql_views_match_the_definitions(dialect):
    """sql/views.*.sql is generated (`make schema`): one source of truth, no drift."""
    assert (ROOT / "sql" / f"views.{dialect}.sql").read_text() == views_ddl(dialect)


def test_the_sql_files_run_as_they_are(engine):
    """An analyst can run sql/views.{dialect}.sql (sqlite3 .read, psql -f) on a warehouse, again and again."""
    dialect = engine.dialect.name
    script = (ROOT / "sql" / f"views.{dialect}.sql").read_text()
    for _ in range(2):
        if dialect == "sqlite":
            raw = engine.raw_connection()
            try:
                raw.driver_connection.executescript(script)
            finally:
                raw.close()
        else:
            with engine.begin() as conn:
                conn.exec_driver_sql(script)
    with engine.begin() as conn:
        assert ensure_views(conn) == []  # what the file makes is what ensure_schema makes


def test_the_extract_holds_every_view_reads_back_and_is_stable(engine, tmp_path):
    import pandas as pd

    from reviews.learning.analyst_extract import extract_path, write_extract

    _fill(engine)
    end = date(2024, 6, 30)
    report = write_extract(engine, tmp_path, end)
    assert report.path == extract_path(tmp_path, end) == tmp_path / "analyst" / "analyst_extract_2024-06-30.xlsx"
    assert report.written
    assert report.rows == {"v_case_journeys": 3, "v_latest_timeliness": 2, "v_actions": 4, "v_themes_by_period": 3,
                           "v_returns_quality": 2}
    sheets = pd.read_excel(report.path, sheet_name=None)
    assert list(sheets) == [*VIEWS, "About"]
    for name, n in report.rows.items():
        assert len(sheets[name]) == n and list(sheets[name].columns) == VIEWS[name].columns(), name
    timeliness = sheets["v_latest_timeliness"]
    assert list(timeliness["status"]) == ["open_overdue", "met"]  # as of the period end, not the newest
    assert set(sheets["v_actions"]["state_as_of"]) == {pd.Timestamp(end)}
    assert list(sheets["v_case_journeys"]["rapid_review_id"].fillna("")) == ["KNO-RR-B", "", "SEF-RR-1"]
    cells = {str(v) for frame in sheets.values() for v in frame.to_numpy().ravel()}
    assert CHILD not in cells and "Practice was inconsistent." not in cells

    before = report.path.read_bytes()
    again = write_extract(engine, tmp_path, end)
    assert not again.written and report.path.read_bytes() == before  # same rows, same bytes


def test_the_extract_is_never_attached_to_an_email(tmp_path):
    from reviews.core.mail import MailError, Message

    path = tmp_path / "analyst" / "analyst_extract_2024-06-30.xlsx"
    with pytest.raises(MailError, match="never circulated"):
        Message(to=("someone@knowsley.gov.uk",), subject="s", html="<p>h</p>", text="t", attachments=(path,))
