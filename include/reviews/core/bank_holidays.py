"""England and Wales bank holidays: the one list every working-day count uses.

Kept apart from reviews.core.working_days (numpy and pandas, for columns of dates) so that code
run while Airflow parses a DAG file (the config's schedule check, the timetable) can ask whether
a single day is a working day without importing them.
"""
from __future__ import annotations

from datetime import date
from functools import lru_cache

import holidays

CALENDAR_FIRST_YEAR = 2010
CALENDAR_LAST_YEAR = 2040


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
def _holiday_set() -> frozenset[date]:
    return frozenset(bank_holidays())


def is_working_date(day: date) -> bool:
    """One day: Monday to Friday and not a bank holiday (a day outside the calendar's years raises)."""
    if not CALENDAR_FIRST_YEAR <= day.year <= CALENDAR_LAST_YEAR:
        raise ValueError(f"{day} is outside the working-day calendar ({CALENDAR_FIRST_YEAR} to {CALENDAR_LAST_YEAR})")
    return day.weekday() < 5 and day not in _holiday_set()
