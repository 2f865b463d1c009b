"""England and Wales working days: hand-worked dates, the GOV.UK cross-check, and properties."""
from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from govuk_bank_holidays.bank_holidays import BankHolidays
from hypothesis import given, settings
from hypothesis import strategies as st

from reviews.core.working_days import (
    OutsideCalendarError,
    add_calendar_months,
    add_working_days,
    bank_holidays,
    calendar,
    is_working_day,
    next_working_day_on_or_after,
    working_days_between,
)
from reviews_dev.working_days_reference import add_working_days_reference, working_days_between_reference

D = date


# --- hand-worked holidays ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "day",
    [
        D(2024, 3, 29),  # Good Friday
        D(2024, 4, 1),  # Easter Monday
        D(2021, 12, 27),  # Christmas Day substitute (25th a Saturday)
        D(2021, 12, 28),  # Boxing Day substitute (26th a Sunday)
        D(2022, 1, 3),  # New Year's Day substitute
        D(2022, 6, 2),  # spring bank holiday moved for the jubilee
        D(2022, 6, 3),  # platinum jubilee
        D(2022, 9, 19),  # state funeral of Queen Elizabeth II
        D(2022, 12, 26),  # Boxing Day
        D(2022, 12, 27),  # Christmas Day substitute (25th a Sunday)
        D(2023, 1, 2),  # New Year's Day substitute
        D(2023, 5, 8),  # coronation of King Charles III
        D(2020, 5, 8),  # early May bank holiday moved to VE day
    ],
)
def test_bank_holidays_are_not_working_days(day):
    assert is_working_day(day) is False


@pytest.mark.parametrize(
    "day",
    [
        D(2020, 5, 4),  # first Monday of May 2020: not a holiday (moved to VE day)
        D(2022, 5, 30),  # last Monday of May 2022: not a holiday (moved to 2 June)
        D(2021, 12, 29),  # 27-31 December are working days unless a substitute day
        D(2021, 12, 31),
        D(2022, 12, 28),
        D(2023, 12, 27),
        D(2024, 3, 28),  # Maundy Thursday
    ],
)
def test_ordinary_weekdays_near_holidays_are_working_days(day):
    assert is_working_day(day) is True


def test_weekends_are_not_working_days():
    assert is_working_day(D(2024, 4, 6)) is False  # Saturday
    assert is_working_day(D(2024, 4, 7)) is False  # Sunday


@pytest.mark.parametrize(
    "start, n, expected",
    [
        # Easter 2024: Thursday + 1 skips Good Friday, the weekend and Easter Monday.
        (D(2024, 3, 28), 1, D(2024, 4, 2)),
        (D(2024, 3, 25), 5, D(2024, 4, 3)),  # notification clock over Easter
        (D(2024, 3, 28), 5, D(2024, 4, 8)),
        (D(2024, 3, 30), 0, D(2024, 4, 2)),  # Easter Saturday start: day 0 is Tuesday
        # Christmas / New Year 2021-22: 27, 28 Dec and 3 Jan are substitute days.
        (D(2021, 12, 24), 1, D(2021, 12, 29)),
        (D(2021, 12, 24), 3, D(2021, 12, 31)),
        (D(2021, 12, 31), 1, D(2022, 1, 4)),
        # Christmas / New Year 2022-23: 26 Dec, 27 Dec (substitute) and 2 Jan (substitute).
        (D(2022, 12, 23), 1, D(2022, 12, 28)),
        (D(2022, 12, 30), 1, D(2023, 1, 3)),
        (D(2022, 12, 20), 15, D(2023, 1, 13)),  # a rapid review over the whole break
        # 2022 jubilee (2, 3 June) and state funeral (19 Sept).
        (D(2022, 6, 1), 1, D(2022, 6, 6)),
        (D(2022, 9, 16), 1, D(2022, 9, 20)),
        (D(2022, 9, 12), 5, D(2022, 9, 20)),
        # 2023: early May (1 May) and the coronation (8 May).
        (D(2023, 5, 5), 1, D(2023, 5, 9)),
        (D(2023, 4, 28), 5, D(2023, 5, 9)),
        # 2020: early May holiday on Friday 8 May (VE day); Monday 4 May is a working day.
        (D(2020, 5, 1), 1, D(2020, 5, 4)),
        (D(2020, 5, 7), 1, D(2020, 5, 11)),
        # A start on a Saturday counts from Monday.
        (D(2024, 4, 6), 0, D(2024, 4, 8)),
        (D(2024, 4, 6), 5, D(2024, 4, 15)),
        (D(2024, 4, 7), 15, D(2024, 4, 29)),
        # Counting back (publication notice): 7 working days before Tuesday 12 March 2024.
        (D(2024, 3, 12), -7, D(2024, 3, 1)),
        # ... and before Saturday 16 March: as before Monday 18 March.
        (D(2024, 3, 16), -7, D(2024, 3, 7)),
        # Counting back over Easter 2024.
        (D(2024, 4, 2), -1, D(2024, 3, 28)),
    ],
)
def test_add_working_days_hand_worked(start, n, expected):
    assert add_working_days(start, n) == expected
    assert add_working_days_reference(start, n) == expected


