"""
### statutory_timeliness

Judges every case against the statutory timescales (Working Together to Safeguard Children),
as of the last day of the run's data interval, never the wall clock: notification to the
Panel (5 working days from awareness), rapid review (15 working days), LCSPR completion
(6 calendar months from the decision) and the publication notice (final report at least 7
working days before publication). Working days exclude weekends and England and Wales bank
holidays. Every number comes from the config file.

**judge** replaces the `timeliness` rows for its as-of date, so reruns and backfills give the
same table. A stage that reads a cell a return got wrong (flagged, loaded blank) is `unknown`
with the reason, never met, late or overdue on a guess.

**alert** then emails the business unit a short list of the cases that *became* at risk (due
within the stage's window: notification 2, rapid review 3, LCSPR 20 working days, configurable)
or overdue, with partnership, stage, case reference, due date and working days left, and a note
when the latest return row for the case was rejected or flagged (file, row and rule); each case
and status is told once (ledger `timeliness_alerts`, written before the email is sent), so a
rerun sends nothing new. No child identifiers.

**journeys** then writes every case's journey as of the same day (table `case_journeys`, replaced
for that day: notification to publication, each stage's due date, status and working days left, and
the consistency findings) and the business unit's dated workbook
`tracker/case_tracker_{as_of}.xlsx` under the data folder (case references only; internal, never
circulated). The tracker at `/reviews/tracker` shows the same rows.

**remind_actions** (beside them) writes each partnership's action register as of the same day
(internal XLSX, `actions/{code}/` under the data folder) and emails its learning contact the
actions that fall due within `actions.remind_working_days_before` working days or became overdue,
once per action and state (ledger `action_reminders`); finding and review ids, owner agency, due
date and status only, never the finding's text.

Alerts and reminders are about the present. **Backfill runs do not send them** and leave the ledger alone, so
the next ordinary run still tells what is at risk now. To send from a backfill anyway, pass
`--dag-run-conf '{"send_alerts": true}'` to `airflow backfill create`; to
judge without alerting on an ordinary run, trigger it with the param `send_alerts` false.

Runs daily and whenever `partnership_returns` loads new data.
`airflow dags test statutory_timeliness 2024-06-30` judges the cases as of 30 June 2024.
"""
from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

from reviews_airflow.assets import CASES, TIMELINESS
from reviews_airflow.dag_defaults import TIMEZONE, deadline, default_args, tags


@dag(
    dag_id="statutory_timeliness",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 7 * * *", timezone=TIMEZONE), assets=[CASES]),
    start_date=pendulum.datetime(2023, 10, 1, tz=TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    deadline=deadline("statutory_timeliness"),
    tags=tags("timeliness"),
    doc_md=__doc__,
    params={
        "send_alerts": Param(
            True, type="boolean",
            description="Email the business unit the cases newly at risk or overdue, and the learning "
                        "contacts their actions due soon or overdue. Backfill runs never send unless "
                        "their run conf says send_alerts: true.",
        ),
    },
)
def statutory_timeliness():
    @task(outlets=[TIMELINESS])
    def judge(**context) -> dict:
        from reviews_airflow import tasks

        return tasks.judge_timeliness(context)

    @task
    def alert(**context) -> dict:
        from reviews_airflow import tasks

        return tasks.send_timeliness_alerts(context)

    @task
    def journeys(**context) -> dict:
        from reviews_airflow import tasks

        return tasks.build_case_journeys(context)

    @task
    def remind_actions(**context) -> dict:
        from reviews_airflow import tasks

        return tasks.remind_actions(context)

    judge() >> [alert(), journeys()]
    remind_actions()


statutory_timeliness()
