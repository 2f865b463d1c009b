"""
### bulletin_circulation

Sends each new bulletin to its distribution list with yagmail, exactly once per bulletin and
recipient: every send is written to `circulation_log` as `pending` before it is attempted and
marked `sent` only when the server accepts it, so retries and reruns never send twice.
Recipients outside the allowed domains in the config are refused and logged.

Uses the `reviews_smtp` connection when it is set; otherwise writes `.eml` files to the outbox
folder. A corrected bulletin is re-sent only when an analyst asks, with the run parameter
`resend_bulletin_ids`. Runs when `regional_learning_summary` has built bulletins, and sends the
period that run built; run by hand, it sends the latest period built.
"""
from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from reviews_airflow.assets import BULLETINS
from reviews_airflow.dag_defaults import TIMEZONE, default_args, tags


@dag(
    dag_id="bulletin_circulation",
    schedule=[BULLETINS],
    start_date=pendulum.datetime(2023, 10, 1, tz=TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=tags("bulletins", "email"),
    doc_md=__doc__,
    params={
        "resend_bulletin_ids": Param(
            [], type="array", items={"type": "integer"},
            description="Bulletin ids to send again to everyone on their list (a corrected version).",
        ),
    },
)
def bulletin_circulation():
    @task
    def queue(**context) -> dict:
        from reviews_airflow import tasks

        return tasks.queue_sends(context)

    @task
    def send() -> dict:
        from reviews_airflow import tasks

        return tasks.send_queued()

    queue() >> send()


bulletin_circulation()