@pytest.mark.parametrize(
    "start, end, expected",
    [
        (D(2024, 3, 28), D(2024, 4, 2), 1),  # Easter
        (D(2024, 3, 25), D(2024, 4, 3), 5),
        (D(2024, 4, 6), D(2024, 4, 8), 0),  # Saturday start, done on Monday: day 0
        (D(2024, 4, 6), D(2024, 4, 6), 0),
        (D(2021, 12, 24), D(2022, 1, 4), 4),  # 24, 29, 30, 31 Dec
        (D(2022, 12, 23), D(2023, 1, 3), 4),  # 23, 28, 29, 30 Dec
        (D(2022, 9, 16), D(2022, 9, 20), 1),  # state funeral
        (D(2023, 5, 5), D(2023, 5, 9), 1),  # coronation
        (D(2024, 4, 3), D(2024, 3, 25), -5),  # end before start: negative
        (D(2024, 4, 10), D(2024, 4, 7), -2),  # a Sunday end counts as the Monday
        (D(2024, 4, 8), D(2024, 4, 6), 0),  # Saturday before a Monday start
    ],
)
def test_working_days_between_hand_worked(start, end, expected):
    assert working_days_between(start, end) == expected
    assert working_days_between_reference(start, end) == expected


def test_next_working_day_on_or_after():
    assert next_working_day_on_or_after(D(2024, 3, 29)) == D(2024, 4, 2)
    assert next_working_day_on_or_after(D(2024, 4, 2)) == D(2024, 4, 2)
    assert next_working_day_on_or_after(D(2022, 12, 24)) == D(2022, 12, 28)


# --- calendar months ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "start, months, expected",
    [
        (D(2023, 8, 31), 6, D(2024, 2, 29)),  # leap year month end
        (D(2022, 8, 31), 6, D(2023, 2, 28)),  # ordinary year month end
        (D(2024, 3, 31), 6, D(2024, 9, 30)),
        (D(2023, 8, 29), 6, D(2024, 2, 29)),
        (D(2023, 8, 30), 6, D(2024, 2, 29)),
        (D(2024, 2, 29), 12, D(2025, 2, 28)),
        (D(2024, 1, 15), 6, D(2024, 7, 15)),
        (D(2023, 10, 31), 6, D(2024, 4, 30)),
        (D(2024, 12, 15), 1, D(2025, 1, 15)),
    ],
)
def test_add_calendar_months_clamps_to_month_end(start, months, expected):
    assert add_calendar_months(start, months) == expected


def test_add_calendar_months_vectorised_with_blanks():
    got = add_calendar_months(np.array(["2023-08-31", "NaT", "2022-08-31"], dtype="datetime64[D]"), [6, 6, 6])
    assert got.dtype == np.dtype("datetime64[D]")
    assert got.astype(object).tolist() == [D(2024, 2, 29), None, D(2023, 2, 28)]


# --- shapes and edges ---------------------------------------------------------------------------


def test_arrays_in_arrays_out_and_blanks_pass_through():
    got = add_working_days(["2024-03-28", None, "", D(2024, 4, 6)], 1)
    assert got.dtype == np.dtype("datetime64[D]")
    assert got.astype(object).tolist() == [D(2024, 4, 2), None, None, D(2024, 4, 9)]
    assert add_working_days(None, 3) is None
    assert add_working_days(float("nan"), 3) is None
    assert add_working_days(np.datetime64("2024-03-28"), 1) == D(2024, 4, 2)
    assert working_days_between(None, D(2024, 1, 1)) is None
    assert is_working_day([D(2024, 3, 29), D(2024, 3, 28)]).tolist() == [False, True]


def test_per_row_offsets():
    got = add_working_days([D(2024, 3, 28)] * 3, np.array([0, 1, -1]))
    assert got.astype(object).tolist() == [D(2024, 3, 28), D(2024, 4, 2), D(2024, 3, 27)]


