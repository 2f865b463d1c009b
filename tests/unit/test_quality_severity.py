"""Two severities for every quality rule (issue 16, item 1): `reject` quarantines the row, `flag`
loads it with the unusable cell blank, keeps the flag in `row_flags` with the cell's original text
(quoted as messages quote values) and reports it back. Real GX, real ingest, SQLite and PostgreSQL."""
from __future__ import annotations

import dataclasses
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from reviews.core import warehouse as wh
from reviews.core.config import DEFAULT_SEVERITY, QualitySettings
from reviews.privacy.pseudonymise import check_key
from reviews.returns.ingest import ingest_partnership
from reviews.returns.quality import RuleContext, blanked_column, original_text, rule_columns, validate
from reviews.returns.quality_reports import build_quality_reports, flag_action
from tests.unit.test_returns_quality import _frame

KEY = check_key("unit-test-key-for-rule-severities-0")
NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)
AS_OF = date(2024, 10, 31)
APPROVED = "Independent reviewer A (regional list)"

NOTE_HEADER = "notification_id,child_ref,incident_date,aware_date,notified_date,incident_type\r\n"
RR_HEADER = "rapid_review_id,notification_id,completed_date,outcome,panel_response_date,panel_decision\r\n"
PR_HEADER = ("review_id,notification_id,review_type,decision_date,author,methodology,completed_date,"
             "final_report_sent_date,published_date,status\r\n")


# ------------------------------------------------------------------------------ config


def test_the_most_specific_key_wins_and_reject_only_rules_always_reject():
    q = QualitySettings(severity={"default": "flag", "date": "reject", "date:completed_date": "flag",
                                  "practice_reviews.date:completed_date": "reject", "rapid_reviews.order": "reject"})
    assert q.severity_of("date:completed_date", "rapid_reviews") == "flag"
    assert q.severity_of("date:completed_date", "practice_reviews") == "reject"
    assert q.severity_of("date:published_date", "practice_reviews") == "reject"  # kind
    assert q.severity_of("order:completed_date<=panel_response_date", "rapid_reviews") == "reject"  # dataset and kind
    assert q.severity_of("order:decision_date<=completed_date", "practice_reviews") == "flag"  # shipped kind default
    assert q.severity_of("age:age_years", "notifications") == "flag"  # shipped
    assert q.severity_of("reference:notification_id", "rapid_reviews") == "flag"  # the file's default
    # A blank, withheld or repeated id, a ragged row, an unstorable character: always reject.
    for rule in ("required:notification_id", "required:child_ref", "unique:review_id", "identifier:review_id",
                 "ragged_row", "storable"):
        assert q.severity_of(rule, "notifications") == "reject", rule


def test_the_shipped_severities(cfg):
    assert cfg.quality.severity == DEFAULT_SEVERITY
    s = cfg.quality.severity_of
    rejects = [("required:incident_type", "notifications"), ("date:aware_date", "notifications"),
               ("date:decision_date", "practice_reviews"), ("not_after_period_end:incident_date", "notifications"),
               ("reference:notification_id", "rapid_reviews"), ("code:review_type", "practice_reviews"),
               ("code:status", "practice_reviews"), ("code:theme", "learning"), ("code:incident_type", "notifications")]
    flags = [("approved_author", "practice_reviews"), ("author_needed", "practice_reviews"),
             ("date:completed_date", "rapid_reviews"), ("not_after_period_end:notified_date", "notifications"),
             ("age:age_years", "notifications"), ("code:sex", "notifications"), ("code:delay_reason", "practice_reviews"),
             ("code:not_published_reason", "practice_reviews"), ("code:action_status", "learning"),
             ("length:ethnicity", "notifications"), ("order:aware_date<=notified_date", "notifications"),
             ("cross_order:notifications.aware_date<=completed_date", "rapid_reviews")]
    assert [r for r in rejects if s(*r) != "reject"] == [] and [r for r in flags if s(*r) != "flag"] == []


@pytest.mark.parametrize("severity, key, message", [
    ({"date:completed_date": "warn"}, "quality.severity.date:completed_date", "must be reject or flag, not 'warn'"),
    ({"dates": "flag"}, "quality.severity.dates", "unknown rule kind 'dates'"),
    ({"cases.date": "flag"}, "quality.severity.cases.date", "unknown dataset 'cases'"),
    ({"unique": "flag"}, "quality.severity.unique", "cannot be flag"),
    ({"required:review_id": "flag"}, "quality.severity.required:review_id", "cannot be flag"),
])
def test_a_bad_severity_names_the_file_and_the_key(tmp_path, severity, key, message):
    from reviews.core.config import ConfigError, load_config
    from tests.unit.test_config import write

    path = write(tmp_path, lambda raw: raw["quality"].update(severity=severity))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}: {key}: {message}"), str(caught.value)


