"""A timetable of reporting periods: one run per month or quarter, on a working day after it ends.

`ReportingPeriodTimetable` gives each run the whole period as its data interval (local
midnights, Europe/London by default) and starts it at a set local time on a set day after the
period ends:
- regional_learning_summary: 00:00 on the day after the period ends (any day), so the bulletins
  of June are built in the first minutes of 1 July;
- bulletin_circulation: the business unit's schedule from config (`circulation.schedule`),
  by default 09:00 UK time on the first working Tuesday from working day 15 after the period ends.
Working days are those of reviews.core.working_days (England and Wales bank holidays, the same
calendar the statutory clocks use), so a Tuesday that is a bank holiday is skipped.

A manual run (`airflow dags test DAG DATE`, or a trigger in the UI) covers the latest period
that has ended by its date. With catchup off, a newly deployed DAG runs the latest period whose
start time has passed (`latest_on_start`, the summary), or waits for the next one (circulation:
deploying must not send an old period by itself), then each following period.

Registered by plugins/reviews_timetables.py (the scheduler must find it to deserialise the DAGs).
The periods and working days come from the `reviews` package, imported lazily: a DAG file that
builds this timetable imports neither pandas nor numpy at parse time.
"""
from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction, Timetable

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class ReportingPeriodTimetable(Timetable):
    """See the module doc. weekday: 0 = Monday; not_before_working_day 0 means any day."""

    periodic = True
    can_be_scheduled = True
    run_ordering = ("data_interval_end", "logical_date")

    def __init__(self, period: str = "month", *, weekday: int | None = None, not_before_working_day: int = 0,
                 hour: int = 0, minute: int = 0, timezone: str = "Europe/London", latest_on_start: bool = True):
        self.period = period
        self.latest_on_start = latest_on_start
        self.weekday = weekday
        self.not_before_working_day = not_before_working_day
        self.hour = hour
        self.minute = minute
        self.timezone = timezone
        self._tz = pendulum.timezone(timezone)
        self.description = self.summary

    # -- (de)serialisation ---------------------------------------------------------------------
    def serialize(self) -> dict[str, Any]:
        return {"period": self.period, "weekday": self.weekday, "not_before_working_day": self.not_before_working_day,
                "hour": self.hour, "minute": self.minute, "timezone": self.timezone,
                "latest_on_start": self.latest_on_start}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> "ReportingPeriodTimetable":
        return cls(data.get("period", "month"), weekday=data.get("weekday"),
                   not_before_working_day=data.get("not_before_working_day", 0), hour=data.get("hour", 0),
                   minute=data.get("minute", 0), timezone=data.get("timezone", "Europe/London"),
                   latest_on_start=data.get("latest_on_start", True))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ReportingPeriodTimetable) and self.serialize() == other.serialize()

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.serialize().items(), key=lambda kv: kv[0])))

    def validate(self) -> None:
        from airflow.exceptions import AirflowTimetableInvalid

        if self.period not in ("month", "quarter"):
            raise AirflowTimetableInvalid(f"period must be 'month' or 'quarter', not {self.period!r}")
        if self.weekday is not None and self.weekday not in range(5):
            raise AirflowTimetableInvalid("weekday must be 0 (Monday) to 4 (Friday), or None")
        if self.not_before_working_day < 0 or not (0 <= self.hour < 24 and 0 <= self.minute < 60):
            raise AirflowTimetableInvalid("not_before_working_day must be >= 0 and the time a valid HH:MM")
        if self.weekday is not None and self.not_before_working_day < 1:
            raise AirflowTimetableInvalid("a weekday needs not_before_working_day >= 1")

    @property
    def summary(self) -> str:
        every = "Monthly" if self.period == "month" else "Quarterly"
        at = f"{self.hour:02d}:{self.minute:02d} {self.timezone}"
        if self.not_before_working_day == 0 and self.weekday is None:
            return f"{every}, {at} the day after the period ends"
        day = f"working {WEEKDAY_NAMES[self.weekday]}" if self.weekday is not None else "working day"
        nth = f" (not before working day {self.not_before_working_day})" if self.not_before_working_day > 1 else ""
        return f"{every}, first {day}{nth} after the period ends, {at}"

    # -- periods -------------------------------------------------------------------------------
    def _local_date(self, dt) -> date:
        return pendulum.instance(dt).in_timezone(self._tz).date()

    def _midnight(self, d: date) -> pendulum.DateTime:
        return pendulum.datetime(d.year, d.month, d.day, tz=self._tz).in_timezone("UTC")

    def _interval(self, p) -> DataInterval:
        return DataInterval(start=self._midnight(p.start), end=self._midnight(p.end + timedelta(days=1)))

    def run_after(self, p) -> pendulum.DateTime:
        """When the run for period p may start (UTC)."""
        if self.not_before_working_day == 0 and self.weekday is None:
            day = p.end + timedelta(days=1)
        else:
            from reviews.core.reporting_periods import send_day

            day = send_day(p, self.weekday, self.not_before_working_day)
        local = pendulum.datetime(day.year, day.month, day.day, self.hour, self.minute, tz=self._tz)
        return local.in_timezone("UTC")

    def infer_manual_data_interval(self, *, run_after) -> DataInterval:
        from reviews.core.reporting_periods import last_complete_period

        return self._interval(last_complete_period(self._local_date(run_after), self.period))

    def next_dagrun_info(self, *, last_automated_data_interval: DataInterval | None,
                         restriction: TimeRestriction) -> DagRunInfo | None:
        from reviews.core.reporting_periods import last_complete_period, period_containing

        if last_automated_data_interval is not None:
            p = period_containing(self._local_date(last_automated_data_interval.start), self.period).next()
        else:
            if restriction.earliest is None:
                return None
            first_day = self._local_date(restriction.earliest)
            p = period_containing(first_day, self.period)
            if p.start < first_day:
                p = p.next()  # the first whole period from the start date, by UK calendar date
                # (not by instant: `backfill create --from-date 2024-10-01` means October 2024,
                # although 1 October 00:00 in London is 30 September 23:00 UTC)
        if not restriction.catchup:
            now = pendulum.now("UTC")
            latest = last_complete_period(self._local_date(now), self.period)
            while self.run_after(latest) > now:
                latest = latest.previous()
            if not self.latest_on_start:  # the next run still to come, never one already past
                latest = latest.next()
            if latest.start > p.start:
                p = latest
        interval = self._interval(p)
        if restriction.latest is not None and interval.start > restriction.latest:
            return None
        return DagRunInfo(run_after=self.run_after(p), data_interval=interval)


