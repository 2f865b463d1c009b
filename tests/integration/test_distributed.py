"""The production shape, run for real: a regional cycle through the REST API on a Celery
deployment (separate api-server, scheduler, dag-processor, triggerer and worker processes) on the
local PostgreSQL (metadata and warehouse) and Redis; the worker is killed mid-run and restarted.
"""
from __future__ import annotations

import os
import tempfile
from datetime import date
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from reviews.core.config import load_config
from reviews_dev.synthetic import generate_returns
from tests.conftest import _postgres_database
from tests.integration.deployment import ROOT, deployment_env, free_port, start_deployment

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.distributed]
REDIS_DB = 10 + os.getpid() % 6  # 10..15, and a queue of its own (deployment.py)


@pytest.fixture(scope="module")
def deployment():
    home = Path(tempfile.mkdtemp(prefix="reviews-deploy-"))
    data_dir = home / "data"
    generated = generate_returns(data_dir / "inbox", load_config(), start=date(2024, 4, 1), end=date(2026, 9, 30),
                                 seed=11, inflate=5)
    redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB).flushdb()
    metadata_url = _postgres_database(f"reviews_af_meta_{os.getpid()}")
    warehouse_url = _postgres_database(f"reviews_dist_wh_{os.getpid()}")
    port = free_port()
    env = deployment_env(home, metadata_url, warehouse_url, data_dir, REDIS_DB, port, "distributed-test-key-0123456789")
    # PDFs are printed by Chromium in other tests; here they would only slow 50 summary runs down.
    config = home / "reviews.yaml"
    config.write_text((ROOT / "config" / "reviews.yaml").read_text().replace("  pdf: true", "  pdf: false", 1))
    env["AIRFLOW_VAR_REVIEWS_CONFIG"] = str(config)
    dep = start_deployment(home, env, port)
    dep.warehouse = sa.create_engine(warehouse_url)
    dep.metadata = sa.create_engine(metadata_url)
    dep.generated = generated
    dep.data_dir = data_dir
    try:
        dep.wait_for_dags({"partnership_returns", "statutory_timeliness", "regional_learning_summary", "bulletin_circulation"})
        for dag_id in ("partnership_returns", "statutory_timeliness", "regional_learning_summary", "bulletin_circulation"):
            dep.unpause(dag_id)
        yield dep
    finally:
        dep.stop_all()
        dep.warehouse.dispose()
        dep.metadata.dispose()


def _scalar(dep, sql, **params):
    with dep.warehouse.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def test_cycle_survives_a_worker_killed_mid_run(deployment):
    dep = deployment
    run_id = dep.trigger("partnership_returns", "2026-10-31T00:00:00+00:00")

    # Unpausing also creates today's scheduled run; whichever run is loading, kill the worker under it.
    def ingest_tis():
        return [ti for ti in dep.task_instances("partnership_returns", "~") if ti["task_id"] == "ingest"]

    def ingest_running():
        return any(ti["state"] == "running" for ti in ingest_tis())

    dep.wait_for("an ingest task to be running", ingest_running, 240, 0.5)
    import time

    time.sleep(0.5)
    killed = dep.kill("worker")  # SIGKILL the worker and every process under it, mid-task
    assert killed >= 3, "the worker, its pool and the running task's processes"
    dep.start_worker("worker2")
    assert dep.wait_for_run("partnership_returns", run_id, 420) == "success"
    dep.wait_for("every returns run to finish", lambda: all(
        r["state"] in ("success", "failed") for r in dep.api("GET", "/dags/partnership_returns/dagRuns")["dag_runs"]), 420, 3)
    tries = [ti["try_number"] for ti in ingest_tis()]
    assert max(tries) >= 2, f"the kill should have interrupted a running ingest: {tries}"

    # Nothing lost: every file recorded once, every generated row read once.
    assert _scalar(dep, "select count(*) from return_files") == len(dep.generated.files)
    assert _scalar(dep, "select sum(rows_read) from return_files") == sum(sum(d.values()) for d in dep.generated.rows.values())
    # Nothing duplicated: rows_read splits exactly, quarantine and history hold one row per row read.
    assert _scalar(dep, "select count(*) from return_files where rows_read != rows_loaded + rows_quarantined") == 0
    assert _scalar(dep, "select count(*) from quarantine") == _scalar(dep, "select sum(rows_quarantined) from return_files")
    assert _scalar(dep, "select count(*) from record_history") == _scalar(dep, "select sum(rows_loaded) from return_files")

    # The returns runs hand over through the cases asset: timeliness is judged as of their day.
    def judged():
        runs = dep.api("GET", "/dags/statutory_timeliness/dagRuns", params={"run_type": "asset_triggered"})["dag_runs"]
        return any(r["state"] == "success" for r in runs) and _scalar(dep, "select count(*) from timeliness")

    dep.wait_for("timeliness judged after the load (asset hand-over)", judged, 300, 3)

    # The rest of the cycle: a September summary, then circulation (sent by hand for September,
    # as an analyst would, so the test does not depend on today's date and the send timetable).
    summary = dep.trigger("regional_learning_summary", "2026-10-01T00:00:00+00:00")
    assert dep.wait_for_run("regional_learning_summary", summary, 300) == "success"
    september = "select count(*) from bulletins where period_start = '2026-09-01' and period_end = '2026-09-30'"
    assert _scalar(dep, september) == 6

    send = dep.trigger("bulletin_circulation", None, conf={"period_end": "2026-09-30"})
    assert dep.wait_for_run("bulletin_circulation", send, 300) == "success"

    def september_sent():
        n = _scalar(dep, "select count(*) from circulation_log c join bulletins b on b.bulletin_id = c.bulletin_id "
                         "where b.period_start = '2026-09-01' and c.status = 'sent'")
        return n >= 17 and n

    assert dep.wait_for("September bulletins sent", september_sent, 300, 3) == 17
    assert _scalar(dep, "select count(*) from (select bulletin_id, recipient from circulation_log "
                        "group by bulletin_id, recipient having count(*) > 1) d") == 0
    assert _scalar(dep, "select count(*) from timeliness") > 0
    # Deployed DAGs carry their Deadline Alerts: the dag-processor registered one per DAG.
    from reviews_airflow.dag_defaults import DEADLINES

    with dep.metadata.connect() as conn:
        names = set(conn.execute(sa.text("select name from deadline_alert")).scalars())
    assert {f"{what} not finished in time" for _, what in DEADLINES.values()} <= names