# ------------------------------------------------------------------------------ validate


def _key(frame, col: str, value: str) -> int:
    return int(frame.loc[frame[col] == value, "_key"].iloc[0])


def test_validate_splits_rejections_from_flags_with_safe_original_text(cfg):
    rows = [
        {"review_id": "R-OK", "review_type": "lcspr", "decision_date": "01/03/2024", "author": APPROVED,
         "status": "in_progress"},
        {"review_id": "R-BLANK", "review_type": "lcspr", "decision_date": "01/03/2024", "author": "",
         "status": "in_progress"},
        {"review_id": "R-UNAPPROVED", "review_type": "lcspr", "decision_date": "01/03/2024", "author": "Dr Somebody",
         "status": "in_progress", "completed_date": "n/a"},
        {"review_id": "R-PHONE", "review_type": "lcspr", "decision_date": "01/03/2024", "author": APPROVED,
         "status": "in_progress", "completed_date": "0151 496 0000"},
        {"review_id": "R-NODECISION", "review_type": "lcspr", "decision_date": "soon", "author": "",
         "status": "in_progress"},
    ]
    frame = _frame(cfg, "practice_reviews", rows)
    result = validate(frame, "practice_reviews", cfg, RuleContext(as_of=AS_OF))
    rejected, rejected_rules = result.rejections()
    k = {r["review_id"]: _key(frame, "review_id", r["review_id"]) for r in rows}
    # A row is quarantined only for a `reject` rule, and then with every rule it broke.
    assert list(rejected) == [k["R-NODECISION"]]
    assert rejected_rules[k["R-NODECISION"]] == ["date:decision_date", "author_needed"]
    assert result.severity("date:decision_date") == "reject" and result.severity("author_needed") == "flag"
    # Rows that broke only flags are loaded, each flag with what the return said, quoted safely.
    assert set(result.flags) == {k["R-BLANK"], k["R-UNAPPROVED"], k["R-PHONE"]}
    assert [(f.rule_id, f.original_text) for f in result.flags[k["R-BLANK"]]] == [("author_needed", None)]
    assert [(f.rule_id, f.original_text) for f in result.flags[k["R-UNAPPROVED"]]] == [
        ("date:completed_date", "'n/a'"), ("approved_author", "'Dr Somebody'")]
    [phone] = result.flags[k["R-PHONE"]]
    assert phone.rule_id == "date:completed_date" and phone.original_text.startswith("(withheld: it looks like")
    assert "0151" not in phone.message and "0151" not in phone.original_text
    # Every failure is still there for Data Docs and counts.
    assert set(result.failures) == set(rejected) | set(result.flags)


def test_which_cells_a_flag_blanks_and_names():
    assert blanked_column("date:completed_date") == "completed_date"
    assert blanked_column("approved_author") == "author"
    assert blanked_column("author_needed") is None  # blank already
    assert blanked_column("order:aware_date<=notified_date") is None  # both dates kept
    assert rule_columns("order:aware_date<=notified_date") == ("aware_date", "notified_date")
    assert rule_columns("cross_order:notifications.aware_date<=completed_date") == ("completed_date",)
    row = {"aware_date": "12/05/2024", "notified_date": "10/05/2024"}
    assert original_text("order:aware_date<=notified_date", row) == "aware_date '12/05/2024', notified_date '10/05/2024'"
    assert flag_action("rapid_reviews", "date:completed_date") == "its rapid review is judged 'unknown' until corrected"
    assert "author" in flag_action("practice_reviews", "author_needed")


# ------------------------------------------------------------------------------ ingest


