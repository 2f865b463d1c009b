"""Connection passwords and the pseudonymisation key never reach a task log file.

Under `dag.test()` tasks log to the console, unmasked (the secrets masker works on the log files
a worker writes). So this test runs tasks the way a worker does: the Task SDK supervisor forks a
task process, which parses the DAG file, runs the task and sends its log lines back; the
supervisor writes them, masked, to a log file under AIRFLOW_HOME. The Execution API is Airflow's
own, served in process.

The tasks are partnership_returns' `ingest` (the warehouse connection, with a password, and the
pseudonymisation key from its connection's password field) and `send_feedback` (the warehouse
and the `reviews_smtp` connection, logging in to a real SMTP server). As a positive control, a
careless log line that prints every connection password the task looks up is added to the task
code: the file must show it masked as ***. Then every file under AIRFLOW_HOME is searched for
the three secrets.
"""
from __future__ import annotations

import json
import logging
import os
from datetime import date, datetime, timezone
from pathlib import Path
from uuid import UUID

import pytest

from tests.integration.returns_support import prepare, write_config
from tests.smtp_fixtures import AIOSMTPD_WARNING, smtp_server  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.postgres, AIOSMTPD_WARNING]

AS_OF = date(2025, 10, 31)
WAREHOUSE_PASSWORD = "warehouse-Secret-pw-7731"
KEY_IN_CONNECTION = "pseudonymisation-key-in-a-connection-5519"

NOTIFICATIONS = (
    "notification_id,child_ref,incident_date,aware_date,notified_date,incident_type,age_years,sex\r\n"
    "KNO-LOG-1,KNO-LOG-CHILD-1,01/09/2025,02/09/2025,05/09/2025,death,3,female\r\n"
)


def run_like_a_worker(dag, run_id: str, task_id: str, map_index: int = -1) -> tuple[int, Path]:
    """Run one task instance of an existing DAG run through the Task SDK supervisor (a forked
    task process, a log file under AIRFLOW_HOME/logs), with the Execution API in process."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.sdk.api.datamodels._generated import BundleInfo
    from airflow.sdk.api.datamodels._generated import TaskInstance as WorkloadTI
    from airflow.sdk.execution_time.supervisor import InProcessTestSupervisor, supervise_task
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    with create_session() as session:
        ti = session.query(TaskInstance).filter_by(dag_id=dag.dag_id, run_id=run_id, task_id=task_id,
                                                   map_index=map_index).one()
        ti.state = TaskInstanceState.QUEUED
        ti.try_number += 1
        session.flush()
        workload = WorkloadTI(id=UUID(str(ti.id)), task_id=ti.task_id, dag_id=ti.dag_id, run_id=ti.run_id,
                              try_number=ti.try_number, map_index=ti.map_index,
                              dag_version_id=UUID(str(ti.dag_version_id)), pool_slots=1, queue="default",
                              priority_weight=1)
    home = Path(os.environ["AIRFLOW_HOME"])
    log_path = (home / "logs" / f"dag_id={dag.dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
                / f"map_index={map_index}" / f"attempt={workload.try_number}.log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    rc = supervise_task(ti=workload, bundle_info=BundleInfo(name="dags-folder", version=None),
                        dag_rel_path=Path(dag.fileloc).name, token="",
                        client=InProcessTestSupervisor._api_client(dag), log_path=str(log_path))
    return rc, log_path


def test_passwords_and_the_key_are_masked_in_worker_log_files(dagbag, tmp_path, postgres_url, monkeypatch,
                                                             smtp_server):  # noqa: F811
    config = write_config(tmp_path, {"knowsley": {}})
    env = prepare(monkeypatch, tmp_path, postgres_url, config)
    host_part = postgres_url.split("://", 1)[1]  # postgres@127.0.0.1:5432/db (the server trusts 127.0.0.1)
    user, rest = host_part.split("@", 1)
    monkeypatch.setenv("AIRFLOW_CONN_REVIEWS_WAREHOUSE", f"postgresql://{user}:{WAREHOUSE_PASSWORD}@{rest}")
    monkeypatch.delenv("REVIEWS_PSEUDONYMISATION_KEY")
    monkeypatch.setenv("AIRFLOW_CONN_REVIEWS_PSEUDONYMISATION",
                       json.dumps({"conn_type": "generic", "password": KEY_IN_CONNECTION}))
    monkeypatch.setenv("AIRFLOW_CONN_REVIEWS_SMTP", json.dumps({
        "conn_type": "smtp", "host": smtp_server.host, "port": smtp_server.port, "login": smtp_server.user,
        "password": smtp_server.password, "extra": {"security": "none", "timeout": 10}}))
    secrets = [WAREHOUSE_PASSWORD, KEY_IN_CONNECTION, smtp_server.password]

    # A run to work in (in process), then a new return for the worker to load and report.
    (env.inbox / "knowsley").mkdir()
    dag = dagbag.get_dag("partnership_returns")
    dr = dag.test(logical_date=datetime(AS_OF.year, AS_OF.month, AS_OF.day, tzinfo=timezone.utc))
    assert dr.state == "success"
    (env.inbox / "knowsley" / "notifications_2025-10-10.csv").write_text(NOTIFICATIONS, encoding="utf-8")

    # The careless line (inherited by the forked task process).
    from reviews_airflow import settings

    real = settings._connection

    def careless(conn_id):
        conn = real(conn_id)
        if conn is not None:
            logging.getLogger("reviews_airflow.careless").warning("connection %s has password %s", conn_id, conn.password)
        return conn

    monkeypatch.setattr(settings, "_connection", careless)
    sent_before = len(smtp_server.handler.messages)
    rc_ingest, ingest_log = run_like_a_worker(dag, dr.run_id, "ingest", 0)
    rc_send, send_log = run_like_a_worker(dag, dr.run_id, "send_feedback")
    assert (rc_ingest, rc_send) == (0, 0), (ingest_log.read_text()[-3000:], send_log.read_text()[-3000:])

    # The tasks really used the connections.
    assert env.scalar("select count(*) from notifications where notification_id = 'KNO-LOG-1'") == 1
    assert len(smtp_server.handler.messages) == sent_before + 1  # the new return's quality report
    ingest_text, send_text = ingest_log.read_text(), send_log.read_text()
    assert "1 new file(s)" in ingest_text and "'sent': 1" in send_text
    for conn_id, text in (("reviews_warehouse", ingest_text), ("reviews_pseudonymisation", ingest_text),
                          ("reviews_smtp", send_text)):
        assert f"connection {conn_id} has password ***" in text, conn_id  # masked, not absent

    home = Path(os.environ["AIRFLOW_HOME"])
    leaks = []
    for path in sorted(home.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            leaks += [(str(path.relative_to(home)), s) for s in secrets if s.encode() in data]
    assert leaks == []
