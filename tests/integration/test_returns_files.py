"""Returns as partnerships really send them, through `partnership_returns` under `dag.test()`.

Knowsley sends the template's own columns in every awkward shape (a UTF-8 CSV with a byte-order
mark, semicolons, title lines and trailing empty rows and columns; a Windows-1252 CSV; a workbook
holding one dataset with Excel dates, serial numbers and text dates mixed; a CSV with numbers
stored as text), plus files nobody can read. Liverpool sends one workbook with a sheet per
dataset in its own headers. Each has rows that break rules, and columns that are not in the
template. A second run brings a copy of a file already loaded and a corrected return.
"""
from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from tests.integration.returns_support import db_file_bytes, prepare, run_returns, write_config

pytestmark = pytest.mark.slow

RUN_1, RUN_2 = date(2024, 7, 15), date(2024, 7, 22)
RETURNS = {"frequency": "quarterly", "due_days_after_period_end": 10, "expected_from": "2024-03-31"}

# Raw values that must never reach the warehouse: child references and dropped columns' values.
CHILD_REFS = ["KNO-CHILD-0001", "KNO-CHILD-0002", "KNO-CHILD-0003", "KNO-CHILD-0004", "LIV-CHILD-77", "LIV-CHILD-78"]
DROPPED_VALUES = ["Jane Example", "L36 9XX", "Caf\u00e9 note about the family", "Alex Sample", "14/02/2017"]

KNO_NOTIFICATIONS = (  # UTF-8 with BOM, ';' separated, two title lines, trailing empty columns and rows
    "Knowsley Safeguarding Children Partnership;;;;;;;;;;;;;;;;;\r\n"
    "Serious incident notifications, return for Q2 2024;;;;;;;;;;;;;;;;;\r\n"
    "notification_id;child_ref;Child Name;incident_date;aware_date;notified_date;incident_type;age_years;sex;"
    "ethnicity;disability;looked_after;cp_plan;cin_plan;known_to_csc;Home Postcode;;\r\n"
    "KNO-1;KNO-CHILD-0001;Jane Example;01/05/2024;02/05/2024;08/05/2024;Death;7;F;White British;N;N;N;N;Y;L36 9XX;;\r\n"
    "KNO-2;KNO-CHILD-0002;Alex Sample;01/05/2024;12/05/2024;10/05/2024;accident;19;M;;N;N;Y;N;Y;L36 1AA;;\r\n"
    "KNO-3;KNO-CHILD-0003;;03/05/2024;45420;09/05/2024;SH;4.0;Girl;Mixed;No;Yes;No;No;Yes;;;\r\n"
    "KNO-4;KNO-CHILD-0004;;04/05/2024;05/05/2024;20/07/2024;serious harm;12;male;;N;N;N;N;Y;;;\r\n"
    ";;;;;;;;;;;;;;;;;\r\n\r\n\r\n"
)
KNO_RAPID_REVIEWS = (  # Windows-1252 (Excel's "CSV" on Windows), a column not in the template
    "rapid_review_id,notification_id,completed_date,outcome,panel_response_date,panel_decision,Notes\r\n"
    "KNO-RR-1,KNO-1,20/05/2024,LCSPR,30/05/2024,Agree,Caf\u00e9 note about the family\r\n"
    "KNO-RR-2,KNO-99,21/05/2024,NFA,,,\r\n"
    "KNO-RR-3,KNO-3,01/05/2024,NFA,,,\r\n"
    "KNO-RR-4,KNO-2,22/05/2024,NFA,,,\r\n"
)
KNO_LEARNING = (
    "finding_id,review_id,theme,finding,recommendation,owner_agency,action_due_date,action_status,action_completed_date\r\n"
    "KNO-F-1,KNO-PR-1,DA,Risks were not shared.,Agree a single route.,police,30/09/2024,Open,\r\n"
    "KNO-F-2,KNO-PR-2,Safer sleep,Advice was not given.,Give advice.,health,30/09/2024,Open,\r\n"
    "KNO-F-3,KNO-PR-9,neglect,Neglect was missed.,Train staff.,health,30/09/2024,Open,\r\n"
)
KNO_NOTIFICATIONS_CORRECTED = (  # a later return: KNO-2 corrected, KNO-1 restated unchanged
    "notification_id,child_ref,incident_date,aware_date,notified_date,incident_type,age_years,sex,ethnicity,"
    "disability,looked_after,cp_plan,cin_plan,known_to_csc\r\n"
    "KNO-1,KNO-CHILD-0001,01/05/2024,02/05/2024,08/05/2024,death,7,female,White British,N,N,N,N,Y\r\n"
    "KNO-2,KNO-CHILD-0002,01/05/2024,08/05/2024,10/05/2024,serious_harm,9,male,,N,N,Y,N,Y\r\n"
)
KNO_RAPID_REVIEWS_CORRECTED = (
    "rapid_review_id,notification_id,completed_date,outcome,panel_response_date,panel_decision\r\n"
    "KNO-RR-4,KNO-2,22/05/2024,no_further_review,,\r\n"
)