def _config_path() -> Path:
    """The config file a DAG file reads its schedule from at parse time.

    The environment form of the `reviews_config` Variable (AIRFLOW_VAR_REVIEWS_CONFIG, as the
    Docker image sets it), else the project's own file. A Variable kept only in the metadata
    database is not read here: parsing must not touch the database.
    """
    return Path(os.environ.get("AIRFLOW_VAR_REVIEWS_CONFIG") or Path(__file__).resolve().parents[2] / "config" / "reviews.yaml")


def _settings():
    """The config's `summary` and `circulation` (their defaults when there is no config file)."""
    from reviews.core.config import CirculationSettings, SummarySettings, load_config

    path = _config_path()
    if not path.is_file():
        return SummarySettings(), CirculationSettings()
    cfg = load_config(path)
    return cfg.summary, cfg.circulation


def summary_timetable() -> ReportingPeriodTimetable:
    """regional_learning_summary: each period at 00:00 UK time the day after it ends."""
    summary, _ = _settings()
    return ReportingPeriodTimetable(summary.period, timezone="Europe/London")


def circulation_timetable() -> ReportingPeriodTimetable:
    """bulletin_circulation: the business unit's schedule from config."""
    summary, circulation = _settings()
    sch = circulation.schedule
    return ReportingPeriodTimetable(summary.period, weekday=sch.weekday,
                                    not_before_working_day=sch.not_before_working_day,
                                    hour=sch.hour, minute=sch.minute, timezone=sch.timezone, latest_on_start=False)
