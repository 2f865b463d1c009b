"""Working days the straightforward way: one date at a time against the `holidays` package.

Dev only: the yardstick tests and the timeliness benchmark hold `reviews.core.working_days` to.
"""
from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import holidays

from reviews.core.working_days import _holiday_source


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
