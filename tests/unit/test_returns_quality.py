"""The quality rules on their own: each one, every rule a row broke, and the words used."""
from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from reviews.returns.cleaning import clean_table
from reviews.privacy.pseudonymise import check_key
from reviews.returns.quality import (
    FILE_COLUMN,
    KEY_COLUMN,
    RuleContext,
    _rules,
    rule_title,
    validate,
    write_data_docs,
)
from reviews.returns.readers import EXTRA_COLUMN, ROW_COLUMN
from reviews.core.template import DATASETS

KEY = check_key("unit-test-key-for-quality-rules")
RETURNED = date(2024, 7, 10)


def _frame(cfg, dataset: str, rows: list[dict], return_date: date = RETURNED, code: str = "knowsley") -> pd.DataFrame:
    cols = DATASETS[dataset].column_names
    raw = pd.DataFrame([{c: str(r.get(c, "")) for c in cols} for r in rows], dtype=object)
    raw[ROW_COLUMN] = range(2, len(rows) + 2)
    raw[EXTRA_COLUMN] = 0
    out = clean_table(raw, dataset, cfg.partnership(code), cfg, KEY, return_date)
    out[KEY_COLUMN] = range(len(out))
    out[FILE_COLUMN] = 0
    return out


def _reasons(result, frame, record_id: str, id_col: str) -> list[str]:
    key = int(frame.loc[frame[id_col] == record_id, KEY_COLUMN].iloc[0])
    return result.failures.get(key, [])


NOTIFICATION = {"notification_id": "N-1", "child_ref": "C-1", "incident_date": "01/05/2024", "aware_date": "02/05/2024",
                "notified_date": "08/05/2024", "incident_type": "death"}


def test_a_row_gets_every_rule_it_broke_in_suite_order(cfg):
    bad = {**NOTIFICATION, "notification_id": "N-2", "child_ref": "", "incident_date": "31/02/2024",
           "aware_date": "12/05/2024", "notified_date": "10/05/2024", "incident_type": "accident", "age_years": "18"}
    frame = _frame(cfg, "notifications", [NOTIFICATION, bad])
    result = validate(frame, "notifications", cfg, RuleContext(as_of=date(2024, 7, 15)))
    assert _reasons(result, frame, "N-1", "notification_id") == []
    assert _reasons(result, frame, "N-2", "notification_id") == [
        "child_ref is blank (it is required)",
        "incident_date '31/02/2024' is not a date (day/month/year or YYYY-MM-DD)",
        "incident_type 'accident' is not one of: death, serious_harm, other",
        "age_years '18' is not a whole number of years from 0 to 17",
        "aware_date 12/05/2024 is after notified_date 10/05/2024",
    ]
    key = int(frame.loc[frame["notification_id"] == "N-2", KEY_COLUMN].iloc[0])
    assert result.failed_rules[key] == ["required:child_ref", "date:incident_date", "code:incident_type",
                                        "age:age_years", "order:aware_date<=notified_date"]


def test_dates_after_the_period_end(cfg):
    late = {**NOTIFICATION, "notified_date": "12/07/2024"}
    frame = _frame(cfg, "notifications", [late])
    # The return is dated 10 July: a date after it is after the return.
    result = validate(frame, "notifications", cfg, RuleContext(as_of=date(2024, 7, 15)))
    assert result.failures[0] == ["notified_date 12/07/2024 is after the date of the return (10/07/2024)"]
    # A pull dated after the run's as-of date (a backfill of a live database) is judged by the as-of date.
    frame = _frame(cfg, "notifications", [{**NOTIFICATION, "notified_date": "05/07/2024"}], return_date=date(2024, 8, 1))
    result = validate(frame, "notifications", cfg, RuleContext(as_of=date(2024, 6, 30)))
    assert result.failures[0] == ["notified_date 05/07/2024 is after the end of the period being loaded (30/06/2024)"]


def test_planned_dates_may_be_in_the_future(cfg):
    finding = {"finding_id": "F-1", "review_id": "R-1", "theme": "neglect", "action_due_date": "31/12/2024",
               "action_completed_date": "01/08/2024"}
    frame = _frame(cfg, "learning", [finding])
    result = validate(frame, "learning", cfg, RuleContext(as_of=RETURNED, known_ids={"practice_reviews": {"R-1"}}))
    assert result.failures[0] == ["action_completed_date 01/08/2024 is after the date of the return (10/07/2024)"]