def _write(folder: Path, name: str, header: str, *lines: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(header + "".join(line + "\r\n" for line in lines), encoding="utf-8")


def _first_return(folder: Path) -> None:
    _write(folder, "notifications_2024-07-10.csv", NOTE_HEADER,
           "KNO-1,CHILD-1,01/05/2024,02/05/2024,03/05/2024,death",
           "KNO-2,CHILD-2,01/05/2024,02/05/2024,03/05/2024,death")
    _write(folder, "rapid_reviews_2024-07-10.csv", RR_HEADER,
           "KNO-RR-1,KNO-1,n/a,lcspr,,",  # completed_date n/a: flagged, loaded blank
           "KNO-RR-2,KNO-2,20/05/2024,lcspr,,")
    _write(folder, "practice_reviews_2024-07-10.csv", PR_HEADER,
           "KNO-PR-1,KNO-1,lcspr,01/06/2024,,,,,,in_progress",            # blank author: flagged
           "KNO-PR-2,KNO-2,lcspr,01/06/2024,Dr Somebody,,,,,in_progress",  # unapproved: flagged, blanked
           "KNO-PR-3,KNO-2,lcspr,not yet,,,,,,in_progress")                # no decision date: rejected


def _ingest(engine, cfg, tmp_path: Path, as_of: date = AS_OF):
    return ingest_partnership(engine, cfg, "knowsley", tmp_path / "inbox", tmp_path / "raw", KEY, as_of,
                              clock=lambda: NOW)


def _rows(engine, sql: str) -> list[dict]:
    """Rows as dicts, dates as ISO text (SQLite gives text, PostgreSQL dates)."""
    with engine.connect() as conn:
        return [{k: v.isoformat() if isinstance(v, date) else v for k, v in r.items()}
                for r in conn.execute(sa.text(sql)).mappings()]


@pytest.mark.parametrize("url", ["sqlite_url", pytest.param("postgres_url", marks=pytest.mark.postgres)])
def test_flagged_rows_load_blank_are_recorded_and_superseded(url, request, tmp_path, cfg):
    engine = wh.make_engine(request.getfixturevalue(url))
    folder = tmp_path / "inbox" / "knowsley"
    _first_return(folder)
    summary = _ingest(engine, cfg, tmp_path)
    assert (summary.rows_read, summary.rows_loaded, summary.rows_quarantined, summary.rows_flagged) == (7, 6, 1, 3)
    files = {f["file_name"]: f for f in _rows(engine, "select * from return_files")}
    assert all(f["rows_read"] == f["rows_loaded"] + f["rows_quarantined"] for f in files.values())
    assert files["practice_reviews_2024-07-10.csv"]["rows_flagged"] == 2
    assert files["rapid_reviews_2024-07-10.csv"]["rows_flagged"] == 1
    assert files["notifications_2024-07-10.csv"]["rows_flagged"] == 0
    assert files["practice_reviews_2024-07-10.csv"]["status"] == "partial"
    # Loaded, the unusable cells blank.
    assert _rows(engine, "select rapid_review_id, completed_date from rapid_reviews order by 1") == [
        {"rapid_review_id": "KNO-RR-1", "completed_date": None},
        {"rapid_review_id": "KNO-RR-2", "completed_date": "2024-05-20"}]
    assert _rows(engine, "select review_id, author from practice_reviews order by 1") == [
        {"review_id": "KNO-PR-1", "author": None}, {"review_id": "KNO-PR-2", "author": None}]
    flags = _rows(engine, "select record_id, dataset, row_number, rule_id, columns, blanked, original_text, message, "
                          "superseded_by_file_id from row_flags order by flag_id")
    assert [(f["record_id"], f["rule_id"], f["original_text"], f["blanked"], f["row_number"]) for f in flags] == [
        ("KNO-RR-1", "date:completed_date", "'n/a'", 1, 2),
        ("KNO-PR-1", "author_needed", None, 0, 2),
        ("KNO-PR-2", "approved_author", "'Dr Somebody'", 1, 3)]
    assert all(f["superseded_by_file_id"] is None for f in flags)
    assert "CHILD-" not in str(flags)
    [q] = _rows(engine, "select record_id, failed_rules from quarantine")
    assert q["record_id"] == "KNO-PR-3" and "date:decision_date" in q["failed_rules"]

    # The quality report lists them under "Loaded, but please correct", counted beside the rejections.
    [report] = build_quality_reports(engine, cfg, "knowsley", tmp_path / "reports", AS_OF, clock=lambda: NOW)
    html = Path(report["path"]).read_text(encoding="utf-8")
    text = Path(report["path"]).with_suffix(".txt").read_text(encoding="utf-8")
    for doc in (html, text):
        part = doc[doc.index("Loaded, but please correct"):]
        for rid in ("KNO-RR-1", "KNO-PR-1", "KNO-PR-2"):
            assert rid in part, rid
        assert "its rapid review is judged" in part and "until corrected" in part
        assert "Dr Somebody" in part and "n/a" in part
        assert "(3 of them with a value to correct)" in doc
        assert "CHILD-" not in doc

    # A later return: a corrected rapid review (supersedes its flag), KNO-PR-3 now with its decision
    # date but still no author (loaded, flagged: resolves its quarantine), KNO-PR-2 not sent (flag stays).
    _write(folder, "rapid_reviews_2024-10-10.csv", RR_HEADER, "KNO-RR-1,KNO-1,21/05/2024,lcspr,,")
    _write(folder, "practice_reviews_2024-10-10.csv", PR_HEADER, "KNO-PR-3,KNO-2,lcspr,02/06/2024,,,,,,in_progress")
    second = _ingest(engine, cfg, tmp_path)
    assert (second.rows_loaded, second.rows_quarantined, second.rows_flagged, second.rows_resolved) == (2, 0, 1, 1)
    new = {f["file_name"]: f["file_id"] for f in _rows(engine, "select * from return_files")}
    flags = {(f["record_id"], f["rule_id"]): f["superseded_by_file_id"] for f in _rows(engine, "select * from row_flags")}
    assert flags == {("KNO-RR-1", "date:completed_date"): new["rapid_reviews_2024-10-10.csv"],
                     ("KNO-PR-1", "author_needed"): None, ("KNO-PR-2", "approved_author"): None,
                     ("KNO-PR-3", "author_needed"): None}
    [q] = _rows(engine, "select record_id, resolved_by_file_id from quarantine")
    assert q == {"record_id": "KNO-PR-3", "resolved_by_file_id": new["practice_reviews_2024-10-10.csv"]}
    assert _rows(engine, "select completed_date from rapid_reviews where rapid_review_id = 'KNO-RR-1'") == [
        {"completed_date": "2024-05-21"}]
    engine.dispose()


def test_flags_of_one_run_are_superseded_in_file_order_and_on_the_file_by_file_path(tmp_path, cfg, sqlite_url):
    """Two returns in one run: the newer one's row supersedes the older one's flag (as two runs would).
    Then a run whose load the warehouse refuses for one file: loaded file by file (_load_isolated),
    the other file's flags are kept as the one-transaction load keeps them."""
    engine = wh.make_engine(sqlite_url)
    folder = tmp_path / "inbox" / "knowsley"
    _write(folder, "notifications_2024-07-10.csv", NOTE_HEADER, "KNO-1,CHILD-1,01/05/2024,02/05/2024,03/05/2024,death")
    _write(folder, "rapid_reviews_2024-07-10.csv", RR_HEADER, "KNO-RR-1,KNO-1,n/a,lcspr,,")
    _write(folder, "rapid_reviews_2024-08-10.csv", RR_HEADER, "KNO-RR-1,KNO-1,TBC,lcspr,,")
    summary = _ingest(engine, cfg, tmp_path)
    assert summary.rows_flagged == 2
    flags = _rows(engine, "select f.original_text, f.superseded_by_file_id, r.file_name from row_flags f "
                          "join return_files r on r.file_id = f.file_id order by f.flag_id")
    later = _rows(engine, "select file_id from return_files where file_name = 'rapid_reviews_2024-08-10.csv'")[0]
    assert [(f["original_text"], f["superseded_by_file_id"]) for f in flags] == [
        ("'n/a'", later["file_id"]), ("'TBC'", None)]

    # File by file: the refused file fails alone; the other's flag supersedes the current one.
    from tests.unit.test_hostile_files import _refuse_a_row

    _refuse_a_row(engine, "KNO-BAD")
    _write(folder, "notifications_2024-09-10.csv", NOTE_HEADER, "KNO-BAD,CHILD-9,01/05/2024,02/05/2024,03/05/2024,death")
    _write(folder, "rapid_reviews_2024-09-11.csv", RR_HEADER, "KNO-RR-1,KNO-1,unknown,lcspr,,")
    third = _ingest(engine, cfg, tmp_path)
    assert (third.files_failed, third.rows_flagged) == (1, 1)
    files = {f["file_name"]: f for f in _rows(engine, "select * from return_files")}
    assert files["notifications_2024-09-10.csv"]["status"] == "failed"
    assert files["rapid_reviews_2024-09-11.csv"]["rows_flagged"] == 1
    current = _rows(engine, "select original_text from row_flags where superseded_by_file_id is null")
    assert current == [{"original_text": "'unknown'"}]
    engine.dispose()


def test_without_flags_every_rule_rejects_as_before(tmp_path, cfg, sqlite_url):
    """`default: reject` and every kind reject: the pre-issue-16 behaviour, from config alone."""
    strict = dataclasses.replace(cfg, quality=QualitySettings(severity={k: "reject" for k in DEFAULT_SEVERITY}))
    engine = wh.make_engine(sqlite_url)
    _first_return(tmp_path / "inbox" / "knowsley")
    summary = _ingest(engine, strict, tmp_path)
    assert (summary.rows_loaded, summary.rows_quarantined, summary.rows_flagged) == (3, 4, 0)
    assert _rows(engine, "select count(*) as n from row_flags") == [{"n": 0}]
    engine.dispose()
