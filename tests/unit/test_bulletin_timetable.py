"""The reporting-period timetable: send days on the England and Wales working-day calendar,
the runs it schedules, manual runs, serialisation, and its registration as a plugin."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pendulum
import pytest
import yaml
from airflow.timetables.base import DataInterval, TimeRestriction

from reviews.core.config import DEFAULT_CONFIG, ConfigError, load_config
from reviews.core.reporting_periods import (
    last_complete_period,
    period_containing,
    period_for_run,
    send_day,
    trailing_periods,
)
from reviews_airflow.timetables import ReportingPeriodTimetable

LONDON = "Europe/London"


def month(y, m):
    return period_containing(date(y, m, 1), "month")


@pytest.mark.parametrize("period, expected", [
    (month(2024, 6), date(2024, 7, 2)),  # 1 July 2024 is a Monday: Tuesday the 2nd
    (month(2023, 12), date(2024, 1, 2)),  # New Year's Day (Monday) is a bank holiday; Tuesday is not
    (month(2018, 12), date(2019, 1, 8)),  # 1 January 2019 was a Tuesday and a bank holiday
    (month(2024, 3), date(2024, 4, 2)),  # Easter Monday 1 April 2024; Tuesday 2 April works
    (month(2023, 4), date(2023, 5, 2)),  # early May bank holiday on Monday 1 May 2023
    (month(2020, 11), date(2020, 12, 1)),
])
def test_first_working_tuesday(period, expected):
    assert send_day(period, weekday=1, not_before_working_day=1) == expected


def test_nth_working_day_and_weekday_together():
    # June 2024: working days after it: Mon 1 July (1), Tue 2 (2), Wed 3 (3)...; the 3rd working day is Wed 3 July.
    assert send_day(month(2024, 6), weekday=None, not_before_working_day=3) == date(2024, 7, 3)
    # ... and a Tuesday no earlier than the 3rd working day is 9 July.
    assert send_day(month(2024, 6), weekday=1, not_before_working_day=3) == date(2024, 7, 9)
    # Christmas 2023: 25 and 26 December are bank holidays; the first working day after 22 December
    # (a quarter of 2023 does not end there, so use a month) is checked on December 2023's end instead.
    assert send_day(month(2023, 12), weekday=None, not_before_working_day=1) == date(2024, 1, 2)


def test_periods():
    q = period_containing(date(2024, 8, 15), "quarter")
    assert (q.start, q.end, q.label, q.short_label) == (
        date(2024, 7, 1), date(2024, 9, 30), "Q2 2024-25 (July to September 2024)", "Q2 2024-25")
    assert [p.short_label for p in trailing_periods(q, 4)] == ["Q3 2023-24", "Q4 2023-24", "Q1 2024-25", "Q2 2024-25"]
    assert last_complete_period(date(2024, 7, 1), "month") == month(2024, 6)
    assert last_complete_period(date(2024, 6, 30), "month") == month(2024, 5)


def test_period_for_run_under_a_quarterly_setting():
    london = pendulum.timezone(LONDON)
    june = (datetime(2024, 6, 1, tzinfo=london), datetime(2024, 7, 1, tzinfo=london))
    may = (datetime(2024, 5, 1, tzinfo=london), datetime(2024, 6, 1, tzinfo=london))
    assert period_for_run(*june, None, "quarter") == period_containing(date(2024, 6, 1), "quarter")
    assert period_for_run(*may, None, "quarter") is None  # May does not close a quarter
    assert period_for_run(*may, None, "month") == month(2024, 5)
    point = datetime(2024, 8, 15, tzinfo=timezone.utc)
    assert period_for_run(point, point, point, "quarter") == period_containing(date(2024, 6, 1), "quarter")


def _utc(*a):
    return pendulum.datetime(*a, tz="UTC")


def test_circulation_timetable_runs_each_period_on_its_send_day():
    tt = ReportingPeriodTimetable("month", weekday=1, not_before_working_day=1, hour=9, timezone=LONDON)
    tt.validate()
    restriction = TimeRestriction(earliest=pendulum.datetime(2023, 10, 1, tz=LONDON), latest=None, catchup=True)
    info = tt.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    # October 2023 (BST to GMT inside it): the whole month, sent 09:00 GMT on Tuesday 7 November.
    assert info.data_interval == DataInterval(_utc(2023, 9, 30, 23), _utc(2023, 11, 1, 0))
    assert info.run_after == _utc(2023, 11, 7, 9)
    runs = []
    for _ in range(3):
        info = tt.next_dagrun_info(last_automated_data_interval=info.data_interval, restriction=restriction)
        runs.append(info.run_after)
    assert runs == [_utc(2023, 12, 5, 9), _utc(2024, 1, 2, 9), _utc(2024, 2, 6, 9)]
    # 09:00 local in summer is 08:00 UTC: July 2024 goes out on Tuesday 6 August.
    july = tt.next_dagrun_info(
        last_automated_data_interval=DataInterval(_utc(2024, 5, 31, 23), _utc(2024, 6, 30, 23)), restriction=restriction)
    assert july.run_after == _utc(2024, 8, 6, 8)


def test_without_catchup_the_latest_due_period_runs_first():
    tt = ReportingPeriodTimetable("month", weekday=1, not_before_working_day=1, hour=9, timezone=LONDON)
    restriction = TimeRestriction(earliest=pendulum.datetime(2023, 10, 1, tz=LONDON), latest=None, catchup=False)
    info = tt.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    now = pendulum.now("UTC")
    assert info.run_after <= now < tt.run_after(period_containing(info.data_interval.end.date(), "month"))


def test_circulation_never_sends_a_past_period_on_deploy():
    tt = ReportingPeriodTimetable("month", weekday=1, not_before_working_day=1, hour=9, latest_on_start=False)
    restriction = TimeRestriction(earliest=pendulum.datetime(2023, 10, 1, tz=LONDON), latest=None, catchup=False)
    info = tt.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    assert info.run_after > pendulum.now("UTC")
    assert ReportingPeriodTimetable.deserialize(tt.serialize()).latest_on_start is False


def test_summary_timetable_and_manual_runs():
    tt = ReportingPeriodTimetable("quarter", timezone=LONDON)
    restriction = TimeRestriction(earliest=pendulum.datetime(2023, 10, 1, tz=LONDON), latest=None, catchup=True)
    info = tt.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    assert info.data_interval == DataInterval(_utc(2023, 9, 30, 23), _utc(2024, 1, 1, 0))
    assert info.run_after == info.data_interval.end  # built at midnight after the quarter ends
    monthly = ReportingPeriodTimetable("month", weekday=1, not_before_working_day=1, hour=9, timezone=LONDON)
    for day, interval in [
        (_utc(2024, 7, 1), DataInterval(_utc(2024, 5, 31, 23), _utc(2024, 6, 30, 23))),  # 01:00 BST 1 July: June
        (_utc(2026, 10, 31), DataInterval(_utc(2026, 8, 31, 23), _utc(2026, 9, 30, 23))),  # October not over
    ]:
        assert monthly.infer_manual_data_interval(run_after=day) == interval


def test_serialisation_round_trip_and_summary():
    tt = ReportingPeriodTimetable("quarter", weekday=1, not_before_working_day=2, hour=9, minute=30)
    assert ReportingPeriodTimetable.deserialize(tt.serialize()) == tt
    assert tt.summary == "Quarterly, first working Tuesday (not before working day 2) after the period ends, 09:30 Europe/London"


def test_timetable_is_registered_and_used_by_the_dags(dagbag):
    from airflow import plugins_manager
    from airflow.serialization.serialized_objects import DagSerialization

    assert "reviews_airflow.timetables.ReportingPeriodTimetable" in plugins_manager.get_timetables_plugins()
    for dag_id, expected in [("bulletin_circulation", "first working Tuesday"), ("regional_learning_summary", "00:00")]:
        dag = dagbag.get_dag(dag_id)
        inner = getattr(dag.timetable, "timetable", dag.timetable)  # circulation: AssetOrTimeSchedule
        assert isinstance(inner, ReportingPeriodTimetable) and expected in inner.summary
        again = DagSerialization.from_dict(DagSerialization.to_dict(dag))
        assert again.timetable.serialize() == dag.timetable.serialize()


def config_file(tmp_path, **sections):
    """The project's config file with some top-level sections replaced, written under tmp_path."""
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw.update(sections)
    path = tmp_path / "reviews.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize("raw, message", [
    ({"summary": {"period": "week"}}, "summary.period: input should be 'month' or 'quarter', not 'week'"),
    ({"circulation": {"schedule": {"weekday": "saturday"}}}, "circulation.schedule.weekday: must be a weekday name"),
    ({"circulation": {"schedule": {"time": "9am"}}}, "circulation.schedule.time: must be HH:MM"),
    ({"circulation": {"schedule": {"timezone": "Mars/Olympus"}}}, "circulation.schedule.timezone: 'Mars/Olympus'"),
    ({"suppression": {"round_regional_totals_to": 1}}, "suppression.round_regional_totals_to: "),
    ({"briefings": {"links": [{"label": "x", "url": "http://insecure"}]}},
     r"briefings.links\[0\].url: must start with https://"),
])
def test_bad_settings_are_named(tmp_path, raw, message):
    path = config_file(tmp_path, **raw)
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_timetables_follow_the_config_file(tmp_path, monkeypatch):
    """The DAG files' timetables come from the one loader, at parse time; no file: the defaults."""
    from reviews_airflow.timetables import circulation_timetable, summary_timetable

    path = config_file(tmp_path, summary={"period": "month"}, returns={"frequency": "monthly", "due_days_after_period_end": 5,
                                                                  "expected_from": "2023-12-31"},
                       circulation={"schedule": {"weekday": None, "not_before_working_day": 12, "time": "10:30"}})
    monkeypatch.setenv("AIRFLOW_VAR_REVIEWS_CONFIG", str(path))
    assert summary_timetable().period == "month"
    tt = circulation_timetable()
    assert (tt.period, tt.weekday, tt.not_before_working_day, tt.hour, tt.minute) == ("month", None, 12, 10, 30)
    monkeypatch.setenv("AIRFLOW_VAR_REVIEWS_CONFIG", str(tmp_path / "missing.yaml"))
    tt = circulation_timetable()
    assert (tt.period, tt.weekday, tt.not_before_working_day, tt.hour, tt.minute) == ("quarter", 1, 15, 9, 0)


