"""England and Wales working days, vectorised over whole columns of dates.

Statutory clocks (docs/design.md, "Statutory timeliness rules") count working days: Monday to Friday,
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

The numpy business-day calendar (`calendar()`) is built once per process and turned into two
lookup tables (`working_day_index()`), so adding or counting working days over a column is a
couple of array lookups, faster than np.busday_offset/np.busday_count on the same column.

Scalars in (datetime.date, ISO string, numpy.datetime64) give python scalars out (date, int,
bool; None for a missing date); array-likes give numpy arrays (datetime64[D] for dates). Missing
dates (None, NaT, '') pass through as NaT, except in working_days_between (see there). Plain per-date
loops to check these against are in the dev package (`reviews_dev.working_days_reference`).
"""
from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from reviews.core.bank_holidays import (  # noqa: F401  (one list; re-exported for callers)
    CALENDAR_FIRST_YEAR,
    CALENDAR_LAST_YEAR,
    _holiday_source,
    bank_holidays,
)

CALENDAR_START = np.datetime64(f"{CALENDAR_FIRST_YEAR}-01-01", "D")
CALENDAR_END = np.datetime64(f"{CALENDAR_LAST_YEAR}-12-31", "D")
WEEKMASK = "1111100"  # Monday to Friday
NAT = np.datetime64("NaT", "D")


class OutsideCalendarError(ValueError):
    """A date falls outside the years whose bank holidays the calendar knows."""


# --- the calendar -----------------------------------------------------------------------------


@lru_cache(maxsize=1)
def calendar() -> np.busdaycalendar:
    """The one numpy business-day calendar (Mon-Fri less bank holidays), built once."""
    return np.busdaycalendar(weekmask=WEEKMASK, holidays=np.array(bank_holidays(), dtype="datetime64[D]"))


