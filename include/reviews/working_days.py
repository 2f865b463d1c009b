"""England and Wales working days, vectorised over whole columns of dates.

Statutory clocks (DESIGN.md, "Statutory timeliness rules") count working days: Monday to Friday,
less England and Wales bank holidays, substitute and one-off days included (2022 jubilee and
state funeral, 2023 coronation, the 2020 VE-day move). The holidays come offline from the
`holidays` package; a test cross-checks them against the GOV.UK list cached by
`govuk-bank-holidays`.

Conventions, the same everywhere:
- Day 0 is the start date; a start on a non-working day counts from the next working day.
- `add_working_days(start, n)` is day n; `working_days_between(start, end)` is how many working
  days lie in [day 0, end), so `working_days_between(s, add_working_days(s, n)) == n`.
- The calendar only knows holidays for CALENDAR_FIRST_YEAR..CALENDAR_LAST_YEAR. Rather than
  silently ignore bank holidays outside it, the functions raise `OutsideCalendarError`.

Scalars in (datetime.date, ISO string, numpy.datetime64) give python scalars out (date, int,
bool; None for a missing date); array-likes give numpy arrays (datetime64[D] for dates). Missing
dates (None, NaT, '') pass through as NaT, except in working_days_between (see there). The
`*_reference` functions are plain per-date loops kept for tests and benchmarks; production code
uses the vectorised ones.
"""
from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache
from typing import Any

import holidays
import numpy as np
import pandas as pd

CALENDAR_FIRST_YEAR = 2010
CALENDAR_LAST_YEAR = 2040
CALENDAR_START = np.datetime64(f"{CALENDAR_FIRST_YEAR}-01-01", "D")
CALENDAR_END = np.datetime64(f"{CALENDAR_LAST_YEAR}-12-31", "D")
WEEKMASK = "1111100"  # Monday to Friday
NAT = np.datetime64("NaT", "D")


class OutsideCalendarError(ValueError):
    """A date falls outside the years whose bank holidays the calendar knows."""


# --- the calendar -----------------------------------------------------------------------------


def _holiday_source() -> holidays.HolidayBase:
    """England's holidays from the `holidays` package, for the calendar's years only."""
    return holidays.country_holidays(
        "GB", subdiv="ENG", years=range(CALENDAR_FIRST_YEAR, CALENDAR_LAST_YEAR + 1)
    )


@lru_cache(maxsize=1)
def bank_holidays() -> tuple[date, ...]:
    """Every England and Wales holiday date the calendar knows, sorted.

    Includes holidays that fall at a weekend (their substitute weekday is listed too); a
    weekend date is not a working day either way.
    """
    return tuple(sorted(_holiday_source()))


@lru_cache(maxsize=1)
def calendar() -> np.busdaycalendar:
    """The one numpy business-day calendar (Mon-Fri less bank holidays), built once."""
    return np.busdaycalendar(weekmask=WEEKMASK, holidays=np.array(bank_holidays(), dtype="datetime64[D]"))


# --- conversion -------------------------------------------------------------------------------


def _is_scalar(value: Any) -> bool:
    is_nan = isinstance(value, float) and value != value
    return value is None or value is pd.NaT or is_nan or isinstance(value, (date, str, np.datetime64))


def to_days(values: Any) -> np.ndarray:
    """Any date-like input as a datetime64[D] array (a 0-d array for a scalar).

    Accepts datetime.date/datetime, ISO 'YYYY-MM-DD' strings, numpy/pandas datetimes, and
    None/NaT/NaN/'' for missing. Times of day are dropped (the clocks count whole days).
    Anything else (day-first text, Excel serial numbers) raises ValueError: those are turned
    into dates at ingest, so meeting one here is a bug upstream.
    """
    if _is_scalar(values):
        return to_days([values]).reshape(())
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":
        return values.astype("datetime64[D]")
    series = pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values
    if series.dtype.kind == "M":
        if getattr(series.dt, "tz", None) is not None:
            series = series.dt.tz_localize(None)
        return series.to_numpy().astype("datetime64[D]")
    series = series.astype(object)
    if len(series) == 0:
        return np.array([], dtype="datetime64[D]")
    try:  # pandas already reads '' as NaT; the slower blank clean-up only when needed
        parsed = pd.to_datetime(series, format="ISO8601")
    except ValueError:
        parsed = pd.to_datetime(series.replace(r"^\s*$", None, regex=True), format="ISO8601")
    return parsed.to_numpy().astype("datetime64[D]")


