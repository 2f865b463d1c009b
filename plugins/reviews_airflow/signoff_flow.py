"""The sign-off and send tasks every circulating DAG shares (bulletin_circulation, yearly_report).

Why one place: the business unit answers the same Human-in-the-loop request, the reminder and the
ledger sends behave the same whatever is being circulated. Called inside a `@dag` function after
the DAG's own planning task; the task ids are fixed (the REST API, the UI and the tests name
them): ask_or_send -> sign_off -> record_signoff -> queue -> send; remind_signoff beside sign_off;
resume_sends -> send when there is nothing new to ask. Nothing here imports the product at parse
time.
"""
from __future__ import annotations

import os
from datetime import timedelta

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Param, PokeReturnValue, task

APPROVE, REJECT = "Approve and send", "Reject"  # reviews.circulation.signoff (not imported at parse time)
POKE_SECONDS = float(os.environ.get("REVIEWS_SIGNOFF_POKE_SECONDS", "600"))  # tests: 1 s (conftest), 15 s under a real scheduler


def signoff_and_send(plan):
    """Wire the shared tasks after `plan` (the XComArg of the DAG's plan_signoff task)."""

    @task.branch
    def ask_or_send(plan: dict) -> list[str]:
        """Ask for sign-off; or, with nothing new to ask, send what was approved and is not yet sent."""
        from reviews_airflow import tasks

        return tasks.ask_or_send(plan)

    sign_off = HITLOperator(
        task_id="sign_off",
        subject="{{ ti.xcom_pull(task_ids='plan_signoff')['request']['subject'] }}",
        body="{{ ti.xcom_pull(task_ids='plan_signoff')['request']['body'] }}",
        options=[APPROVE, REJECT],
        params={"reason": Param("", type="string", title="Reason",
                                description="Why you reject (kept with the decision); optional when you approve.")},
    )

    @task
    def record_signoff(**context) -> dict:
        from reviews_airflow import tasks

        return tasks.record_signoff(context)

    @task.sensor(poke_interval=POKE_SECONDS, timeout=timedelta(days=30).total_seconds(), mode="reschedule",
                 soft_fail=True)
    def remind_signoff(**context) -> PokeReturnValue:
        """Done when the request is answered, or once the one reminder is sent."""
        from reviews_airflow import tasks

        state = tasks.remind_signoff(context)
        return PokeReturnValue(is_done=state != "waiting", xcom_value=state)

    @task
    def queue(**context) -> dict:
        from reviews_airflow import tasks

        return tasks.queue_sends(context)

    @task(trigger_rule="none_failed_min_one_success")
    def send(**context) -> dict:
        """Every approved send still pending (after a sign-off, or a rerun after a failed send)."""
        from reviews_airflow import tasks

        return tasks.send_queued(context)

    # The branch's way to `send` when nothing new is asked (a direct edge would be skipped with the branch).
    resume_sends = EmptyOperator(task_id="resume_sends")

    branch = ask_or_send(plan)
    sending = send()
    branch >> sign_off >> record_signoff() >> queue() >> sending
    branch >> remind_signoff()
    branch >> resume_sends >> sending
    return sending
