"""Hostile values (issue 14): one value must never fail a partnership's load, on either database.

The same return goes through `ingest_partnership` into an SQLite and a PostgreSQL warehouse, and
both must end with the same quarantine and return_files rows: an id over 100 characters, a footer
row whose first cell is 150 characters long, a text value over its String(200) column, a NUL byte
after the first 64 KiB of a CSV, dates that do not exist (ISO, day first, Excel serials out of
range), and personal details typed into notification_id (a phone number, raw child references,
one of them in a row missing its first cell) are each quarantined with a reason naming the column
and the rule, while the good rows of the same files and the other files load. None of the planted
values is in any table or in the data quality report.
"""
from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from reviews.core import warehouse as wh
from reviews.core.template import ID_MAX_LENGTH
from reviews.returns import quality
from reviews.returns.ingest import ingest_partnership
from reviews.returns.quality_reports import build_quality_reports

KEY = b"hostile-values-test-key-0123456789"
AS_OF = date(2024, 7, 31)
CLOCK = lambda: datetime(2030, 1, 1, tzinfo=timezone.utc)  # noqa: E731
HEADER = ("notification_id,child_ref,incident_date,aware_date,notified_date,incident_type,age_years,sex,"
          "ethnicity,disability,looked_after,cp_plan,cin_plan,known_to_csc")
PHONE = "07700 900123"
PHONE_IN_CODE = "0151 496 0000"
CHILD = "LIV123456"  # a raw child reference typed as the id
SHIFTED_CHILD = "LIV654321"  # the child reference of a row missing its first cell
EMAIL = "jane.doe@example.org"
FOOTER = ("Prepared by the Knowsley data team for the business unit. Any queries about "
          f"this return to {EMAIL} please or ring the duty desk").ljust(150, ".")
LONG_ID = "KNO-" + "L" * 116  # 120 characters: over notifications.notification_id's String(100)
PLANTED = (PHONE, PHONE_IN_CODE, CHILD, SHIFTED_CHILD, EMAIL, FOOTER[:60], LONG_ID[:60], "Total rows 15")
MAIN = "notifications_2024-06-30.csv"
BIG = "notifications_2024-05-31.csv"
RAPID = "rapid_reviews_2024-06-30.csv"


def _values(nid: str, ref: str, **over) -> list[str]:
    values = {"notification_id": nid, "child_ref": ref, "incident_date": "01/05/2024", "aware_date": "02/05/2024",
              "notified_date": "08/05/2024", "incident_type": "death", "age_years": "7", "sex": "female",
              "ethnicity": "", "disability": "N", "looked_after": "N", "cp_plan": "N", "cin_plan": "N",
              "known_to_csc": "Y", **over}
    return [values[c] for c in HEADER.split(",")]


def _row(nid: str, ref: str, **over) -> str:
    return ",".join(_values(nid, ref, **over))


def _csv(*rows: str) -> str:
    return HEADER + "\r\n" + "\r\n".join(rows) + "\r\n"


# Spreadsheet row -> (record_id kept in quarantine, rule ids, a phrase of the reason) of MAIN.
# Rows 6 and 12 break only `flag` rules (config quality.severity): loaded, in FLAGGED below.
EXPECTED = {
    4: ("withheld: row 4", "identifier:notification_id",
        f"notification_id is not a valid identifier (withheld: it is longer than {ID_MAX_LENGTH} characters)"),
    5: ("withheld: row 5", "identifier:notification_id",
        "notification_id is not a valid identifier (withheld: the row holds nothing else, like a note or a total)"),
    7: ("withheld: row 7", "identifier:notification_id",
        "notification_id is not a valid identifier (withheld: it is mostly digits, like a phone or NHS number)"),
    8: ("withheld: row 8", "identifier:notification_id",
        "notification_id is not a valid identifier (withheld: it has 6 or more digits in a row"),
    9: ("withheld: row 9", "identifier:notification_id",
        "notification_id is not a valid identifier (withheld: it has 6 or more digits in a row"),
    10: ("KNO-D1", "date:aware_date", "aware_date '2024-02-30' is not a date"),
    11: ("KNO-D2", "date:incident_date", "incident_date '2024-13-01' is not a date"),
    13: ("KNO-D4", "date:aware_date", "aware_date '30/02/2024' is not a date"),
    14: ("KNO-D5", "date:aware_date", "aware_date '99999' is not a date"),
    15: ("KNO-E1", "code:incident_type", "incident_type (withheld: it looks like a phone number) is not one of"),
    16: ("withheld: row 16", "identifier:notification_id",
         "notification_id is not a valid identifier (withheld: it has characters other than letters, digits"),
    17: ("withheld: row 17", "identifier:notification_id",
         "notification_id is not a valid identifier (withheld: the row holds nothing else, like a note or a total)"),
}


