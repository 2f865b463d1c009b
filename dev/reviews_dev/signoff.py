"""Answer bulletin sign-off requests from outside the UI: for the demo and the tests.

In production a person answers under "Required actions" in the Airflow UI, or through the REST
API (PATCH .../taskInstances/sign_off/-1/hitlDetails). Here the same Airflow function that API
route runs is called directly on the metadata database, so a `dag.test()` or `airflow dags test`
run waiting for sign-off is resumed exactly as the API would resume it.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

APPROVE, REJECT = "Approve and send", "Reject"


@dataclass
class Seen:
    run_id: str
    subject: str
    body: str
    answer: str
    reason: str


def waiting_requests(dag_id: str = "bulletin_circulation") -> list[tuple[str, str, str]]:
    """(run_id, subject, body) of every sign-off request of the DAG still waiting for an answer."""
    from sqlalchemy import select

    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.execute(
            select(TI.run_id, HITLDetail.subject, HITLDetail.body)
            .join(HITLDetail, HITLDetail.ti_id == TI.id)
            .where(TI.dag_id == dag_id, TI.state == "awaiting_input", HITLDetail.responded_at.is_(None))
        ).all()
    return [(r[0], r[1], r[2] or "") for r in rows]


def answer(dag_id: str, run_id: str, chosen: str, reason: str = "", user: str = "analyst",
           task_id: str = "sign_off") -> None:
    """Answer one request as `user` would through the REST API."""
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
    from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
    from airflow.utils.session import create_session

    with create_session() as session:
        update_hitl_detail(dag_id=dag_id, dag_run_id=run_id, task_id=task_id,
                           update_hitl_detail_payload=UpdateHITLDetailPayload(chosen_options=[chosen],
                                                                              params_input={"reason": reason}),
                           user=SimpleAuthManagerUser(username=user, role="admin"), session=session, map_index=-1)


@dataclass
class Answerer:
    """A thread that answers each waiting request with `decide(subject, body) -> (option, reason)`."""

    decide: Callable[[str, str], tuple[str, str]] = lambda subject, body: (APPROVE, "")
    dag_id: str = "bulletin_circulation"
    user: str = "analyst"
    every: float = 0.5
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sign-off answerer", daemon=True)
        self.errors: list[BaseException] = []

    def __enter__(self) -> "Answerer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                for run_id, subject, body in waiting_requests(self.dag_id):
                    option, reason = self.decide(subject, body)
                    answer(self.dag_id, run_id, option, reason, self.user)
                    self.seen.append(Seen(run_id, subject, body, option, reason))
            except Exception as exc:  # noqa: BLE001 - kept for the test to report; the loop goes on
                self.errors.append(exc)
            time.sleep(self.every)