# Two years of monthly periods: October 2024 to September 2026.
BACKFILL_FROM, BACKFILL_TO = "2024-10-01", "2026-09-01"


def _months():
    out, (y, m) = [], (2024, 10)
    while (y, m) <= (2026, 9):
        out.append(date(y, m, 1))
        y, m = (y + (m == 12), m % 12 + 1)
    return out


def _checksum(dep) -> dict[str, str]:
    """What the periods produced, minus surrogate ids and audit timestamps."""
    import hashlib

    queries = {
        "timeliness": "select partnership_code, stage, record_id, as_of_date, start_date, due_date, completed_date, "
                      "working_days_taken, status, rule_set, reason from timeliness where as_of_date between "
                      "'2024-10-31' and '2026-09-30' order by 1, 2, 3, 4",
        "bulletins": "select period_start, period_end, audience, version, content_hash, subject from bulletins "
                     "where audience not like '%:%' and period_start between '2024-10-01' and '2026-09-01' "
                     "order by 1, 2, 3, 4",
    }
    out = {}
    with dep.warehouse.connect() as conn:
        for name, sql in queries.items():
            rows = conn.execute(sa.text(sql)).all()
            out[name] = f"{len(rows)}:" + hashlib.sha256(repr([tuple(map(str, r)) for r in rows]).encode()).hexdigest()
    return out


def _backfill(dep) -> None:
    """`airflow backfill create` through the running scheduler; wait until it is complete."""
    import subprocess

    from tests.integration.deployment import BIN

    before = {b["id"] for b in dep.api("GET", "/backfills", params={"dag_id": "regional_learning_summary"})["backfills"]}
    subprocess.run([str(BIN / "airflow"), "backfill", "create", "--dag-id", "regional_learning_summary",
                    "--from-date", BACKFILL_FROM, "--to-date", BACKFILL_TO, "--reprocess-behavior", "completed",
                    "--max-active-runs", "2"], env=dep.env, check=True, capture_output=True, timeout=120)
    [backfill] = [b for b in dep.api("GET", "/backfills", params={"dag_id": "regional_learning_summary"})["backfills"]
                  if b["id"] not in before]

    def complete():
        return dep.api("GET", f"/backfills/{backfill['id']}")["completed_at"] is not None

    dep.wait_for(f"backfill {backfill['id']} to complete", complete, 1500, 5)
    runs = [r for r in dep.api("GET", "/dags/regional_learning_summary/dagRuns",
                               params={"run_type": "backfill", "limit": 100})["dag_runs"]]
    assert len(runs) == len(_months()) and {r["state"] for r in runs} == {"success"}, runs


def test_backfill_equals_one_by_one_and_a_second_backfill_changes_nothing(deployment, dagbag, monkeypatch):
    dep = deployment
    sent_before = _scalar(dep, "select count(*) from circulation_log")
    # One by one: each month run alone with dag.test() against the deployment's warehouse (the
    # scheduler's own runs cost ~15 s each here; the backfills below go through it).
    for name in ("AIRFLOW_CONN_REVIEWS_WAREHOUSE", "AIRFLOW_VAR_REVIEWS_CONFIG", "AIRFLOW_VAR_REVIEWS_DATA_DIR",
                 "AIRFLOW_VAR_REVIEWS_INBOX", "REVIEWS_PSEUDONYMISATION_KEY"):
        monkeypatch.setenv(name, dep.env[name])
    summary = dagbag.get_dag("regional_learning_summary")
    from datetime import datetime, timezone

    for first in _months():
        y, m = first.year + (first.month == 12), first.month % 12 + 1
        dr = summary.test(logical_date=datetime(y, m, 1, 1, tzinfo=timezone.utc))  # builds the month before
        assert dr.state == "success", (first, {t.task_id: t.state for t in dr.get_task_instances()})
    one_by_one = _checksum(dep)
    assert one_by_one["timeliness"].split(":")[0] != "0" and one_by_one["bulletins"].startswith(f"{6 * len(_months())}:")

    # Wipe what the periods produced (September's bulletins were sent: their ledger stays), then backfill.
    with dep.warehouse.begin() as conn:
        conn.execute(sa.text("delete from timeliness where as_of_date between '2024-10-31' and '2026-09-30'"))
        conn.execute(sa.text("delete from bulletin_redactions where period_end < '2026-09-30'"))
        conn.execute(sa.text("delete from bulletins where audience not like '%:%' and period_end < '2026-09-30'"))
    assert _checksum(dep) != one_by_one
    _backfill(dep)
    assert _checksum(dep) == one_by_one

    _backfill(dep)  # again: nothing changes
    assert _checksum(dep) == one_by_one
    # A backfill rebuilds bulletins but sends nothing.
    assert _scalar(dep, "select count(*) from circulation_log") == sent_before
