"""Which dates a run is about, from its data interval (never from the wall clock).

Airflow hands a run its data interval; the business rules need two things from it: the date
open cases are judged as of, and the reporting period a summary covers.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")


def as_of_date(interval_start: datetime | None, interval_end: datetime | None,
               logical_date: datetime | None = None) -> date:
    """The last day covered by the interval, in UK time.

    An interval [1 June, 1 July) is judged as of 30 June; a point interval (start == end, as
    cron-trigger and manual runs have) as of its own day.
    """
    end = interval_end or logical_date or interval_start
    if end is None:
        raise ValueError("the run has no data interval and no logical date")
    if interval_start is not None and interval_end is not None and interval_end > interval_start:
        end = interval_end - timedelta(microseconds=1)
    return end.astimezone(LONDON).date() if end.tzinfo else end.date()


def period_bounds(interval_start: datetime | None, interval_end: datetime | None,
                  logical_date: datetime | None = None) -> tuple[date, date]:
    """(first day, last day) of the reporting period.

    A proper interval is the period itself. A point interval (a manual `dags test`) means the
    calendar month that ends on or before that day: `dags test ... 2024-06-30` covers June 2024,
    `... 2024-07-01` also June 2024 (July is not over yet).
    """
    if interval_start is not None and interval_end is not None and interval_end > interval_start:
        first = interval_start.astimezone(LONDON).date() if interval_start.tzinfo else interval_start.date()
        return first, as_of_date(interval_start, interval_end)
    day = as_of_date(interval_start, interval_end, logical_date)
    next_day = day + timedelta(days=1)
    if next_day.month != day.month:  # the day is a month end: that month is complete
        return day.replace(day=1), day
    last = day.replace(day=1) - timedelta(days=1)
    return last.replace(day=1), last