def _knowsley_practice_reviews(path: Path) -> None:
    """One dataset per workbook: a sheet not named after it, a title row, dates of every kind."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    ws.append(["Knowsley practice reviews at 10 July 2024"])
    ws.append([])
    ws.append(["review_id", "notification_id", "review_type", "decision_date", "author", "methodology",
               "completed_date", "final_report_sent_date", "published_date", "status", None, None])
    ws.append(["KNO-PR-1", "KNO-1", "LCSPR", datetime(2024, 5, 25), "Independent reviewer A (regional list)",
               "SILP", None, None, None, "In progress"])
    ws.append(["KNO-PR-2", "KNO-1", "lcspr", "26/05/2024", "Dr Nobody", "SILP", None, None, None, "in_progress"])
    ws.append(["KNO-PR-3", "KNO-3", "lcspr", 45444, None, None, None, None, None, "Ongoing"])
    ws.append(["KNO-PR-4", None, "LMAR", "2024-06-03", None, None, None, None, None, "Commissioned"])
    ws.append([None] * 12)
    wb.create_sheet("Lookups").append(["codes", "lcspr"])
    wb.save(path)


def _liverpool_return(path: Path) -> None:
    """One workbook, a sheet per dataset, Liverpool's own headers, a sheet that is not a dataset."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "Notifications"
    ws.append(["Notification Ref", "Child Reference", "Child Name", "Date of Birth", "Date of Incident",
               "Date LA Aware", "Date Notified to Panel", "Incident Type", "Age", "Sex", "Ethnicity",
               "Disability", "Looked After", "CP Plan", "CIN Plan", "Known to CSC", None])
    ws.append(["LIV-1", "LIV-CHILD-77", "Alex Sample", "14/02/2017", datetime(2024, 5, 1), "03/05/2024", 45421,
               "Serious Harm", "7", "Boy", "White British", "No", "No", "Yes", "No", "Yes", None])
    ws.append(["LIV-2", "LIV-CHILD-78", None, None, datetime(2024, 5, 2), datetime(2024, 5, 20),
               datetime(2024, 5, 10), "Death", 0, "F", None, "N", "N", "N", "N", "N", None])
    ws.append([None] * 17)
    rr = wb.create_sheet("Rapid Reviews")
    rr.append(["RR Ref", "Notification Ref", "RR Sent to Panel", "RR Outcome", "Panel Response Date", "Panel Decision"])
    rr.append(["LIV-RR-1", "LIV-1", datetime(2024, 5, 24), "NFA", None, None])
    wb.create_sheet("Notes").append(["Prepared by the LSCP data team"])
    wb.save(path)


def _drop_first_return(inbox: Path) -> None:
    kno = inbox / "knowsley"
    kno.mkdir(parents=True)
    (kno / "notifications_2024-07-10.csv").write_bytes(b"\xef\xbb\xbf" + KNO_NOTIFICATIONS.encode("utf-8"))
    (kno / "rapid_reviews_2024-07-10.csv").write_bytes(KNO_RAPID_REVIEWS.encode("cp1252"))
    _knowsley_practice_reviews(kno / "practice_reviews_2024-07-10.xlsx")
    (kno / "learning_2024-07-10.csv").write_text(KNO_LEARNING, encoding="utf-8")
    (kno / "return_2024-07-10.xlsx").write_bytes(b"PK\x03\x04 this is not really a workbook")
    (kno / "notes for the business unit.txt").write_text("please call us", encoding="utf-8")
    liv = inbox / "liverpool"
    liv.mkdir(parents=True)
    _liverpool_return(liv / "return_2024-07-10.xlsx")


def _quarantine(env, record_id: str) -> list[dict]:
    return env.rows("select * from quarantine where record_id = :r order by quarantine_id", r=record_id)


