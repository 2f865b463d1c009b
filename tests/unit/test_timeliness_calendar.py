"""Due dates through the whole timeliness computation, worked out by hand on a calendar.

Each case names its bank holidays and gives the expected due date literally. Day 0 is the start
date (the next working day if it falls on a weekend or bank holiday); the notification is due on
working day 5, the rapid review on working day 15; an LCSPR 6 calendar months after the
decision; the final report 7 working days before publication. Every case is also put through
the per-row reference implementation, which must agree.
"""
from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from reviews.core.config import load_config
from reviews.timeliness.compute import compute_timeliness, to_records
from reviews_dev.timeliness_reference import compute_timeliness_reference

D = date
AS_OF = D(2028, 12, 29)


@pytest.fixture(scope="module")
def cfg():
    return load_config()


def judge(cfg, notes=(), reviews=(), as_of=AS_OF):
    frames = (pd.DataFrame(list(notes)), pd.DataFrame(columns=["partnership_code", "notification_id", "completed_date"]),
              pd.DataFrame(list(reviews)))
    rows = to_records(compute_timeliness(*frames, cfg, as_of))
    assert rows == compute_timeliness_reference(*frames, cfg, as_of)
    return {(r["stage"], r["record_id"]): r for r in rows}


def notif(aware, notified=None):
    return {"partnership_code": "knowsley", "notification_id": "N1", "incident_date": None, "aware_date": aware,
            "notified_date": notified}


def review(decision=None, completed=None, sent=None, published=None):
    return {"partnership_code": "knowsley", "review_id": "R1", "review_type": "lcspr", "decision_date": decision,
            "completed_date": completed, "final_report_sent_date": sent, "published_date": published}


@pytest.mark.parametrize(
    "aware, notification_due, rapid_review_due",
    [
        # Easter 2024: Good Friday 29 March, Easter Monday 1 April.
        pytest.param(D(2024, 3, 28), D(2024, 4, 8), D(2024, 4, 22), id="easter-2024-maundy-thursday"),
        pytest.param(D(2024, 3, 29), D(2024, 4, 9), D(2024, 4, 23), id="easter-2024-aware-on-good-friday"),
        # Easter 2025: Good Friday 18 April, Easter Monday 21 April, early May bank holiday 5 May.
        pytest.param(D(2025, 4, 16), D(2025, 4, 25), D(2025, 5, 12), id="easter-2025"),
        # Christmas 2020: 25 Dec a Friday, Boxing Day (Saturday) substitute Monday 28 Dec; New Year Friday 1 Jan.
        pytest.param(D(2020, 12, 24), D(2021, 1, 5), D(2021, 1, 19), id="christmas-2020-boxing-day-substitute"),
        # Christmas 2021: 25 and 26 Dec at the weekend, substitutes Mon 27 and Tue 28 Dec; New Year's
        # Day (Saturday) substitute Monday 3 January 2022.
        pytest.param(D(2021, 12, 23), D(2022, 1, 4), D(2022, 1, 18), id="christmas-2021-substitutes"),
        # Aware on Christmas Day 2021 (Saturday): day 0 is Wednesday 29 December.
        pytest.param(D(2021, 12, 25), D(2022, 1, 6), D(2022, 1, 20), id="aware-on-christmas-day-2021"),
        # Christmas 2022: Christmas Day Sunday, substitute Tue 27 Dec; Boxing Day Mon 26; New Year's
        # Day Sunday, substitute Monday 2 January 2023.
        pytest.param(D(2022, 12, 23), D(2023, 1, 4), D(2023, 1, 18), id="christmas-2022-substitutes"),
        # Christmas 2027: both days at the weekend, substitutes Mon 27, Tue 28 Dec; New Year 2028 (a
        # Saturday) substitute Monday 3 January 2028.
        pytest.param(D(2027, 12, 24), D(2028, 1, 5), D(2028, 1, 19), id="christmas-2027-substitutes"),
        # 2022: the state funeral of Queen Elizabeth II, Monday 19 September.
        pytest.param(D(2022, 9, 13), D(2022, 9, 21), D(2022, 10, 5), id="state-funeral-2022"),
        # 2022: spring bank holiday moved to Thu 2 June and the platinum jubilee Fri 3 June; Monday
        # 30 May, the usual spring bank holiday, is a working day.
        pytest.param(D(2022, 5, 30), D(2022, 6, 8), D(2022, 6, 22), id="jubilee-2022"),
        # 2023: early May bank holiday Monday 1 May and the coronation of King Charles III Monday 8 May.
        pytest.param(D(2023, 4, 28), D(2023, 5, 9), D(2023, 5, 23), id="coronation-2023"),
        # 2020: the early May bank holiday moved from Monday 4 May to Friday 8 May (VE day 75);
        # spring bank holiday Monday 25 May.
        pytest.param(D(2020, 5, 4), D(2020, 5, 12), D(2020, 5, 27), id="ve-day-2020-monday-is-working"),
        pytest.param(D(2020, 5, 1), D(2020, 5, 11), D(2020, 5, 26), id="ve-day-2020-over-friday-8-may"),
        # Month ends and leap days: working days simply run on.
        pytest.param(D(2024, 2, 27), D(2024, 3, 5), D(2024, 3, 19), id="over-29-february-2024"),
        pytest.param(D(2028, 2, 25), D(2028, 3, 3), D(2028, 3, 17), id="over-29-february-2028"),
        pytest.param(D(2025, 1, 31), D(2025, 2, 7), D(2025, 2, 21), id="from-a-month-end"),
        pytest.param(D(2023, 2, 28), D(2023, 3, 7), D(2023, 3, 21), id="from-february-end-2023"),
    ],
)
def test_notification_and_rapid_review_due_dates(cfg, aware, notification_due, rapid_review_due):
    rows = judge(cfg, [notif(aware, notification_due)])
    n, rr = rows[("notification", "N1")], rows[("rapid_review", "N1")]
    assert (n["due_date"], n["status"], n["working_days_taken"]) == (notification_due, "met", 5)
    assert rr["due_date"] == rapid_review_due


