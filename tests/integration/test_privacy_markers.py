"""No raw child identifier anywhere but the inbox and the raw copies.

A regional cycle (the four DAGs through `dag.test()`, SQLite warehouse, outbox) runs over
returns with marker values planted in every input field: child references, columns that are not
in the template (a child's name, home postcode, date of birth), ids, and free text holding an NHS
number with a valid check digit, a postcode, an email address, a phone number and a date of
birth, plus HTML and script. Then every output is searched for the child-identifying markers:

- the warehouse: the SQLite file's bytes (and its write-ahead log, so deleted rows count too) in
  three encodings, and every value of every table;
- the Airflow home: every file (the metadata database, logs), and every table of the metadata
  database (XComs, rendered template fields, run confs, task notes, the log table);
- what the tasks logged (under dag.test() task logs go to the console: captured here);
- the outbox: every .eml, every MIME part decoded, attachments opened (PDF text, XLSX parts);
- everything under the data dir except the inbox and raw/: bulletins (HTML, text, PDF, XLSX,
  the internal redaction list), data quality reports, notices, Great Expectations Data Docs.

Positive controls show the search looks where the data went: the case ids and the harmless
words of the free text are found in the warehouse and the bulletins, the child keys in the
warehouse. The same run checks that the planted script is escaped in every HTML output.
"""
from __future__ import annotations

import os
import re
import sqlite3
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from reviews_dev.signoff import Answerer

from reviews_dev.synthetic import generate_returns
from tests.integration.returns_support import KEY, prepare, write_config
from tests.hostile_inputs import html_parts, texts_of

pytestmark = pytest.mark.slow

AS_OF = date(2025, 10, 31)
SUMMARY_RUN = date(2025, 10, 1)  # builds July to September 2025 (its returns are in by 10 October)
RETURNS = {"frequency": "quarterly", "due_days_after_period_end": 10, "expected_from": "2025-06-30"}

# ------------------------------------------------------------------ markers (child-identifying)
REFS = ["MRK-CHILD-REF-ONE", "MRK-CHILD-REF-TWO", "MRK-CHILD-REF-LIV"]
NAMES = ["Zebedee Markerchild", "Ysolde Markerchild", "Markerchild"]
POSTCODES = ["CH62 7QZ", "CH627QZ"]
DOBS = ["17/03/2011", "2011-03-17", "15/06/2012", "2012-06-15"]
NHS = ["943 476 5919", "9434765919"]  # a valid modulus-11 check digit
PHONES = ["0151 496 0321", "01514960321"]
EMAILS = ["marker.parent@example.com", "marker.reviewer@example.com"]
FORBIDDEN = REFS + NAMES + POSTCODES + DOBS + NHS + PHONES + EMAILS
XSS = ["<script>alert('MRK-XSS')</script>", "<b>MRK-BOLD</b>", "<img src=x onerror=alert('MRK')>"]

FREE_TEXT = ("MRKFINDING words stay. <script>alert('MRK-XSS')</script> The child (NHS 943 476 5919, born "
             "17/03/2011, of CH62 7QZ, mum on 0151 496 0321, marker.parent@example.com) was not seen alone.")
RECOMMENDATION = "MRKRECOMMEND: see the child alone <img src=x onerror=alert('MRK')>; DOB 17/03/2011; CH62 7QZ"

KNO = {
    "notifications": (
        "notification_id,child_ref,Child Name,incident_date,aware_date,notified_date,incident_type,age_years,sex,"
        "ethnicity,disability,looked_after,cp_plan,cin_plan,known_to_csc,Home Postcode,DOB\r\n"
        "KNO-MRK-N1,MRK-CHILD-REF-ONE,Zebedee Markerchild,01/02/2025,03/02/2025,07/02/2025,death,13,female,"
        "White British,N,N,N,N,Y,CH62 7QZ,17/03/2011\r\n"
        "KNO-MRK-N2,MRK-CHILD-REF-TWO,Ysolde Markerchild,01/02/2025,03/02/2025,07/02/2025,MRK-BADCODE,9,male,"
        "<b>MRK-BOLD</b>,N,N,N,N,Y,CH62 7QZ,17/03/2011\r\n"
    ),
    "rapid_reviews": (
        "rapid_review_id,notification_id,completed_date,outcome,panel_response_date,panel_decision\r\n"
        "KNO-MRK-RR1,KNO-MRK-N1,20/02/2025,lcspr,03/03/2025,agree\r\n"
    ),
    "practice_reviews": (
        "review_id,notification_id,review_type,decision_date,author,methodology,completed_date,"
        "final_report_sent_date,published_date,status\r\n"
        "KNO-MRK-PR1,KNO-MRK-N1,lcspr,25/02/2025,Independent reviewer A (regional list),"
        "SILP (contact marker.reviewer@example.com),05/09/2025,08/09/2025,25/09/2025,published\r\n"
    ),
    "learning": (
        "finding_id,review_id,theme,finding,recommendation,owner_agency,action_due_date,action_status,"
        "action_completed_date\r\n"
        f'KNO-MRK-F1,KNO-MRK-PR1,DA,"{FREE_TEXT}","{RECOMMENDATION}",Police <b>MRK-BOLD</b>,31/12/2025,Open,\r\n'
        f'KNO-MRK-F2,KNO-MRK-PR1,MRK-NOT-A-THEME,"{FREE_TEXT}","{RECOMMENDATION}",Health,31/12/2025,Open,\r\n'
    ),
}