# (file, spreadsheet row) -> (record_id, rule id, original text) of the rows loaded with a flag.
FLAGGED = {
    (MAIN, 6): ("KNO-T1", "length:ethnicity", "(withheld: it is longer than 40 characters)"),
    (MAIN, 12): ("KNO-D3", "date:notified_date", "'2024-06-31'"),
    (BIG, 862): ("KNO-B860", "code:sex", "(withheld: it has characters that cannot be shown)"),
}


def _drop(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / MAIN).write_text(_csv(
        _row("KNO-G1", "REF-G1"),                                   # 2: good
        _row("KNO-G2", "REF-G2"),                                   # 3: good
        _row(LONG_ID, "REF-L1"),                                    # 4: id over 100 characters
        FOOTER + "," * 13,                                          # 5: a footer note, 150 characters
        _row("KNO-T1", "REF-T1", ethnicity="x" * 250),              # 6: text over String(200)
        _row(PHONE, "REF-P1"),                                      # 7: a phone number as the id
        _row(CHILD, "REF-C1"),                                      # 8: a child reference as the id
        ",".join(_values("KNO-S1", SHIFTED_CHILD)[1:]),             # 9: missing its first cell
        _row("KNO-D1", "REF-D1", aware_date="2024-02-30"),          # 10: dates that do not exist
        _row("KNO-D2", "REF-D2", incident_date="2024-13-01"),       # 11
        _row("KNO-D3", "REF-D3", notified_date="2024-06-31"),       # 12
        _row("KNO-D4", "REF-D4", aware_date="30/02/2024"),          # 13: day first
        _row("KNO-D5", "REF-D5", aware_date="99999"),               # 14: an Excel serial out of range
        _row("KNO-E1", "REF-E1", incident_type=PHONE_IN_CODE),      # 15: a phone number in a code
        _row("KNO-X1;DROP", "REF-X1"),                              # 16: not an id's characters
        "Total rows 15" + "," * 13,                                 # 17: a total under the table
    ), encoding="utf-8")
    assert len(FOOTER) == 150
    # A NUL byte after the first 64 KiB (which is what the binary sniff reads).
    rows = [_row(f"KNO-B{i}", f"REF-B{i}", ethnicity="White British") for i in range(900)]
    rows[850] = _row("KNO-B850", "REF-B850", ethnicity="White\x00British")  # text: screened at ingest
    rows[860] = _row("KNO-B860", "REF-B860", sex="fe\x00male")  # a code: never a valid one
    rows[870] = _row("KNO-B870", "REF\x00B870")  # the child reference: hashed, but not what was meant
    text = _csv(*rows)
    assert text.index("\x00") > 64 * 1024
    (folder / BIG).write_bytes(text.encode("utf-8"))
    (folder / RAPID).write_text(
        "rapid_review_id,notification_id,completed_date,outcome,panel_response_date,panel_decision\r\n"
        "KNO-RR1,KNO-G1,20/05/2024,lcspr,,\r\n", encoding="utf-8")


def _table_rows(engine, table: sa.Table) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(table)).all()]


def _outcome(engine) -> dict:
    """What must be identical on both databases (no ids, times or paths that differ by design)."""
    q, rf = wh.quarantine.c, wh.return_files.c
    with engine.connect() as conn:
        quarantined = sorted(tuple(r) for r in conn.execute(sa.select(
            q.dataset, q.file_name, q.row_number, q.record_id, q.failed_checks, q.failed_rules, q.raw_values)).all())
        files = sorted(tuple(r) for r in conn.execute(sa.select(
            rf.file_name, rf.status, rf.rows_read, rf.rows_loaded, rf.rows_quarantined, rf.error, rf.notes)).all())
        ids = sorted(conn.execute(sa.select(wh.notifications.c.notification_id)).scalars())
        rapid = sorted(conn.execute(sa.select(wh.rapid_reviews.c.rapid_review_id)).scalars())
        fl = wh.row_flags.c
        flags = sorted(tuple(r) for r in conn.execute(sa.select(
            fl.file_name, fl.row_number, fl.record_id, fl.rule_id, fl.original_text, fl.message, fl.blanked)).all())
    return {"quarantine": quarantined, "files": files, "notifications": ids, "rapid_reviews": rapid, "flags": flags}