@lru_cache(maxsize=1)
def working_day_index() -> tuple[np.ndarray, np.ndarray]:
    """(before, days): the calendar as two lookup tables, built once from np.is_busday.

    `before[i]` is the number of working days in [CALENDAR_START, CALENDAR_START + i), for every
    day i of the calendar and the day after it; `days[k]` is the k-th working day (datetime64[D]).
    Every clock is then a lookup: day n of a clock started on d is
    `days[before[d] + n]` (before[d] is also the position of day 0, the first working day on or
    after d), and the working days in [s, e) are `before[e] - before[s]`. Both tables hold about
    11,000 small integers, so they stay in the processor's cache; a column of a million dates
    costs a few milliseconds, several times less than np.busday_offset/np.busday_count on it.
    """
    span = int((CALENDAR_END - CALENDAR_START).astype(np.int64)) + 1
    working = np.is_busday(CALENDAR_START + np.arange(span), busdaycal=calendar())
    before = np.zeros(span + 1, dtype=np.int32)
    np.cumsum(working, out=before[1:])
    days = CALENDAR_START + np.flatnonzero(working).astype("timedelta64[D]")
    before.flags.writeable = days.flags.writeable = False  # shared by every caller
    return before, days


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
        return values.astype("datetime64[D]", copy=False)
    series = pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values
    if series.dtype.kind == "M":
        if getattr(series.dt, "tz", None) is not None:
            series = series.dt.tz_localize(None)
        return series.to_numpy().astype("datetime64[D]", copy=False)
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
    if days.size == 0:
        return
    missing = np.isnat(days)
    known = days[~missing] if missing.any() else days
    if known.size and (known.min() < CALENDAR_START or known.max() > CALENDAR_END):
        bad = known[(known < CALENDAR_START) | (known > CALENDAR_END)][0]
        raise OutsideCalendarError(
            f"{what} {bad} is outside the working-day calendar "
            f"({CALENDAR_FIRST_YEAR}-{CALENDAR_LAST_YEAR}); extend CALENDAR_*_YEAR in reviews.core.working_days"
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


def _positions(days: np.ndarray) -> np.ndarray:
    """Days since CALENDAR_START as integers (known, in-calendar dates only)."""
    return days.view(np.int64) - CALENDAR_START.astype(np.int64)


def working_day_ordinals(dates: Any) -> np.ndarray:
    """Each date's day 0 as a position in the sequence of working days (int64 array).

    Day n of a clock started on d is `working_days_at(working_day_ordinals(d) + n)`, and the
    working days in [s, e) are `working_day_ordinals(e) - working_day_ordinals(s)`: the building
    blocks of add_working_days and working_days_between, for callers that reuse one start
    column for several clocks. Dates must be known and inside the calendar.
    """
    days = np.asarray(to_days(dates))
    if np.isnat(days).any():
        raise ValueError("working_day_ordinals: missing dates; select the known rows first")
    _check_in_calendar(days, "date")
    before, _ = working_day_index()
    return before[_positions(days)].astype(np.int64)


def working_days_at(ordinals: Any) -> np.ndarray:
    """The working days at these positions of the sequence (datetime64[D]); OutsideCalendarError
    for a position outside the calendar's years."""
    k = np.asarray(ordinals)
    _, working = working_day_index()
    outside = (k < 0) | (k >= len(working))
    if outside.any():
        raise OutsideCalendarError(
            f"a date {'before' if int(np.ravel(k)[np.argmax(np.ravel(outside))]) < 0 else 'after'} the "
            f"working-day calendar ({CALENDAR_FIRST_YEAR}-{CALENDAR_LAST_YEAR}) was needed; extend "
            "CALENDAR_*_YEAR in reviews.core.working_days"
        )
    return working[k]


def add_working_days(start: Any, n: Any) -> Any:
    """Day n of a clock started on `start` (n may be negative, or an array matching start).

    The start is first rolled forward to a working day (Day 0), then moved n working days.
    So a negative n from a Saturday counts back from the following Monday: 7 working days
    before a Saturday publication is the same day as before the Monday after it.
    """
    days = to_days(start)
    offsets = _as_int(n)
    missing = np.isnat(days)
    if missing.any():
        days, offsets = np.broadcast_arrays(days, offsets)
        k = working_day_ordinals(np.where(missing, CALENDAR_START, days)) + offsets
        try:
            result = np.where(missing, NAT, working_days_at(np.where(missing, 0, k)))
        except OutsideCalendarError:
            raise OutsideCalendarError(_outside_message(days, offsets, ~missing & ((k < 0) | (k >= _days_known())))) from None
    else:  # the common case for whole columns: no masking
        k = working_day_ordinals(days) + offsets
        try:
            result = working_days_at(k)
        except OutsideCalendarError:
            raise OutsideCalendarError(_outside_message(days, offsets, (k < 0) | (k >= _days_known()))) from None
    return _out_dates(result, np.ndim(result) == 0)


def _days_known() -> int:
    return len(working_day_index()[1])


def _outside_message(days: np.ndarray, offsets: np.ndarray, outside: np.ndarray) -> str:
    i = int(np.argmax(np.ravel(outside)))
    first, n_first = (np.ravel(np.broadcast_to(a, np.shape(outside)))[i] for a in (days, offsets))
    return (f"working day {n_first} from {first} is outside the working-day calendar "
            f"({CALENDAR_FIRST_YEAR}-{CALENDAR_LAST_YEAR}); extend CALENDAR_*_YEAR in reviews.core.working_days")


def working_days_between(start: Any, end: Any) -> Any:
    """Working days from day 0 (start rolled forward) up to, not including, `end`.

    This is "working days taken": 0 when done on day 0, n when done on day n. Both ends count
    as their next working day (done on a Saturday = done on the Monday), so the answer is the
    signed distance between the two in the working-day sequence, negative when `end` comes
    before day 0. A scalar call with a missing date gives None; arrays must not hold missing
    dates (there is no honest integer for them), so mask those rows first.

    The working days in [start, end) are exactly those in [day 0, end rolled forward), because
    the days either roll skips are not working days; so the answer is a difference of two
    lookups, whichever date comes first.
    """
    s, e = np.broadcast_arrays(to_days(start), to_days(end))
    missing = np.isnat(s) | np.isnat(e)
    if s.ndim == 0 and bool(missing):
        return None
    if missing.any():
        raise ValueError("working_days_between: missing dates in an array; select the known rows first")
    _check_in_calendar(s, "start date")
    _check_in_calendar(e, "end date")
    before, _ = working_day_index()
    counts = before[_positions(e)].astype(np.int64) - before[_positions(s)]
    return int(counts) if counts.ndim == 0 else counts


def add_calendar_months(dates: Any, months: Any) -> Any:
    """Date plus whole calendar months, clamped to month end (31 Aug + 6 = 28/29 Feb).

    For calendar-month clocks (LCSPR completion); no working-day rule applies. Works from a
    small table of the first day of each month the dates need (one unit conversion per date).
    """
    days = to_days(dates)
    n = _as_int(months)
    known = ~np.isnat(days)
    shape = np.broadcast_shapes(days.shape, n.shape)
    if not known.any():
        result = np.full(shape, NAT)
        return _out_dates(result, len(shape) == 0)
    month = days.astype("datetime64[M]").view(np.int64)  # months since 1970-01
    lo = int(month[known].min()) + min(int(n.min()), 0)
    hi = int(month[known].max()) + max(int(n.max()), 0) + 1
    first_day = np.arange(lo, hi + 1).astype("datetime64[M]").astype("datetime64[D]").view(np.int64)
    i = np.where(known, month - lo, 0)
    day_of_month = np.where(known, days.view(np.int64) - first_day[i], 0)  # 0-based
    target = i + n
    start, length = first_day[target], first_day[target + 1] - first_day[target]
    result = (start + np.minimum(day_of_month, length - 1)).view("datetime64[D]")
    result = np.where(known, result, NAT)
    return _out_dates(result, len(shape) == 0)