def _liverpool_workbook(path: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "Notifications"
    ws.append(["Notification Ref", "Child Reference", "Child Name", "Date of Birth", "Date of Incident",
               "Date LA Aware", "Date Notified to Panel", "Incident Type", "Age", "Sex", "Ethnicity"])
    ws.append(["LIV-MRK-1", "MRK-CHILD-REF-LIV", "Zebedee Markerchild", datetime(2012, 6, 15), datetime(2025, 8, 1),
               datetime(2025, 8, 4), datetime(2025, 8, 6), "Death", 13, "F", "=\"0151 496 0321\""])
    wb.save(path)


# ------------------------------------------------------------------------ reading every output


_texts = texts_of  # every file's bytes in three encodings, and what it packs (MIME parts, zips, PDF text)


_html_parts = html_parts  # the HTML a file holds: an .html file, or an email's text/html parts


def _sqlite_tables(path: Path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")]
        parts = []
        for name in names:
            for row in conn.execute(f'select * from "{name}"'):
                parts.append(" | ".join(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in row))
        return "\n".join(parts)
    finally:
        conn.close()


def _search(where: str, texts: list[str], needles: list[str], found: dict) -> None:
    for text in texts:
        for needle in needles:
            if needle in text:
                found.setdefault(needle, set()).add(where)


def _files(root: Path, *, skip: tuple[Path, ...] = ()) -> list[Path]:
    return [p for p in sorted(root.rglob("*")) if p.is_file() and not any(s == p or s in p.parents for s in skip)]


def _run(dagbag, dag_id: str, day: date):
    with Answerer():  # the business unit approves the bulletins' sign-off request
        dr = dagbag.get_dag(dag_id).test(logical_date=datetime(day.year, day.month, day.day, tzinfo=timezone.utc))
    states = {(ti.task_id, ti.map_index): ti.state for ti in dr.get_task_instances()}
    assert dr.state == "success", (dag_id, states)
    return dr


def test_no_child_identifier_leaves_the_inbox_and_the_raw_copies(dagbag, tmp_path, sqlite_url, monkeypatch, cfg,
                                                                 capfd, caplog):
    caplog.set_level("DEBUG")
    config = write_config(tmp_path, {"knowsley": {}, "liverpool": {}, "sefton": {}}, returns=RETURNS)
    env = prepare(monkeypatch, tmp_path, sqlite_url, config)
    generate_returns(env.inbox, cfg, start=date(2025, 4, 1), end=date(2025, 10, 31), seed=11, inflate=2,
                     partnerships=["sefton"])
    (env.inbox / "knowsley").mkdir()
    for dataset, text in KNO.items():
        (env.inbox / "knowsley" / f"{dataset}_2025-10-10.csv").write_text(text, encoding="utf-8")
    (env.inbox / "liverpool").mkdir()
    _liverpool_workbook(env.inbox / "liverpool" / "return_2025-10-10.xlsx")

    console = []
    for dag_id, day in (("partnership_returns", AS_OF), ("statutory_timeliness", AS_OF),
                        ("regional_learning_summary", SUMMARY_RUN), ("bulletin_circulation", AS_OF)):
        _run(dagbag, dag_id, day)
        captured = capfd.readouterr()
        console += [captured.out, captured.err]
    console.append("\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records))

    # --- the data went where it should (positive controls) -------------------------------------
    warehouse = env.every_table_text()
    child_keys = [r["child_key"] for r in env.rows("select child_key from notifications")]
    assert len(child_keys) >= 3 and "anonymised" not in child_keys
    for needle in ("KNO-MRK-N1", "LIV-MRK-1", "MRKFINDING words stay.", "MRKRECOMMEND", "[redacted]", "MRK-BADCODE"):
        assert needle in warehouse, needle
    finding = env.scalar("select finding from learning where finding_id = 'KNO-MRK-F1'")
    assert finding.startswith("MRKFINDING words stay.") and finding.count("[redacted]") == 5
    notes = env.scalar("select notes from return_files where file_name = 'learning_2025-10-10.csv' and partnership_code = 'knowsley'")
    assert notes == ("free text: 14 personal details redacted before loading (2 email addresses, 4 postcodes, "
                     "4 dates of birth, 2 NHS numbers, 2 phone numbers); please keep them out of returns")  # 2 rows x 7
    assert env.scalar("select dropped_columns from return_files where file_name = 'notifications_2025-10-10.csv' "
                      "and partnership_code = 'knowsley'") == "Child Name, DOB, Home Postcode"  # Sefton's has that name too
    bulletins = [Path(p) for p in (r["path"] for r in env.rows("select path from bulletins where audience not like '%:%'"))]
    assert any("MRKFINDING words stay." in p.read_text(encoding="utf-8") for p in bulletins)
    assert env.scalar("select count(*) from circulation_log where status = 'sent'") > 0

    # --- search every output -------------------------------------------------------------------
    found: dict[str, set[str]] = {}
    keys_found: dict[str, set[str]] = {}
    secret = os.environ["REVIEWS_PSEUDONYMISATION_KEY"]
    assert secret == KEY
    db = Path(sqlite_url.removeprefix("sqlite:///"))
    for part in sorted(db.parent.glob(db.name + "*")):
        _search(f"warehouse file {part.name}", _texts(part.name, part.read_bytes()), FORBIDDEN + [secret], found)
    _search("warehouse tables", [warehouse], FORBIDDEN + [secret], found)

    home = Path(os.environ["AIRFLOW_HOME"])
    for path in _files(home):
        texts = _texts(path.name, path.read_bytes())
        _search(f"airflow home {path.relative_to(home)}", texts, FORBIDDEN + [secret], found)
        _search(f"airflow home {path.relative_to(home)}", texts, child_keys, keys_found)
    metadata = _sqlite_tables(home / "airflow.db")
    _search("airflow metadata tables", [metadata], FORBIDDEN + [secret], found)
    _search("airflow metadata tables", [metadata], child_keys, keys_found)
    assert "partnership_returns" in metadata and "rows_loaded" in metadata  # XComs of this run are there

    _search("task logs (console)", console, FORBIDDEN + [secret], found)
    _search("task logs (console)", console, child_keys, keys_found)
    assert "partnership_returns" in "".join(console) or "knowsley" in "".join(console)

    outputs = _files(env.data_dir, skip=(env.inbox, env.data_dir / "raw"))
    assert {p.suffix for p in outputs} >= {".eml", ".html", ".txt", ".pdf", ".xlsx"}, {p.suffix for p in outputs}
    assert any("data_docs" in p.parts for p in outputs) and any("quality" in p.parts for p in outputs)
    assert not (env.data_dir / "staging").exists() or not _files(env.data_dir / "staging")
    html_outputs = []
    for path in outputs:
        data = path.read_bytes()
        texts = _texts(path.name, data)
        where = f"data dir {path.relative_to(env.data_dir)}"
        _search(where, texts, FORBIDDEN + [secret], found)
        _search(where, texts, child_keys, keys_found)
        html_outputs += [(where, t) for t in _html_parts(path.name, data)]

    assert found == {}, "child identifiers found: " + "; ".join(f"{k!r} in {sorted(v)}" for k, v in found.items())
    assert keys_found == {}, "child keys outside the warehouse: " + "; ".join(
        f"{k} in {sorted(v)}" for k, v in keys_found.items())

    # --- the planted markup is escaped wherever it is shown ------------------------------------
    escaped_somewhere = False
    assert len(html_outputs) > 10
    for where, text in html_outputs:
        for payload in XSS:
            assert payload not in text, f"{payload!r} unescaped in {where}"
        escaped_somewhere |= "&lt;script&gt;alert(" in text or "&lt;b&gt;MRK-BOLD&lt;/b&gt;" in text
    assert escaped_somewhere
    # The raw references are where they belong: in the inbox and the raw copies, and nowhere else.
    raw_bytes = b"".join(p.read_bytes() for p in _files(env.data_dir / "raw"))
    assert b"MRK-CHILD-REF-ONE" in raw_bytes
    assert re.search(r"KNO-MRK-F1", env.every_table_text())