def test_references_are_judged_only_against_what_is_known(cfg):
    rrs = [{"rapid_review_id": "RR-1", "notification_id": "N-1"}, {"rapid_review_id": "RR-2", "notification_id": "N-9"}]
    frame = _frame(cfg, "rapid_reviews", rrs)
    result = validate(frame, "rapid_reviews", cfg, RuleContext(as_of=RETURNED, known_ids={"notifications": {"N-1"}}))
    assert _reasons(result, frame, "RR-1", "rapid_review_id") == []
    assert _reasons(result, frame, "RR-2", "rapid_review_id") == [
        "notification_id N-9 does not name a notification that has been loaded "
        "(none with that id in the warehouse or among the valid rows of this return)"]
    # Without a context (a dataset on its own) references are not judged.
    assert validate(frame, "rapid_reviews", cfg).failures == {}
    # A practice review below the LCSPR threshold names no notification: blank is allowed.
    reviews = [{"review_id": "R-1", "notification_id": "", "review_type": "single_agency", "decision_date": "01/06/2024",
                "status": "commissioned"}]
    frame = _frame(cfg, "practice_reviews", reviews)
    assert validate(frame, "practice_reviews", cfg, RuleContext(as_of=RETURNED, known_ids={"notifications": set()})).failures == {}


def test_rapid_review_not_before_the_notifications_awareness(cfg):
    rrs = [{"rapid_review_id": "RR-1", "notification_id": "N-1", "completed_date": "01/05/2024"},
           {"rapid_review_id": "RR-2", "notification_id": "N-1", "completed_date": "02/05/2024"},
           {"rapid_review_id": "RR-3", "notification_id": "N-2", "completed_date": "01/05/2024"}]
    frame = _frame(cfg, "rapid_reviews", rrs)
    context = RuleContext(as_of=RETURNED, known_ids={"notifications": {"N-1", "N-2"}},
                          dates={"notifications": {"aware_date": {"N-1": date(2024, 5, 2), "N-2": None}}})
    result = validate(frame, "rapid_reviews", cfg, context)
    assert _reasons(result, frame, "RR-1", "rapid_review_id") == [
        "completed_date 01/05/2024 is before aware_date 02/05/2024 of notification N-1"]
    assert _reasons(result, frame, "RR-2", "rapid_review_id") == []  # same day is fine
    assert _reasons(result, frame, "RR-3", "rapid_review_id") == []  # awareness unknown: not judged


def test_lcspr_authors_come_from_the_approved_list(cfg):
    base = {"notification_id": "", "review_type": "lcspr", "decision_date": "01/06/2024"}
    reviews = [
        {**base, "review_id": "R-1", "author": "independent reviewer a  (regional list)", "status": "in_progress"},
        {**base, "review_id": "R-2", "author": "A. Friend", "status": "completed"},
        {**base, "review_id": "R-3", "author": "", "status": "commissioned"},
        {**base, "review_id": "R-4", "author": "", "status": "in_progress"},
        {**base, "review_id": "R-5", "author": "Partnership business unit", "status": "in_progress",
         "review_type": "local_multi_agency"},
    ]
    frame = _frame(cfg, "practice_reviews", reviews)
    result = validate(frame, "practice_reviews", cfg, RuleContext(as_of=RETURNED))
    got = {r: _reasons(result, frame, r, "review_id") for r in ("R-1", "R-2", "R-3", "R-4", "R-5")}
    assert got == {
        "R-1": [], "R-3": [], "R-5": [],
        "R-2": ["author 'A. Friend' is not on the regional list of approved LCSPR authors"],
        "R-4": ["author is blank: an LCSPR with status 'in_progress' needs its author "
                "(blank is allowed only while it is commissioned)"],
    }


def test_every_rule_has_plain_words(cfg):
    context = RuleContext(as_of=RETURNED, known_ids={"notifications": set(), "practice_reviews": set()},
                          dates={"notifications": {"aware_date": {}}})
    for dataset in DATASETS:
        for rule in _rules(dataset, cfg, context):
            assert rule.title != rule.rule_id and ":" not in rule.title, rule.rule_id
    assert rule_title("cross_order:notifications.aware_date<=completed_date") == "completed_date is before the notification's aware_date"
    assert rule_title("reference:review_id") == "review_id names a practice review that has not been loaded"


def test_data_docs_page_from_the_validation(cfg, tmp_path):
    frame = _frame(cfg, "notifications", [NOTIFICATION, {**NOTIFICATION, "notification_id": "N-2", "incident_type": "x"}])
    result = validate(frame, "notifications", cfg, RuleContext(as_of=RETURNED))
    page = write_data_docs(result, tmp_path / "docs" / "notifications.html")
    html = page.read_text(encoding="utf-8")
    assert "notifications_return" in html and "incident_type" in html
    assert "C-1" not in html  # child references were hashed before GX saw them
    assert write_data_docs(validate(frame.iloc[0:0], "notifications", cfg), tmp_path / "empty.html") is None


@pytest.mark.parametrize("text,expected", [("7", 7), ("07", 7), ("7.0", 7), (" 12 ", 12), ("0", 0)])
def test_ages_stored_as_text_or_floats(cfg, text, expected):
    frame = _frame(cfg, "notifications", [{**NOTIFICATION, "age_years": text}])
    assert frame["age_years"].tolist() == [str(expected)]
    assert validate(frame, "notifications", cfg).failures == {}