@pytest.mark.parametrize("sections", [
    # The shipped monthly bulletins of issue 15: quarterly returns, sent the first Tuesday after the month.
    {"summary": {"period": "month"}, "circulation": {"schedule": {"weekday": "tuesday", "not_before_working_day": 1}}},
    # Quarterly bulletins sent before the returns (due 10 days after) and the 7 days' wait are over.
    {"circulation": {"schedule": {"weekday": None, "not_before_working_day": 5}}},
    # A longer wait pushes the build past the shipped send day of some quarter.
    {"summary": {"period": "quarter", "wait_for_returns_days": 15}},
])
def test_a_schedule_sending_before_the_returns_are_due_is_refused(tmp_path, sections):
    with pytest.raises(ConfigError, match=r"circulation.schedule: would send the bulletins of .* before the returns "
                                          r"covering it are due \(.*\) and waited for") as caught:
        load_config(config_file(tmp_path, **sections))
    assert "not_before_working_day" in str(caught.value)  # it says what to change


def test_the_shipped_schedule_sends_after_every_return_is_due_and_waited_for():
    """Every quarter from the first return expected for six years: send day > due + wait."""
    from datetime import timedelta

    from reviews.core.config import returns_due_for, schedule_problem
    from reviews.core.reporting_periods import period_containing, send_day

    cfg = load_config()
    assert schedule_problem(cfg) is None
    p = period_containing(cfg.returns.expected_from, "quarter")
    for _ in range(24):
        sends = send_day(p, cfg.circulation.schedule.weekday, cfg.circulation.schedule.not_before_working_day)
        assert sends > returns_due_for(cfg, p.end) + timedelta(days=cfg.summary.wait_for_returns_days), p.label
        p = p.next()