def test_awkward_returns_load_quarantine_report_and_correct(dagbag, tmp_path, sqlite_url, monkeypatch):
    config = write_config(tmp_path, {"knowsley": {}, "liverpool": {}}, returns=RETURNS)
    env = prepare(monkeypatch, tmp_path, sqlite_url, config)
    _drop_first_return(env.inbox)

    run_returns(dagbag, RUN_1)

    # --- every file recorded; rows read = loaded + quarantined for each -------------------------
    files = {(f["partnership_code"], f["file_name"]): f for f in env.rows("select * from return_files")}
    assert len(files) == 7
    assert all(f["rows_read"] == f["rows_loaded"] + f["rows_quarantined"] for f in files.values())
    counts = {name: (f["status"], f["rows_read"], f["rows_loaded"], f["rows_quarantined"])
              for (code, name), f in files.items() if code == "knowsley"}
    # Rows that broke only `flag` rules (config quality.severity) are loaded, and counted beside.
    assert counts["notifications_2024-07-10.csv"] == ("partial", 4, 3, 1)  # KNO-4 loaded, flagged
    assert counts["rapid_reviews_2024-07-10.csv"] == ("partial", 4, 2, 2)  # KNO-RR-3 loaded, flagged
    assert counts["practice_reviews_2024-07-10.xlsx"] == ("loaded", 4, 4, 0)  # KNO-PR-2 and 3 flagged
    assert counts["learning_2024-07-10.csv"] == ("partial", 3, 2, 1)  # KNO-F-2's review is loaded now
    assert counts["return_2024-07-10.xlsx"][0] == "failed"
    flagged = {name: f["rows_flagged"] for (code, name), f in files.items() if code == "knowsley"}
    assert (flagged["notifications_2024-07-10.csv"], flagged["rapid_reviews_2024-07-10.csv"],
            flagged["practice_reviews_2024-07-10.xlsx"], flagged["learning_2024-07-10.csv"]) == (1, 1, 2, 0)
    liverpool = files[("liverpool", "return_2024-07-10.xlsx")]
    assert (liverpool["status"], liverpool["rows_read"], liverpool["rows_loaded"], liverpool["rows_quarantined"],
            liverpool["rows_flagged"]) == ("loaded", 3, 3, 0, 1)
    assert liverpool["datasets"] == "notifications,rapid_reviews"

    # --- files nobody can read: kept raw, failed with the reason, the others loaded ---------------
    broken = files[("knowsley", "return_2024-07-10.xlsx")]
    assert "cannot be opened" in broken["error"] and Path(broken["raw_path"]).is_file()
    named = files[("knowsley", "notes for the business unit.txt")]
    assert named["status"] == "failed" and "does not follow the template" in named["error"]

    # --- columns not in the template: dropped, names recorded -----------------------------------
    assert files[("knowsley", "notifications_2024-07-10.csv")]["dropped_columns"] == "Child Name, Home Postcode"
    assert files[("knowsley", "rapid_reviews_2024-07-10.csv")]["dropped_columns"] == "Notes"
    assert liverpool["dropped_columns"] == "Child Name, Date of Birth"

    # --- values as they were meant: serial dates, text dates, numbers stored as text, synonyms ---
    kno3 = env.rows("select * from notifications where notification_id = 'KNO-3'")[0]
    assert (str(kno3["aware_date"])[:10], kno3["age_years"], kno3["incident_type"], kno3["sex"], kno3["looked_after"]) == (
        "2024-05-08", 4, "serious_harm", "female", "Y")
    liv1 = env.rows("select * from notifications where notification_id = 'LIV-1'")[0]
    assert [str(liv1[c])[:10] for c in ("incident_date", "aware_date", "notified_date")] == ["2024-05-01", "2024-05-03", "2024-05-09"]
    assert liv1["age_years"] == 7 and liv1["incident_type"] == "serious_harm"
    pr = {r["review_id"]: r for r in env.rows("select * from practice_reviews")}
    assert set(pr) == {"KNO-PR-1", "KNO-PR-2", "KNO-PR-3", "KNO-PR-4"}
    assert pr["KNO-PR-2"]["author"] is None  # not on the approved list: held blank, flagged
    assert str(pr["KNO-PR-4"]["decision_date"])[:10] == "2024-06-03" and pr["KNO-PR-4"]["status"] == "commissioned"

    # --- every rule each row broke, in plain words, with its file and row number ----------------
    kno2 = _quarantine(env, "KNO-2")
    assert [(q["file_name"], q["row_number"]) for q in kno2] == [("notifications_2024-07-10.csv", 5)]
    assert kno2[0]["failed_checks"].splitlines() == [
        "incident_type 'accident' is not one of: death, serious_harm, other",
        "age_years '19' is not a whole number of years from 0 to 17",
        "aware_date 12/05/2024 is after notified_date 10/05/2024",
    ]
    reasons = {r: _quarantine(env, r)[0]["failed_checks"] for r in ("KNO-RR-2", "KNO-RR-4", "KNO-F-3")}
    assert reasons == {
        "KNO-RR-2": "notification_id KNO-99 does not name a notification that has been loaded "
                    "(none with that id in the warehouse or among the valid rows of this return)",
        "KNO-RR-4": "notification_id KNO-2 does not name a notification that has been loaded "
                    "(none with that id in the warehouse or among the valid rows of this return)",
        "KNO-F-3": "review_id KNO-PR-9 does not name a practice review that has been loaded "
                   "(none with that id in the warehouse or among the valid rows of this return)",
    }
    # ... and the flags of loaded rows: the rule's sentence and what the return said, quoted.
    flags = {r["record_id"]: r for r in env.rows("select * from row_flags")}
    assert {rid: (f["rule_id"], f["message"], f["original_text"]) for rid, f in flags.items()} == {
        "KNO-4": ("not_after_period_end:notified_date",
                  "notified_date 20/07/2024 is after the date of the return (10/07/2024)", "'20/07/2024'"),
        "KNO-RR-3": ("cross_order:notifications.aware_date<=completed_date",
                     "completed_date 01/05/2024 is before aware_date 08/05/2024 of notification KNO-3",
                     "completed_date '01/05/2024'"),
        "KNO-PR-2": ("approved_author", "author 'Dr Nobody' is not on the regional list of approved LCSPR authors",
                     "'Dr Nobody'"),
        "KNO-PR-3": ("author_needed", "author is blank: an LCSPR with status 'in_progress' needs its author "
                                      "(blank is allowed only while it is commissioned)", None),
        "LIV-2": ("order:aware_date<=notified_date", "aware_date 2024-05-20 is after notified_date 2024-05-10",
                  "aware_date '2024-05-20', notified_date '2024-05-10'"),  # Excel dates, quoted as ISO
    }
    assert flags["KNO-PR-3"]["row_number"] == 6  # title row, blank row, header, then data
    assert env.rows("select notified_date from notifications where notification_id = 'KNO-4'") == [
        {"notified_date": None}]  # after the return's date: held blank

    # --- Great Expectations Data Docs, one page per dataset checked ------------------------------
    docs = sorted(p.name for p in (env.data_dir / "reports" / "data_docs" / "knowsley").glob("*/*.html"))
    assert docs == ["learning.html", "notifications.html", "practice_reviews.html", "rapid_reviews.html"]
    page = next((env.data_dir / "reports" / "data_docs" / "knowsley").glob("*/notifications.html")).read_text()
    assert "expect_column_pair_values_a_to_be_greater_than_b" in page or "greater than" in page.lower()

    # --- the data quality report: stored, recorded, sent once to the data contact ----------------
    reports = env.rows("select * from bulletins where audience = 'quality:knowsley' order by period_start")
    assert [str(r["period_start"])[:10] for r in reports] == ["2024-07-10", "2024-07-15"]  # the undated file: as-of date
    html = Path(reports[0]["path"]).read_text(encoding="utf-8")
    for phrase in ("KNO-2", "aware_date 12/05/2024 is after notified_date 10/05/2024", "Child Name, Home Postcode",
                   "cannot be opened", "notification_id names a notification that has not been loaded",
                   "Loaded, but please correct", "KNO-PR-3", "&#39;Dr Nobody&#39;"):
        assert phrase in html, phrase
    assert "notes for the business unit.txt" in Path(reports[1]["path"]).read_text(encoding="utf-8")
    child_keys = [r["child_key"] for r in env.rows("select child_key from notifications")]
    for text in (html, Path(reports[0]["path"]).with_suffix(".txt").read_text(encoding="utf-8")):
        assert not any(ref in text for ref in CHILD_REFS + DROPPED_VALUES + child_keys)
    assert all(f["quality_report_id"] is not None for f in files.values())
    mails = env.outbox()
    to_kno = [m for m in mails if m["To"] == "safeguarding.data@knowsley.gov.uk"]
    assert sorted(m["Subject"] for m in to_kno) == [
        "Data quality report: Knowsley return of 10 July 2024", "Data quality report: Knowsley return of 15 July 2024"]
    assert [m["Subject"] for m in mails if m["To"] == "lscp.data@liverpool.gov.uk"] == [
        "Data quality report: Liverpool return of 10 July 2024"]

    # --- late and missing returns: Q1 2024 missing for both, Q2 on time; the business unit told once
    expected = {(r["partnership_code"], str(r["period_end"])[:10]): (r["status"], r["received_date"])
                for r in env.rows("select * from return_expectations where as_of_date = :d", d=RUN_1)}
    assert {k: v[0] for k, v in expected.items()} == {
        ("knowsley", "2024-03-31"): "missing", ("liverpool", "2024-03-31"): "missing",
        ("knowsley", "2024-06-30"): "on_time", ("liverpool", "2024-06-30"): "on_time"}
    to_unit = sorted(m["Subject"] for m in mails if m["To"] == "business.unit@merseyside-safeguarding.gov.uk")
    assert to_unit == ["Return missing: Knowsley, quarter ending 31 March 2024",
                       "Return missing: Liverpool, quarter ending 31 March 2024"]
    sends_before = env.scalar("select count(*) from circulation_log")
    assert sends_before == len(mails) and env.scalar("select count(*) from circulation_log where status != 'sent'") == 0

    # === second run: a file sent twice, and a return that corrects quarantined rows ==============
    kno = env.inbox / "knowsley"
    (kno / "Notifications_2024-07-10.CSV").write_bytes((kno / "notifications_2024-07-10.csv").read_bytes())
    (kno / "notifications_2024-07-18.csv").write_text(KNO_NOTIFICATIONS_CORRECTED, encoding="utf-8")
    (kno / "rapid_reviews_2024-07-18.csv").write_text(KNO_RAPID_REVIEWS_CORRECTED, encoding="utf-8")

    run_returns(dagbag, RUN_2)

    new_files = env.rows("select * from return_files where return_date = '2024-07-18' order by file_id")
    assert [(f["file_name"], f["status"], f["rows_loaded"]) for f in new_files] == [
        ("notifications_2024-07-18.csv", "loaded", 2), ("rapid_reviews_2024-07-18.csv", "loaded", 1)]
    assert env.scalar("select count(*) from return_files") == 9  # the copy was not loaded again
    # The corrected row is the current state; the quarantined one is resolved by the new file.
    kno2_now = env.rows("select * from notifications where notification_id = 'KNO-2'")[0]
    assert (str(kno2_now["aware_date"])[:10], kno2_now["age_years"], kno2_now["source_file_id"]) == (
        "2024-05-08", 9, new_files[0]["file_id"])
    for record, file_row in (("KNO-2", new_files[0]), ("KNO-RR-4", new_files[1])):
        q = _quarantine(env, record)[0]
        assert q["resolved_by_file_id"] == file_row["file_id"] and q["resolved_at"] is not None, record
    assert env.rows("select superseded_by_file_id from row_flags where record_id = 'KNO-4'") == [
        {"superseded_by_file_id": None}]  # not sent again: its flag is still current
    # History: who sent what, when.
    history = env.rows("select h.record_id, f.file_name, h.return_date from record_history h "
                       "join return_files f on f.file_id = h.file_id where h.record_id = 'KNO-1' order by h.history_id")
    assert [(h["file_name"], str(h["return_date"])[:10]) for h in history] == [
        ("notifications_2024-07-10.csv", "2024-07-10"), ("notifications_2024-07-18.csv", "2024-07-18")]
    # A report for the new return only, naming what it corrected; nothing sent twice.
    mails = env.outbox()
    assert len(mails) == sends_before + 1
    new_report = env.rows("select * from bulletins where audience = 'quality:knowsley' and period_start = '2024-07-18'")[0]
    text = Path(new_report["path"]).with_suffix(".txt").read_text(encoding="utf-8")
    assert "notifications KNO-2 (notifications_2024-07-10.csv, row 5)" in text
    assert "rapid_reviews KNO-RR-4 (rapid_reviews_2024-07-10.csv, row 5)" in text
    assert env.scalar("select count(*) from return_expectations where as_of_date = :d", d=RUN_2) == 4

    # --- no raw child reference or dropped value anywhere in the warehouse -----------------------
    everything = env.every_table_text()
    raw = db_file_bytes(sqlite_url)
    for value in CHILD_REFS + DROPPED_VALUES:
        assert value not in everything, value
        for encoding in ("utf-8", "cp1252", "utf-16-le"):
            assert value.encode(encoding) not in raw, (value, encoding)
