"""
### yearly_report

The safeguarding partners' **yearly report** (Working Together: published each year and
scrutinised by the councils' overview and scrutiny committees), for the financial year (1 April
to 31 March) that ended before the run's date, with the four years before it: per partnership and
for the region, notifications, rapid reviews and their conversion to LCSPRs, the Panel's
decisions, national reviews, statutory timeliness by stage, learning themes, actions completed and
overdue at each year's end, and DfE-style tables of the children notified (age band, sex, ethnic
group, child protection plan, looked after). Every count goes through the suppression rules
(1 to 5 as `c`, secondary suppression, linked tables suppressed together).

1. `build_report` writes each report as HTML, plain text, PDF (headless Chromium) and XLSX under
   `{data_dir}/yearly/{year}/` and stores it in `bulletins` (audiences `yearly:region`,
   `yearly:{code}`); a rebuild with the same figures adds no version.
2. `plan_signoff` asks the business unit to **sign off** the year's new versions (Human-in-the-loop
   `sign_off`, under Required actions: previews, recipients); nothing is sent before that.
   `remind_signoff` emails the business unit once if the request waits longer than
   `circulation.signoff_reminder_hours`.
3. Approved, `queue` writes the ledger (`circulation_log`) and `send` emails each partnership's
   business contact (config `business_contact`) its own report, and the regional report to every
   business contact and the business unit, PDF and XLSX attached: once per version and recipient.
   Rejected, nothing is sent and the reason is kept (`bulletin_signoffs`).

Runs at 06:00 UK time on 1 May, once the last quarter's returns are in (due 10 April, waited for a
week). `make airflow ARGS="dags test yearly_report 2025-05-01"` builds 2024-25. Past years:
`airflow backfill create --dag-id yearly_report --from-date 2022-05-01 --to-date 2024-05-01`
builds them and asks nothing, sends nothing (unless the run parameter `send_in_backfill` is true,
and even then only after sign-off). A rerun never sends twice (ledger).
"""
from __future__ import annotations


import pendulum
from airflow.sdk import Param, dag, task
from airflow.timetables.trigger import CronTriggerTimetable

from reviews_airflow.dag_defaults import TIMEZONE, deadline, default_args, tags
from reviews_airflow.signoff_flow import signoff_and_send



@dag(
    dag_id="yearly_report",
    schedule=CronTriggerTimetable("0 6 1 5 *", timezone=TIMEZONE),
    start_date=pendulum.datetime(2019, 5, 1, tz=TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    deadline=deadline("yearly_report"),
    tags=tags("yearly-report", "email"),
    doc_md=__doc__,
    params={
        "send_in_backfill": Param(
            False, type="boolean",
            description="A backfill builds the report but asks for no sign-off and sends nothing unless this is true.",
        ),
    },
)
def yearly_report():
    @task
    def build_report(**context) -> dict:
        from reviews_airflow import tasks

        return tasks.build_yearly_report(context)

    @task
    def plan_signoff(built: dict, **context) -> dict:
        from reviews_airflow import tasks

        return tasks.plan_yearly_signoff(built, context)

    signoff_and_send(plan_signoff(build_report()))


yearly_report()