def test_working_days_between_refuses_blanks_in_arrays():
    with pytest.raises(ValueError, match="missing dates"):
        working_days_between([D(2024, 1, 2), None], [D(2024, 1, 5), D(2024, 1, 5)])


def test_dates_outside_the_calendar_are_refused_not_miscounted():
    with pytest.raises(OutsideCalendarError, match="2009-12-31"):
        add_working_days(D(2009, 12, 31), 5)
    with pytest.raises(OutsideCalendarError):
        add_working_days(D(2040, 12, 31), 5)  # the answer would be in 2041
    with pytest.raises(OutsideCalendarError):
        working_days_between(D(2024, 1, 1), D(2041, 1, 1))


def test_calendar_is_built_once():
    assert calendar() is calendar()
    assert bank_holidays() is bank_holidays()


# --- cross-check against GOV.UK -------------------------------------------------------------------


def _govuk_england_and_wales() -> set[date]:
    bh = BankHolidays(use_cached_holidays=True)  # the package's cached copy: no network
    return {h["date"] for h in bh.get_holidays(division=BankHolidays.ENGLAND_AND_WALES)}


def test_holidays_agree_with_govuk_for_every_year_both_cover():
    govuk = _govuk_england_and_wales()
    years = sorted({d.year for d in govuk})
    assert years[0] <= 2020 and years[-1] >= 2025  # the cached list really covers the years we test
    ours = set(bank_holidays())
    for year in years:
        expected = {d for d in govuk if d.year == year}
        # GOV.UK lists the substitute day only; the holidays package also names the weekend
        # day itself, which is not a working day anyway. Compare the weekdays that are off.
        got = {d for d in ours if d.year == year and d.weekday() < 5}
        assert got == expected, f"{year}: only ours {sorted(got - expected)}, only GOV.UK {sorted(expected - got)}"


def test_govuk_days_are_not_working_days_in_our_calendar():
    govuk = sorted(d for d in _govuk_england_and_wales() if 2010 <= d.year <= 2040)
    assert not is_working_day(govuk).any()


# --- properties: vectorised agrees with the plain loop ---------------------------------------------

dates = st.dates(min_value=D(2015, 1, 1), max_value=D(2028, 12, 31))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(dates, st.integers(min_value=0, max_value=40)), min_size=1, max_size=20))
def test_add_working_days_matches_reference(cases):
    starts, ns = zip(*cases)
    got = add_working_days(list(starts), np.array(ns)).astype(object).tolist()
    assert got == [add_working_days_reference(s, n) for s, n in cases]


@settings(max_examples=200, deadline=None)
@given(dates, st.integers(min_value=-40, max_value=-1))
def test_add_working_days_backwards_matches_reference(start, n):
    assert add_working_days(start, n) == add_working_days_reference(start, n)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(dates, st.integers(min_value=-60, max_value=60)), min_size=1, max_size=20))
def test_working_days_between_matches_reference(cases):
    starts = [s for s, _ in cases]
    ends = [s + timedelta(days=k) for s, k in cases]
    got = working_days_between(starts, ends).tolist()
    assert got == [working_days_between_reference(s, e) for s, e in zip(starts, ends)]


@settings(max_examples=300, deadline=None)
@given(dates, st.integers(min_value=0, max_value=40))
def test_day_n_is_n_working_days_from_the_start(start, n):
    assert working_days_between(start, add_working_days(start, n)) == n


@settings(max_examples=300, deadline=None)
@given(dates, st.integers(min_value=-30, max_value=30), st.integers(min_value=1, max_value=15))
def test_latest_send_day_means_enough_notice(published, gap, k):
    """Sent on or before (published - k working days) exactly when k working days of notice were given."""
    sent = published + timedelta(days=gap)
    assert (sent <= add_working_days(published, -k)) == (working_days_between(sent, published) >= k)


def _months_by_hand(start: date, months: int) -> date:
    import calendar as cal

    year, month0 = divmod(start.month - 1 + months, 12)
    year += start.year
    return date(year, month0 + 1, min(start.day, cal.monthrange(year, month0 + 1)[1]))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), dates), st.integers(min_value=-30, max_value=30)), min_size=1, max_size=20))
def test_add_calendar_months_matches_plain_python(cases):
    starts, months = zip(*cases)
    got = add_calendar_months(list(starts), np.array(months)).astype(object).tolist()
    assert got == [None if s is None else _months_by_hand(s, m) for s, m in cases]