def _ingest(tmp_path: Path, url: str, name: str, cfg) -> tuple[dict, str, list[str]]:
    engine = wh.make_engine(url)
    try:
        summary = ingest_partnership(engine, cfg, "knowsley", tmp_path / "inbox", tmp_path / f"raw-{name}", KEY,
                                     AS_OF, clock=CLOCK, docs_dir=tmp_path / f"quality-{name}" / "docs")
        assert summary.files_failed == 0
        build_quality_reports(engine, cfg, "knowsley", tmp_path / f"quality-{name}", AS_OF, clock=CLOCK)
        stored = "\n".join(repr(row) for table in wh.metadata.sorted_tables for row in _table_rows(engine, table))
        reports = [p.read_bytes().decode("utf-8") for p in sorted((tmp_path / f"quality-{name}").rglob("*.*"))]
        return _outcome(engine), stored, reports
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_hostile_values_same_outcome_on_sqlite_and_postgres(tmp_path, postgres_url, cfg):
    _drop(tmp_path / "inbox" / "knowsley")
    lite, lite_stored, lite_reports = _ingest(tmp_path, f"sqlite:///{tmp_path / 'warehouse.db'}", "sqlite", cfg)
    pg, pg_stored, pg_reports = _ingest(tmp_path, postgres_url, "postgres", cfg)
    assert lite == pg

    files = {f[0]: f[1:] for f in pg["files"]}
    assert files[MAIN][:4] == ("partial", 16, 4, 12)
    assert files[BIG][:4] == ("partial", 900, 898, 2)
    assert files[RAPID][:4] == ("loaded", 1, 1, 0)
    assert pg["notifications"] == sorted(["KNO-G1", "KNO-G2", "KNO-T1", "KNO-D3",
                                          *(f"KNO-B{i}" for i in range(900) if i not in (850, 870))])
    # Loaded with a flag: the bad cell stored blank, what it said quoted safely (a NUL never shown).
    assert {(f[0], f[1]): (f[2], f[3], f[4]) for f in pg["flags"]} == FLAGGED
    assert all(f[6] == 1 for f in pg["flags"])
    assert pg["rapid_reviews"] == ["KNO-RR1"]

    by_row = {(r[1], r[2]): r for r in pg["quarantine"]}
    for row, (record_id, rule, reason) in EXPECTED.items():
        _ds, _file, _n, got_id, checks, rules, _raw = by_row[(MAIN, row)]
        assert got_id == record_id, row
        assert rule in rules.splitlines(), (row, rules)
        assert reason in checks, (row, checks)
    [nul] = [f for f in pg["flags"] if f[2] == "KNO-B860"]  # a NUL in a code: flagged, stored blank
    assert nul[5] == "sex (withheld: it has characters that cannot be shown) is not one of: female, male, unknown"
    nul = by_row[(BIG, 872)]
    assert nul[3] == "KNO-B870" and nul[5] == "storable"
    assert nul[4] == "child_ref contains a character that cannot be stored (NUL)"
    # A NUL in a text column: quarantined too, though the ingest screen removes control characters
    # from text before the checks (cleaning notes it as read).
    nul = by_row[(BIG, 852)]
    assert nul[3] == "KNO-B850" and nul[5] == "storable"
    assert nul[4] == "ethnicity contains a character that cannot be stored (NUL)"
    assert "\x00" not in lite_stored and "\x00" not in pg_stored
    # The withheld ids are withheld in the raw values too.
    for row in (4, 5, 7, 8, 9, 16, 17):
        assert json.loads(by_row[(MAIN, row)][6])["notification_id"] == "[withheld]"
    assert json.loads(by_row[(MAIN, 15)][6])["incident_type"] == "[withheld]"

    # Nothing planted is in any table of either warehouse, nor in the reports (HTML and text) or
    # the Data Docs pages.
    assert sum("great_expectations" in r.lower() or "Great Expectations" in r for r in pg_reports) >= 2
    for blob in (lite_stored, pg_stored, *lite_reports, *pg_reports):
        for value in PLANTED:
            assert value not in blob, value
    [html] = [r for r in pg_reports if r.lstrip().startswith("<!DOCTYPE") and f"{MAIN} " in r and "Data quality" in r]
    [text] = [r for r in pg_reports if not r.lstrip().startswith("<!") and f"{MAIN} " in r]
    for shown in (html, text):
        assert all(f"row {n} of {MAIN}" in shown for n in (4, 5, 7, 8, 9, 16, 17))
        assert "Total rows 15" not in shown


