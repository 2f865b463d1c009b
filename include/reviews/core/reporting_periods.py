"""Reporting periods of the learning bulletins (months or calendar quarters) and their send days.

A period is whole calendar months in UK time: a month, or a quarter ending in March, June,
September or December (the financial-year quarters Q1 April-June ... Q4 January-March). The
summary DAG builds a period once it has ended; circulation sends it on the configured working
day after that (see config.CirculationSchedule). Both are worked out here, from dates only,
so the Airflow timetable and the tasks agree.

Light on purpose (standard library only at import): the timetable imports this in the
scheduler. The working-day calendar (reviews.core.working_days, England and Wales bank holidays) is
imported only when a send day is asked for.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from reviews.core.run_dates import period_bounds

MONTHS = (
    "", "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)
_SPAN = {"month": 1, "quarter": 3}


def _month_index(d: date) -> int:
    return d.year * 12 + d.month - 1


def _from_index(i: int) -> date:
    return date(i // 12, i % 12 + 1, 1)


def long_date(d: date) -> str:
    """'30 June 2024', without the locale."""
    return f"{d.day} {MONTHS[d.month]} {d.year}"


@dataclass(frozen=True, order=True)
class Period:
    start: date
    end: date  # inclusive
    kind: str  # month | quarter

    @property
    def label(self) -> str:
        return period_label(self.start, self.end)

    @property
    def short_label(self) -> str:
        """'Jun 2024' or 'Q1 2024-25', for chart axes and narrow table headers."""
        if self.kind == "month":
            return f"{MONTHS[self.start.month][:3]} {self.start.year}"
        fy = self.start.year if self.start.month >= 4 else self.start.year - 1
        q = {4: 1, 7: 2, 10: 3, 1: 4}[self.start.month]
        return f"Q{q} {fy}-{(fy + 1) % 100:02d}"

    def previous(self) -> "Period":
        return period_containing(self.start - timedelta(days=1), self.kind)

    def next(self) -> "Period":
        return period_containing(self.end + timedelta(days=1), self.kind)

    def to_dict(self) -> dict:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "kind": self.kind,
                "label": self.label, "short_label": self.short_label}


def _check_kind(kind: str) -> int:
    if kind not in _SPAN:
        raise ValueError(f"period kind must be 'month' or 'quarter', not {kind!r}")
    return _SPAN[kind]


def period_containing(day: date, kind: str) -> Period:
    span = _check_kind(kind)
    i = _month_index(day)
    first = i - (i % span)  # quarters start in January, April, July, October
    start, after = _from_index(first), _from_index(first + span)
    return Period(start, after - timedelta(days=1), kind)


def last_complete_period(day: date, kind: str) -> Period:
    """The latest period that has ended before `day` begins."""
    return period_containing(day, kind).previous()


def trailing_periods(period: Period, n: int) -> list[Period]:
    """The last n periods ending with `period`, oldest first."""
    out = [period]
    while len(out) < n:
        out.insert(0, out[0].previous())
    return out


def period_of(start: date, end: date) -> Period:
    """The Period with these bounds; raises if they are not a whole month or calendar quarter."""
    for kind in ("month", "quarter"):
        p = period_containing(start, kind)
        if p.start == start and p.end == end:
            return p
    raise ValueError(f"{start}..{end} is neither a calendar month nor a calendar quarter")


def period_for_run(interval_start: datetime | None, interval_end: datetime | None,
                   logical_date: datetime | None, kind: str) -> Period | None:
    """The period a summary run builds, or None when this run has nothing to build.

    A run whose data interval is a whole period builds that period. A monthly interval under a
    quarterly setting builds the quarter it closes (so a June run builds April to June) and
    nothing in the other months. A point interval (a manual run) builds the latest period that
    has ended by its day.
    """
    _check_kind(kind)
    first, last = period_bounds(interval_start, interval_end, logical_date)
    proper = interval_start is not None and interval_end is not None and interval_end > interval_start
    wanted = period_containing(last, kind)
    if wanted.end == last:
        return wanted
    return None if proper else wanted.previous()


def send_day(period: Period, weekday: int | None = 1, not_before_working_day: int = 1) -> date:
    """The day a period's bulletins go out: see config.CirculationSchedule.

    Working days are those of reviews.core.working_days (Monday to Friday less England and Wales
    bank holidays), the same calendar the statutory clocks use.
    """
    from reviews.core.bank_holidays import is_working_date as is_working_day

    if not_before_working_day < 1:
        raise ValueError("not_before_working_day must be at least 1")
    day, nth = period.end, 0
    for _ in range(400):
        day += timedelta(days=1)
        if not is_working_day(day):
            continue
        nth += 1
        if nth >= not_before_working_day and (weekday is None or day.weekday() == weekday):
            return day
    raise ValueError(f"no send day found within 400 days of {period.end}")


def period_label(period_start: date, period_end: date) -> str:
    """A reader's name for the period: 'June 2024', 'Q1 2024-25 (April to June 2024)', '2024-25 ...'."""
    if period_end < period_start:
        raise ValueError(f"period ends ({period_end}) before it starts ({period_start})")
    month_end = _from_index(_month_index(period_end) + 1) - timedelta(days=1)
    if period_start.day != 1 or period_end != month_end:
        return f"{long_date(period_start)} to {long_date(period_end)}"
    s, e = period_start, period_end
    months = (e.year - s.year) * 12 + e.month - s.month + 1
    if months == 1:
        return f"{MONTHS[s.month]} {s.year}"
    if months == 3 and s.month in (4, 7, 10, 1):
        fy = s.year if s.month >= 4 else s.year - 1
        q = {4: 1, 7: 2, 10: 3, 1: 4}[s.month]
        return f"Q{q} {fy}-{(fy + 1) % 100:02d} ({MONTHS[s.month]} to {MONTHS[e.month]} {e.year})"
    if months == 12 and s.month == 4:
        return f"{s.year}-{(s.year + 1) % 100:02d} (April {s.year} to March {e.year})"
    if months == 12 and s.month == 1:
        return str(s.year)
    if s.year == e.year:
        return f"{MONTHS[s.month]} to {MONTHS[e.month]} {e.year}"
    return f"{MONTHS[s.month]} {s.year} to {MONTHS[e.month]} {e.year}"