@pytest.mark.parametrize(
    "aware, notified, status, taken",
    [
        # Aware Friday 23 Dec 2022; notified Wednesday 4 January 2023 = day 5: on time.
        (D(2022, 12, 23), D(2023, 1, 4), "met", 5),
        (D(2022, 12, 23), D(2023, 1, 5), "late", 6),
        # Notified on the substitute Christmas Day (Tue 27 Dec 2022): counts as the next working day.
        (D(2022, 12, 23), D(2022, 12, 27), "met", 1),
        # Aware on the state funeral day: day 0 is Tuesday 20 Sept; notified Tue 27 Sept = day 5.
        (D(2022, 9, 19), D(2022, 9, 27), "met", 5),
        (D(2022, 9, 19), D(2022, 9, 28), "late", 6),
    ],
)
def test_notified_on_or_after_the_due_day_around_holidays(cfg, aware, notified, status, taken):
    r = judge(cfg, [notif(aware, notified)])[("notification", "N1")]
    assert (r["status"], r["working_days_taken"]) == (status, taken)


@pytest.mark.parametrize(
    "decision, due",
    [
        (D(2023, 8, 31), D(2024, 2, 29)),  # 31 August + 6 months: 29 February in a leap year
        (D(2022, 8, 31), D(2023, 2, 28)),  # ... 28 February otherwise
        (D(2027, 8, 31), D(2028, 2, 29)),
        (D(2027, 8, 29), D(2028, 2, 29)),
        (D(2024, 2, 29), D(2024, 8, 29)),  # from a leap day
        (D(2023, 12, 31), D(2024, 6, 30)),  # month end to a shorter month end
        (D(2024, 3, 31), D(2024, 9, 30)),
        (D(2024, 5, 31), D(2024, 11, 30)),
        (D(2024, 7, 31), D(2025, 1, 31)),  # over the new year
        (D(2023, 12, 25), D(2024, 6, 25)),  # calendar months: a bank holiday start changes nothing
    ],
)
def test_lcspr_due_six_calendar_months_after_the_decision(cfg, decision, due):
    r = judge(cfg, reviews=[review(decision, completed=due)])[("lcspr_completion", "R1")]
    assert (r["due_date"], r["status"], r["working_days_taken"]) == (due, "met", None)


@pytest.mark.parametrize(
    "published, latest_send",
    [
        # Published Tue 3 Jan 2023: 7 working days back skip 2 Jan, 27 Dec, 26 Dec: Tuesday 20 December.
        (D(2023, 1, 3), D(2022, 12, 20)),
        # Published Tue 2 April 2024 (after Easter Monday and Good Friday): Wednesday 20 March.
        (D(2024, 4, 2), D(2024, 3, 20)),
        # Published Tue 9 May 2023 (after the coronation and 1 May): Wednesday 26 April.
        (D(2023, 5, 9), D(2023, 4, 26)),
        # Published Tue 20 Sept 2022 (after the state funeral): Thursday 8 September.
        (D(2022, 9, 20), D(2022, 9, 8)),
        # Published on a Saturday, 2 March 2024: as if Monday 4 March: Thursday 22 February.
        (D(2024, 3, 2), D(2024, 2, 22)),
    ],
)
def test_publication_notice_latest_send_day(cfg, published, latest_send):
    rows = judge(cfg, reviews=[review(D(2021, 1, 4), sent=latest_send, published=published)])
    r = rows[("publication_notice", "R1")]
    assert (r["due_date"], r["status"], r["working_days_taken"]) == (latest_send, "met", 7)
