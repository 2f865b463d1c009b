"""Every kind of source through `partnership_returns` under `dag.test()`, against real servers:

* Knowsley's returns come from a real SFTP server on 127.0.0.1 (asyncssh), through an Airflow
  SFTP connection;
* Sefton's from its case system, a SQLite database file, one query per dataset;
* Wirral's from its case system on the local PostgreSQL server.
The SQL pulls are written to CSV, landed raw and checksummed like files; pulling the same data
again loads nothing, and so does fetching the same files again.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.integration.returns_support import prepare, run_returns, set_connection, write_config
from tests.sftp_server import sftp_server  # noqa: F401  (fixture)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

AS_OF, NEXT_DAY = date(2024, 7, 15), date(2024, 7, 16)

SFTP_NOTIFICATIONS = (
    "notification_id,child_ref,incident_date,aware_date,notified_date,incident_type,age_years,sex\r\n"
    "KNO-S-1,KNO-SFTP-CHILD-1,01/05/2024,02/05/2024,08/05/2024,death,3,female\r\n"
    "KNO-S-2,KNO-SFTP-CHILD-2,01/05/2024,02/05/2024,,serious_harm,30,male\r\n"
)
SFTP_RAPID_REVIEWS = (
    "rapid_review_id,notification_id,completed_date,outcome\r\n"
    "KNO-S-RR-1,KNO-S-1,20/05/2024,lcspr\r\n"
)

SEFTON_QUERIES = {  # their column names (Sefton's mapping in the config), their tables
    "notifications": (
        'select ref as "NotificationID", child as "ChildID", incident as "IncidentDate", aware as "AwareDate", '
        'notified as "NotifiedDate", category as "Category", age as "AgeAtIncident", gender as "Gender" '
        "from sin_notifications where aware <= :as_of"
    ),
    "rapid_reviews": 'select rr as "RapidReviewID", sin as "NotificationID", sent as "DateSubmitted", rec as "Recommendation" from rapid',
}
WIRRAL_QUERIES = {  # the template's own names also work, whatever the mapping says
    "notifications": (
        "select notification_id, child_ref, incident_date, aware_date, notified_date, incident_type, age_years, "
        "looked_after from case_notifications where aware_date <= :as_of"
    ),
}


def _sefton_database(path: Path) -> str:
    url = f"sqlite:///{path}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("create table sin_notifications (ref text, child text, incident text, aware text, "
                             "notified text, category text, age integer, gender text)"))
        conn.execute(sa.text("insert into sin_notifications values (:r, :c, :i, :a, :n, :k, :g, :s)"), [
            {"r": "SEF-Q-1", "c": "SEF-DB-CHILD-1", "i": "2024-05-01", "a": "2024-05-02", "n": "2024-05-09",
             "k": "Serious Harm", "g": 14, "s": "F"},
            {"r": "SEF-Q-2", "c": "SEF-DB-CHILD-2", "i": "2024-06-01", "a": "2024-06-03", "n": "2024-07-20",
             "k": "Death", "g": 1, "s": "M"},   # notified after the return's date: loaded, flagged
            {"r": "SEF-Q-3", "c": "SEF-DB-CHILD-3", "i": "2024-07-01", "a": "2024-07-18", "n": None,
             "k": "Death", "g": 2, "s": "M"},   # aware after the as-of date: not pulled (the query says so)
        ])
        conn.execute(sa.text("create table rapid (rr text, sin text, sent text, rec text)"))
        conn.execute(sa.text("insert into rapid values ('SEF-RR-1', 'SEF-Q-1', '2024-05-20', 'NFA')"))
    engine.dispose()
    return url


def _wirral_database(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("create table case_notifications (notification_id varchar(20), child_ref varchar(40), "
                             "incident_date date, aware_date date, notified_date date, incident_type varchar(20), "
                             "age_years numeric, looked_after boolean)"))
        conn.execute(sa.text("insert into case_notifications values "
                             "('WIR-P-1', 'WIR-PG-CHILD-1', '2024-04-01', '2024-04-02', '2024-04-05', 'death', 16.0, true), "
                             "('WIR-P-2', 'WIR-PG-CHILD-2', '2024-04-03', '2024-04-04', null, 'SH', 2, false)"))
    engine.dispose()


def _counts(env, code: str) -> tuple:
    return tuple(env.rows(
        "select count(*) as files, coalesce(sum(rows_read), 0) as r, coalesce(sum(rows_loaded), 0) as l, "
        "coalesce(sum(rows_quarantined), 0) as q from return_files where partnership_code = :c", c=code)[0].values())


def test_sftp_sqlite_and_postgres_sources(dagbag, tmp_path, sqlite_url, postgres_url, monkeypatch, sftp_server):  # noqa: F811
    outgoing = sftp_server.root / "outgoing"
    outgoing.mkdir()
    (outgoing / "notifications_2024-07-10.csv").write_text(SFTP_NOTIFICATIONS, encoding="utf-8")
    (outgoing / "rapid_reviews_2024-07-10.csv").write_text(SFTP_RAPID_REVIEWS, encoding="utf-8")
    (outgoing / ".in-progress.csv").write_text("not yet", encoding="utf-8")
    (outgoing / "archive").mkdir()
    (outgoing / "archive" / "notifications_2023-01-10.csv").write_text(SFTP_NOTIFICATIONS, encoding="utf-8")
    set_connection(monkeypatch, "knowsley_sftp", sftp_server.airflow_connection())
    sefton_url = _sefton_database(tmp_path / "sefton_case_system.db")
    set_connection(monkeypatch, "sefton_cases", sefton_url)
    _wirral_database(postgres_url)
    set_connection(monkeypatch, "wirral_cases", postgres_url.replace("postgresql+psycopg2://", "postgresql://"))

    config = write_config(tmp_path, {
        "knowsley": {"source": {"kind": "sftp", "conn_id": "knowsley_sftp", "path": "/outgoing"}},
        "sefton": {"source": {"kind": "sql", "conn_id": "sefton_cases", "queries": SEFTON_QUERIES}},
        "wirral": {"source": {"kind": "sql", "conn_id": "wirral_cases", "queries": WIRRAL_QUERIES}},
    })
    env = prepare(monkeypatch, tmp_path, sqlite_url, config)

    run_returns(dagbag, AS_OF)

    assert _counts(env, "knowsley") == (2, 3, 3, 0)  # KNO-S-2 loaded with a flag (age), as SEF-Q-2 (a date)
    assert _counts(env, "sefton") == (2, 3, 3, 0)
    assert _counts(env, "wirral") == (1, 2, 2, 0)
    names = {(f["partnership_code"], f["file_name"]): f for f in env.rows("select * from return_files")}
    assert set(names) == {
        ("knowsley", "notifications_2024-07-10.csv"), ("knowsley", "rapid_reviews_2024-07-10.csv"),
        ("sefton", "notifications_2024-07-15.csv"), ("sefton", "rapid_reviews_2024-07-15.csv"),
        ("wirral", "notifications_2024-07-15.csv"),
    }
    # The pulls were landed raw and checksummed like any file.
    for f in names.values():
        assert Path(f["raw_path"]).is_file() and Path(f["raw_path"]).name.startswith(f["sha256"])
    snapshot = (env.data_dir / "staging" / "sefton" / "sql" / "notifications_2024-07-15.csv").read_text()
    assert snapshot.splitlines()[0] == "NotificationID,ChildID,IncidentDate,AwareDate,NotifiedDate,Category,AgeAtIncident,Gender"
    assert "SEF-Q-3" not in snapshot  # `:as_of` was bound
    # Values as the warehouse holds them, whatever the source's types were.
    rows = {r["notification_id"]: r for r in env.rows("select * from notifications")}
    assert set(rows) == {"KNO-S-1", "KNO-S-2", "SEF-Q-1", "SEF-Q-2", "WIR-P-1", "WIR-P-2"}
    assert rows["KNO-S-2"]["age_years"] is None and rows["SEF-Q-2"]["notified_date"] is None  # held blank
    assert (rows["SEF-Q-1"]["incident_type"], rows["SEF-Q-1"]["sex"], rows["SEF-Q-1"]["age_years"]) == ("serious_harm", "female", 14)
    assert (rows["WIR-P-1"]["age_years"], rows["WIR-P-1"]["looked_after"], str(rows["WIR-P-1"]["notified_date"])[:10]) == (16, "Y", "2024-04-05")
    assert rows["WIR-P-2"]["incident_type"] == "serious_harm" and rows["WIR-P-2"]["looked_after"] == "N"
    assert env.rows("select * from quarantine") == []
    reasons = {f["record_id"]: f["message"] for f in env.rows("select * from row_flags")}
    assert reasons == {
        "KNO-S-2": "age_years '30' is not a whole number of years from 0 to 17",
        "SEF-Q-2": "notified_date 2024-07-20 is after the date of the return (15/07/2024)",
    }
    assert env.scalar("select count(*) from rapid_reviews") == 2

    # Again, same day: nothing fetched again, the same pulls are the same files: nothing loaded twice.
    staged = env.data_dir / "staging" / "knowsley" / "sftp" / "notifications_2024-07-10.csv"
    stamp = staged.stat().st_mtime_ns
    run_returns(dagbag, AS_OF)
    assert env.scalar("select count(*) from return_files") == 5
    assert staged.stat().st_mtime_ns == stamp

    # The next day: Wirral's system has a change, Sefton's has not (a new pull of the same data).
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("update case_notifications set notified_date = '2024-04-08' where notification_id = 'WIR-P-2'"))
    engine.dispose()
    run_returns(dagbag, NEXT_DAY)
    assert _counts(env, "sefton")[0] == 2  # same content as yesterday's pull: not loaded again
    assert _counts(env, "wirral") == (2, 4, 4, 0)
    wir2 = env.rows("select * from notifications where notification_id = 'WIR-P-2'")[0]
    assert str(wir2["notified_date"])[:10] == "2024-04-08" and str(wir2["return_date"])[:10] == "2024-07-16"

    # No raw child reference from any source is in the warehouse.
    everything = env.every_table_text()
    for ref in ("KNO-SFTP-CHILD-1", "KNO-SFTP-CHILD-2", "SEF-DB-CHILD-1", "SEF-DB-CHILD-2", "WIR-PG-CHILD-1"):
        assert ref not in everything