def _as_int(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


def _out_dates(days: np.ndarray, scalar: bool) -> Any:
    """Back to a python date (None for NaT) for scalar callers; arrays stay arrays."""
    if scalar:
        return None if np.isnat(days) else days.item()
    return days


def _check_in_calendar(days: np.ndarray, what: str) -> None:
    """Refuse dates whose bank holidays are unknown, instead of counting them wrongly."""
    known = days[~np.isnat(days)]
    if known.size and (known.min() < CALENDAR_START or known.max() > CALENDAR_END):
        bad = known[(known < CALENDAR_START) | (known > CALENDAR_END)][0]
        raise OutsideCalendarError(
            f"{what} {bad} is outside the working-day calendar "
            f"({CALENDAR_FIRST_YEAR}-{CALENDAR_LAST_YEAR}); extend CALENDAR_*_YEAR in reviews.working_days"
        )


# --- vectorised functions ---------------------------------------------------------------------


def is_working_day(dates: Any) -> Any:
    """True for a Monday-Friday that is not a bank holiday (False for a missing date)."""
    days = to_days(dates)
    _check_in_calendar(days, "date")
    result = np.is_busday(days, busdaycal=calendar())
    return bool(result) if days.ndim == 0 else result


def next_working_day_on_or_after(dates: Any) -> Any:
    """Day 0 of a clock: the date itself if a working day, else the next working day."""
    return add_working_days(dates, 0)


def add_working_days(start: Any, n: Any) -> Any:
    """Day n of a clock started on `start` (n may be negative, or an array matching start).

    The start is first rolled forward to a working day (Day 0), then moved n working days.
    So a negative n from a Saturday counts back from the following Monday: 7 working days
    before a Saturday publication is the same day as before the Monday after it.
    """
    days = to_days(start)
    _check_in_calendar(days, "start date")
    offsets = _as_int(n)
    missing = np.isnat(days)
    safe = np.where(missing, CALENDAR_START, days)
    result = np.busday_offset(safe, offsets, roll="forward", busdaycal=calendar())
    result = np.where(missing, NAT, result).astype("datetime64[D]")
    _check_in_calendar(result, "result date")
    return _out_dates(result, days.ndim == 0 and offsets.ndim == 0)


def working_days_between(start: Any, end: Any) -> Any:
    """Working days from day 0 (start rolled forward) up to, not including, `end`.

    This is "working days taken": 0 when done on day 0, n when done on day n. Both ends count
    as their next working day (done on a Saturday = done on the Monday), so the answer is the
    signed distance between the two in the working-day sequence, negative when `end` comes
    before day 0 (numpy's own count for end < begin is off by one day for that). A scalar call
    with a missing date gives None; arrays must not hold missing dates (there is no honest
    integer for them), so mask those rows first.
    """
    s, e = np.broadcast_arrays(to_days(start), to_days(end))
    missing = np.isnat(s) | np.isnat(e)
    if s.ndim == 0 and bool(missing):
        return None
    if missing.any():
        raise ValueError("working_days_between: missing dates in an array; select the known rows first")
    _check_in_calendar(s, "start date")
    _check_in_calendar(e, "end date")
    day0 = np.busday_offset(s, 0, roll="forward", busdaycal=calendar())
    day_end = np.busday_offset(e, 0, roll="forward", busdaycal=calendar())
    counts = np.busday_count(day0, day_end, busdaycal=calendar()).astype(np.int64)
    return int(counts) if counts.ndim == 0 else counts


def add_calendar_months(dates: Any, months: Any) -> Any:
    """Date plus whole calendar months, clamped to month end (31 Aug + 6 = 28/29 Feb).

    For calendar-month clocks (LCSPR completion); no working-day rule applies.
    """
    days = to_days(dates)
    n = _as_int(months)
    month = days.astype("datetime64[M]")
    day_of_month = days - month.astype("datetime64[D]")  # 0-based, NaT when missing
    target = month + n
    month_length = (target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")
    result = target.astype("datetime64[D]") + np.minimum(day_of_month, month_length - np.timedelta64(1, "D"))
    result = np.where(np.isnat(days), NAT, result).astype("datetime64[D]")
    return _out_dates(result, days.ndim == 0 and n.ndim == 0)


# --- per-date reference versions (tests and benchmarks only) -----------------------------------


@lru_cache(maxsize=1)
def _reference_holidays() -> holidays.HolidayBase:
    return _holiday_source()


def is_working_day_reference(day: date) -> bool:
    """Plain-Python working-day test straight from the `holidays` package."""
    return day.weekday() < 5 and day not in _reference_holidays()


def add_working_days_reference(start: date, n: int) -> date:
    """Per-date loop version of add_working_days, independent of numpy."""
    day = start
    while not is_working_day_reference(day):
        day += timedelta(days=1)
    step = timedelta(days=1 if n >= 0 else -1)
    remaining = abs(n)
    while remaining:
        day += step
        if is_working_day_reference(day):
            remaining -= 1
    return day


def working_days_between_reference(start: date, end: date) -> int:
    """Per-date loop version of working_days_between: working days in [day 0, end), or minus
    those in [end, day 0) when end is earlier."""
    day0 = add_working_days_reference(start, 0)
    lo, hi, sign = (day0, end, 1) if end >= day0 else (end, day0, -1)
    count = 0
    day = lo
    while day < hi:
        count += is_working_day_reference(day)
        day += timedelta(days=1)
    return sign * count
