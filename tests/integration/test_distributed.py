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

from reviews.config import load_config
from reviews.synthetic import generate_returns
from tests.conftest import _postgres_database
from tests.integration.deployment import deployment_env, free_port, start_deployment

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.distributed]
REDIS_DB = 11


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
    dep = start_deployment(home, env, port)
    dep.warehouse = sa.create_engine(warehouse_url)
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


def _scalar(dep, sql, **params):
    with dep.warehouse.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def test_cycle_survives_a_worker_killed_mid_run(deployment):
    dep = deployment
    run_id = dep.trigger("partnership_returns", "2026-10-31T00:00:00+00:00")

    def ingest_running():
        return any(ti["task_id"] == "ingest" and ti["state"] == "running" for ti in dep.task_instances("partnership_returns", run_id))

    dep.wait_for("an ingest task to be running", ingest_running, 240, 0.5)
    import time

    time.sleep(0.5)
    killed = dep.kill("worker")  # SIGKILL the worker and every process under it, mid-task
    assert killed >= 3, "the worker, its pool and the running task's processes"
    dep.start_worker("worker2")
    assert dep.wait_for_run("partnership_returns", run_id, 420) == "success"
    tries = [ti["try_number"] for ti in dep.task_instances("partnership_returns", run_id) if ti["task_id"] == "ingest"]
    assert max(tries) >= 2, f"the kill should have interrupted a running ingest: {tries}"

    # Nothing lost: every file recorded once, every generated row read once.
    assert _scalar(dep, "select count(*) from return_files") == len(dep.generated.files)
    assert _scalar(dep, "select sum(rows_read) from return_files") == sum(sum(d.values()) for d in dep.generated.rows.values())
    # Nothing duplicated: rows_read splits exactly, quarantine and history hold one row per row read.
    assert _scalar(dep, "select count(*) from return_files where rows_read != rows_loaded + rows_quarantined") == 0
    assert _scalar(dep, "select count(*) from quarantine") == _scalar(dep, "select sum(rows_quarantined) from return_files")
    assert _scalar(dep, "select count(*) from record_history") == _scalar(dep, "select sum(rows_loaded) from return_files")

    # The returns run hands over through the cases asset: timeliness is judged as of the same day.
    dep.wait_for("timeliness as of 31 October 2026",
                 lambda: _scalar(dep, "select count(*) from timeliness where as_of_date = '2026-10-31'"), 240, 3)

    # The rest of the cycle: a September summary, then circulation through the bulletins asset.
    summary = dep.trigger("regional_learning_summary", "2026-10-01T00:00:00+00:00")
    assert dep.wait_for_run("regional_learning_summary", summary, 300) == "success"
    september = "select count(*) from bulletins where period_start = '2026-09-01' and period_end = '2026-09-30'"
    assert _scalar(dep, september) == 6

    def september_sent():
        n = _scalar(dep, "select count(*) from circulation_log c join bulletins b on b.bulletin_id = c.bulletin_id "
                         "where b.period_start = '2026-09-01' and c.status = 'sent'")
        return n >= 17 and n

    assert dep.wait_for("September bulletins sent", september_sent, 300, 3) == 17
    assert _scalar(dep, "select count(*) from (select bulletin_id, recipient from circulation_log "
                        "group by bulletin_id, recipient having count(*) > 1) d") == 0
    assert _scalar(dep, "select count(*) from timeliness") > 0
