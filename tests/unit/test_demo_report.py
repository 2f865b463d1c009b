"""`make demo`'s account of what the business unit has to chase (scripts/demo.py chase_report),
on a hand-made warehouse: late and missing returns, rows loaded with flags (row_flags), stages
judged unknown, case journeys' consistency findings (the latest as-of date only) and the tracker."""
from __future__ import annotations

import importlib.util
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from reviews.core import warehouse as wh

ROOT = Path(__file__).resolve().parents[2]
AS_OF = date(2026, 10, 31)
CHILD_REF = "KNO-C-000123"  # a flag's original text (what the return said) is never shown


@pytest.fixture(scope="module")
def demo():
    spec = importlib.util.spec_from_file_location("demo_script", ROOT / "scripts" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _flag(flag_id: int, code: str, file_id: int, file_name: str, row: int, rule: str, message: str,
          superseded: int | None = None) -> dict:
    return {"flag_id": flag_id, "partnership_code": code, "dataset": "practice_reviews", "record_id": f"{code[:3].upper()}-R-00{row}",
            "file_id": file_id, "file_name": file_name, "row_number": row, "rule_id": rule, "columns": rule.split(":")[-1],
            "blanked": 0, "original_text": CHILD_REF, "message": message, "flagged_at": datetime(2026, 10, 31, tzinfo=timezone.utc),
            "superseded_by_file_id": superseded}


def _journey(code: str, case: str, as_of: date, findings: str | None) -> dict:
    return {"partnership_code": code, "notification_id": case, "as_of_date": as_of, "current_stage": "rapid_review",
            "current_status": "open_on_track", "stages_json": "[]", "findings": findings, "flags": 0, "rejected": 0}


@pytest.fixture()
def engine(tmp_path):
    engine = wh.make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    wh.ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(wh.return_expectations.insert(), [
            {"partnership_code": "knowsley", "period_end": date(2026, 6, 30), "as_of_date": AS_OF,
             "period_start": date(2026, 4, 1), "due_date": date(2026, 7, 10), "received_date": date(2026, 7, 10),
             "status": "on_time"},
            {"partnership_code": "sefton", "period_end": date(2025, 12, 31), "as_of_date": AS_OF,
             "period_start": date(2025, 10, 1), "due_date": date(2026, 1, 10), "received_date": None, "status": "missing"},
            {"partnership_code": "wirral", "period_end": date(2025, 3, 31), "as_of_date": AS_OF,
             "period_start": date(2025, 1, 1), "due_date": date(2025, 4, 10), "received_date": date(2025, 5, 15),
             "status": "late"},
        ])
        conn.execute(wh.row_flags.insert(), [
            _flag(1, "knowsley", 10, "practice_reviews_2026-10-10.csv", 4, "author_needed",
                  "author is blank: an LCSPR with status 'in_progress' needs its author"),
            _flag(2, "knowsley", 10, "practice_reviews_2026-10-10.csv", 7, "approved_author",
                  "author 'Independent reviewer K' is not on the regional list of approved LCSPR authors"),
            _flag(3, "knowsley", 5, "practice_reviews_2026-07-10.csv", 4, "author_needed", "an older flag", superseded=10),
            _flag(4, "liverpool", 20, "return_2026-10-10.xlsx", 12, "date:completed_date",
                  "completed_date 'n/a' is not a date"),
        ])
        conn.execute(wh.timeliness.insert(), [
            {"partnership_code": "liverpool", "stage": "rapid_review", "record_id": "LIV-N-0065", "as_of_date": AS_OF,
             "status": "unknown", "reason": "completed_date 'n/a' is not a date (return_2026-10-10.xlsx row 12)"},
            {"partnership_code": "liverpool", "stage": "notification", "record_id": "LIV-N-0065", "as_of_date": AS_OF,
             "status": "met", "reason": None},
            {"partnership_code": "wirral", "stage": "notification", "record_id": "WIR-N-0007", "as_of_date": AS_OF,
             "status": "unknown", "reason": "aware_date 2025-03-05 is after notified_date 2025-03-01"},
        ])
        conn.execute(wh.case_journeys.insert(), [
            _journey("sefton", "SEF-N-0093", date(2026, 10, 30), "an old finding that is no longer the latest"),
            _journey("sefton", "SEF-N-0093", AS_OF,
                     "the rapid review chose an LCSPR; no LCSPR record 45 working days after the Panel's response"),
            _journey("wirral", "WIR-R-012", AS_OF, "an LCSPR with no rapid review\nsecond finding"),
            _journey("wirral", "WIR-N-0001", AS_OF, None),  # no findings
        ])
    return engine


def test_chase_report_reads_flags_findings_and_the_tracker(demo, engine, tmp_path):
    (tmp_path / "tracker").mkdir()
    xlsx = tmp_path / "tracker" / f"case_tracker_{AS_OF.isoformat()}.xlsx"
    xlsx.write_bytes(b"PK")
    text = demo.chase_report(engine, AS_OF, tmp_path)
    print(text)
    assert "sefton     period ending 2025-12-31: missing, due 2026-01-10, nothing received" in text
    assert "wirral     period ending 2025-03-31: late, due 2025-04-10, received 2025-05-15" in text
    assert "knowsley" not in text.split("Rows loaded with flags")[0]  # on time: not listed
    assert "Rows loaded with flags" in text and ": 4" in text.split("\n\n")[1].splitlines()[0]
    table = text.split("Rows loaded with flags")[1].split("e.g.")[0]
    assert [line.split() for line in table.splitlines() if line.strip().startswith(("knowsley", "liverpool"))] == [
        ["knowsley", "3", "2", "2"], ["liverpool", "1", "1", "1"]]
    # one example per rule kind, current flags only, newest file first
    assert "- return_2026-10-10.xlsx row 12: completed_date 'n/a' is not a date" in text
    assert "- practice_reviews_2026-10-10.csv row 4: author is blank" in text
    assert "row 7: author 'Independent reviewer K' is not on the regional list" in text
    assert "an older flag" not in text
    assert "Stages judged unknown as of 31 October 2026 (statutory_timeliness; never met, late or overdue on a guess): 2" in text
    unknown = text.split("overdue on a guess): 2\n")[1].split("\n\n")[0].splitlines()
    assert unknown == ["  - wirral WIR-N-0007 notification: aware_date 2025-03-05 is after notified_date 2025-03-01",
                       "  - liverpool LIV-N-0065 rapid_review: completed_date 'n/a' is not a date (return_2026-10-10.xlsx row 12)"]
    assert "Consistency findings in case journeys (as of 31 October 2026; case_journeys, 3 cases): 3" in text
    assert "- sefton SEF-N-0093: the rapid review chose an LCSPR" in text and "- wirral WIR-R-012: second finding" in text
    assert "no longer the latest" not in text
    assert f"XLSX for the business unit (internal, pseudonymised keys only): {xlsx}" in text
    assert "/reviews/tracker behind the Airflow login" in text
    assert CHILD_REF not in text


def test_chase_report_before_anything_ran(demo, tmp_path):
    engine = wh.make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    wh.ensure_schema(engine)
    text = demo.chase_report(engine, AS_OF, tmp_path)
    assert "Late and missing returns as of 31 October 2026" in text and "  none" in text
    assert "Rows loaded with flags (row_flags" in text and "no journeys written" in text
    assert "(internal, pseudonymised keys only): not written" in text