@pytest.mark.parametrize("value, problem", [
    ("KNO-N-0001", None),
    ("KNO/R/100", None),
    ("LIV-RR-0001", None),
    ("A" * (ID_MAX_LENGTH + 1), f"it is longer than {ID_MAX_LENGTH} characters"),
    ("KNO-N-0001\x00", "it has characters other than"),
    ("KNO N 0001\n", "it has characters other than"),
    ("ＫＮＯ-１", "it has characters other than"),  # full-width
    ("943 476 5919", "it is mostly digits"),
    ("0151.496.0000", "it is mostly digits"),
    ("LIV123456", "6 or more digits in a row"),
    ("KNO-C-000123", "6 or more digits in a row"),
    ("CH41 5LH", "it looks like a postcode"),
    ("KNO 01-05-2024", "it looks like a date"),
])
def test_identifier_shape(value, problem):
    found = quality.identifier_problem(value, ID_MAX_LENGTH)
    assert (found is None) if problem is None else (problem in found), found


def test_identifier_limit_is_the_warehouse_column_or_the_template():
    # Read from the SQLAlchemy metadata: notification_id is String(100), the template caps at 50.
    assert wh.notifications.c.notification_id.type.length == 100
    assert quality.identifier_limit("notifications", "notification_id") == min(100, ID_MAX_LENGTH)
    assert quality.column_limits("notifications")["ethnicity"] == wh.notifications.c.ethnicity.type.length
    assert "finding" not in quality.column_limits("learning")  # Text: no limit to check


def test_quoted_values_never_personal_or_unprintable():
    assert quality._quote("Death ") == "'Death '"
    assert quality._quote("2024-02-30", date=True) == "'2024-02-30'"
    assert quality._quote("07700 900123") == "(withheld: it looks like a phone number)"
    assert quality._quote("a\x00b") == "(withheld: it has characters that cannot be shown)"
    assert quality._quote("x" * 41).startswith("(withheld: it is longer than 40")


def test_quarantine_record_fits_its_columns():
    raw = json.dumps({"notification_id": "x" * 300, "incident_type": "07700 900123", "ethnicity": "a\ud800"},
                     ensure_ascii=False)
    record_id, stored = quality.quarantine_record(
        "notifications", ["identifier:notification_id", "code:incident_type"], "x" * 300, raw, 14)
    assert record_id == "withheld: row 14" and quality.shown_record_id(record_id, "f.csv", 14) == "row 14 of f.csv"
    assert not quality.identifier_problem(record_id.replace(":", ""), 100)  # ... and no valid id has a ":"
    values = json.loads(stored)
    assert values["notification_id"] == "[withheld]" and values["incident_type"] == "[withheld]"
    stored.encode("utf-8")  # storable: the surrogate is escaped
    # A record id that does not fit quarantine.record_id is never stored as it is.
    assert quality.quarantine_record("notifications", [], "y" * 150, "{}", 3)[0] == "withheld: row 3"


def test_date_rule_checks_existence_on_a_cleaned_frame(cfg):
    from reviews.returns.cleaning import clean_table
    from reviews.returns.readers import EXTRA_COLUMN, ROW_COLUMN

    rows = [_values(f"N-{i}", f"C-{i}", aware_date=d) for i, d in
            enumerate(["2024-02-29", "2024-02-30", "2024-13-01", "2024-06-31", "31/06/2024", "45000", "99999", ""])]
    rows[0][HEADER.split(",").index("ethnicity")] = "a\x00b"  # the rule itself, without the ingest screen
    mapped = pd.DataFrame(rows, columns=HEADER.split(","), dtype=object)
    cleaned = clean_table(mapped, "notifications", cfg.partnership("knowsley"), cfg, KEY, AS_OF)
    cleaned[quality.KEY_COLUMN] = range(len(cleaned))
    cleaned[quality.FILE_COLUMN] = 0
    cleaned[EXTRA_COLUMN] = 0
    cleaned[ROW_COLUMN] = range(2, 2 + len(cleaned))
    result = quality.validate(cleaned, "notifications", cfg)
    bad = {k for k, rules in result.failed_rules.items() if "date:aware_date" in rules}
    assert bad == {1, 2, 3, 4, 6}  # 2024-02-29 exists; 45000 is an Excel serial (2023-03-15); blank is not judged
    assert "storable" in result.failed_rules[0] and all("storable" not in result.failed_rules.get(k, []) for k in range(1, 8))
    assert "ethnicity contains a character that cannot be stored (NUL)" in result.failures[0]
