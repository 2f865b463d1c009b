"""The production shape, run for real: a regional cycle through the REST API on a Celery
deployment (separate api-server, scheduler, dag-processor, triggerer and worker processes) on the
local PostgreSQL (metadata and warehouse) and Redis; the worker is killed mid-run and restarted.
"""
from __future__ import annotations

import json
import os
import tempfile
from datetime import date, datetime
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from reviews.core.config import load_config
from reviews_dev.synthetic import generate_returns
from tests.conftest import _postgres_database
from tests.integration.deployment import ROOT, SCHEDULER_POKE_SECONDS, deployment_env, free_port, start_deployment
from tests.smtp_fixtures import SMTP_PASSWORD, SMTP_USER, Controller, RecordingHandler, _Authenticator

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
    # PDFs are printed by Chromium in other tests; here they would only slow the summary runs down.
    # A sign-off request reminds the business unit after about 4 seconds (once).
    config = home / "reviews.yaml"
    config.write_text((ROOT / "config" / "reviews.yaml").read_text().replace("  pdf: true", "  pdf: false", 1)
                      .replace("signoff_reminder_hours: 24", "signoff_reminder_hours: 0.001", 1))
    env["AIRFLOW_VAR_REVIEWS_CONFIG"] = str(config)
    env["REVIEWS_SIGNOFF_POKE_SECONDS"] = SCHEDULER_POKE_SECONDS
    env["REVIEWS_SEND_BACKOFF_SECONDS"] = "0"
    smtp = RecordingHandler()
    controller = Controller(smtp, hostname="127.0.0.1", port=free_port(), authenticator=_Authenticator(SMTP_USER, SMTP_PASSWORD),
                            auth_required=True, auth_require_tls=False)
    controller.start()
    env["AIRFLOW_CONN_REVIEWS_SMTP"] = json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": controller.port, "login": SMTP_USER, "password": SMTP_PASSWORD,
        "extra": {"security": "none", "timeout": 10}})
    dep = start_deployment(home, env, port)
    dep.smtp = smtp
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
        controller.stop()
        dep.warehouse.dispose()
        dep.metadata.dispose()


def _signoff_path(run_id: str) -> str:
    return f"/dags/bulletin_circulation/dagRuns/{run_id}/taskInstances/sign_off/-1/hitlDetails"


def _wait_for_signoff(dep, run_id: str) -> dict:
    """The run's sign-off request once it waits under Required actions (through the REST API)."""
    def waiting():
        states = {t["task_id"]: t["state"] for t in dep.task_instances("bulletin_circulation", run_id)}
        return states.get("sign_off") == "awaiting_input" and dep.api("GET", _signoff_path(run_id))

    return dep.wait_for(f"the sign-off request of {run_id}", waiting, 300, 2)


def _answer(dep, run_id: str, option: str, reason: str = "") -> dict:
    """What a person does under Required actions, through the REST API; not within seconds of the
    request appearing (an answer that beats the scheduler's handling of the parked task's executor
    report makes Airflow 3.3 retry the task and ask again: docs/bulletins.md)."""
    import time

    parked = dep.api("GET", f"/dags/bulletin_circulation/dagRuns/{run_id}/taskInstances/sign_off")
    started = datetime.fromisoformat(parked["start_date"])
    time.sleep(max(0.0, 15 - (datetime.now(started.tzinfo) - started).total_seconds()))
    return dep.api("PATCH", _signoff_path(run_id), json={"chosen_options": [option], "params_input": {"reason": reason}})


def _bulletin_sends(dep) -> int:
    """Ledger rows of learning bulletins (the ledger also holds the returns' feedback)."""
    return _scalar(dep, "select count(*) from circulation_log c join bulletins b on b.bulletin_id = c.bulletin_id "
                        "where b.audience not like '%:%'")


def _reminders(dep) -> int:
    return sum("waiting for sign-off" in m.message["Subject"] for m in dep.smtp.messages)


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

    # The rest of the cycle: April to June 2026's bulletins, then circulation, asked for by hand for that
    # quarter as an analyst would (so the test does not depend on today's date and the send timetable).
    summary = dep.trigger("regional_learning_summary", "2026-07-01T00:00:00+00:00")
    assert dep.wait_for_run("regional_learning_summary", summary, 300) == "success"
    quarter = "select count(*) from bulletins where period_start = '2026-04-01' and period_end = '2026-06-30'"
    assert _scalar(dep, quarter) == 6

    send = dep.trigger("bulletin_circulation", None, conf={"period_end": "2026-06-30"})
    request = _wait_for_signoff(dep, send)
    assert request["subject"] == "Sign off the learning bulletins: Q1 2026-27 (April to June 2026)"
    assert "/reviews/bulletins/" in request["body"] and "17 email(s) in all" in request["body"]
    assert request["options"] == ["Approve and send", "Reject"]
    # Waiting for the answer: nothing sent, and the business unit reminded once.
    dep.wait_for("the sign-off reminder", lambda: _reminders(dep) == 1, 120, 1)
    assert _bulletin_sends(dep) == 0
    assert not [m for m in dep.smtp.messages if "learning bulletin:" in m.message["Subject"]]
    _answer(dep, send, "Approve and send")
    assert dep.wait_for_run("bulletin_circulation", send, 300) == "success"

    def quarter_sent():
        n = _scalar(dep, "select count(*) from circulation_log c join bulletins b on b.bulletin_id = c.bulletin_id "
                         "where b.period_start = '2026-04-01' and c.status = 'sent'")
        return n >= 17 and n

    assert dep.wait_for("April to June's bulletins sent", quarter_sent, 300, 3) == 17
    got = [m for m in dep.smtp.messages if "learning bulletin:" in m.message["Subject"]]
    assert len(got) == 17 and _reminders(dep) == 1
    assert _scalar(dep, "select decided_by from bulletin_signoffs where status = 'approved'") == "business_unit"
    assert _scalar(dep, "select count(*) from (select bulletin_id, recipient from circulation_log "
                        "group by bulletin_id, recipient having count(*) > 1) d") == 0
    assert _scalar(dep, "select count(*) from timeliness") > 0
    # Deployed DAGs carry their Deadline Alerts: the dag-processor registered one per DAG.
    from reviews_airflow.dag_defaults import DEADLINES

    with dep.metadata.connect() as conn:
        names = set(conn.execute(sa.text("select name from deadline_alert")).scalars())
    assert {f"{what} not finished in time" for _, what in DEADLINES.values()} <= names


def test_a_late_build_asks_for_sign_off_and_a_rejection_sends_nothing(deployment):
    """January to March 2026, built now (its send day was in April, within circulation.late_send_window_days):
    the build asks bulletin_circulation, through the bulletins asset, to put it to sign-off; rejected
    with a reason, nothing is sent and the reason is kept."""
    dep = deployment
    sent_before = _bulletin_sends(dep)
    summary = dep.trigger("regional_learning_summary", "2026-04-01T00:00:00+00:00")
    assert dep.wait_for_run("regional_learning_summary", summary, 300) == "success"

    def asked():
        runs = dep.api("GET", "/dags/bulletin_circulation/dagRuns",
                       params={"run_type": "asset_triggered", "limit": 100})["dag_runs"]
        for r in runs:
            states = {t["task_id"]: t["state"] for t in dep.task_instances("bulletin_circulation", r["dag_run_id"])}
            if states.get("sign_off") == "awaiting_input":
                return r["dag_run_id"]
        return None

    run_id = dep.wait_for("the asset-triggered sign-off request for January to March", asked, 300, 2)
    request = dep.api("GET", _signoff_path(run_id))
    assert request["subject"] == "Sign off the learning bulletins: Q4 2025-26 (January to March 2026)"
    _answer(dep, run_id, "Reject", "Figures for Wirral are being corrected")
    assert dep.wait_for_run("bulletin_circulation", run_id, 300) == "success"
    states = {t["task_id"]: t["state"] for t in dep.task_instances("bulletin_circulation", run_id)}
    assert states["record_signoff"] == "skipped" and states["queue"] == "skipped" and states["send"] == "skipped"
    row = dep.warehouse.connect().execute(sa.text(
        "select status, decided_by, reason from bulletin_signoffs where period_end = '2026-03-31'")).one()
    assert tuple(row) == ("rejected", "business_unit", "Figures for Wirral are being corrected")
    assert _bulletin_sends(dep) == sent_before


# Quarters: October to December 2024 up to April to June 2026 (the last whose returns were generated).
BACKFILL_FROM, BACKFILL_TO = "2024-10-01", "2026-04-01"


def _quarters():
    out, (y, m) = [], (2024, 10)
    while (y, m) <= (2026, 4):
        out.append(date(y, m, 1))
        y, m = (y + (m >= 10), (m + 2) % 12 + 1)
    return out


def _checksum(dep) -> dict[str, str]:
    """What the periods produced, minus surrogate ids and audit timestamps."""
    import hashlib

    queries = {
        "timeliness": "select partnership_code, stage, record_id, as_of_date, start_date, due_date, completed_date, "
                      "working_days_taken, status, rule_set, reason from timeliness where as_of_date between "
                      "'2024-12-31' and '2026-06-30' order by 1, 2, 3, 4",
        "bulletins": "select period_start, period_end, audience, version, content_hash, subject from bulletins "
                     "where audience not like '%:%' and period_start between '2024-10-01' and '2026-04-01' "
                     "order by 1, 2, 3, 4",
    }
    out = {}
    with dep.warehouse.connect() as conn:
        for name, sql in queries.items():
            rows = conn.execute(sa.text(sql)).all()
            out[name] = f"{len(rows)}:" + hashlib.sha256(repr([tuple(map(str, r)) for r in rows]).encode()).hexdigest()
    return out


def _backfill(dep, start: str = BACKFILL_FROM, end: str = BACKFILL_TO, runs: int | None = None) -> None:
    """`airflow backfill create` through the running scheduler; wait until it is complete."""
    import subprocess

    from tests.integration.deployment import BIN

    before = {b["id"] for b in dep.api("GET", "/backfills", params={"dag_id": "regional_learning_summary"})["backfills"]}
    subprocess.run([str(BIN / "airflow"), "backfill", "create", "--dag-id", "regional_learning_summary",
                    "--from-date", start, "--to-date", end, "--reprocess-behavior", "completed",
                    "--max-active-runs", "2"], env=dep.env, check=True, capture_output=True, timeout=120)
    [backfill] = [b for b in dep.api("GET", "/backfills", params={"dag_id": "regional_learning_summary"})["backfills"]
                  if b["id"] not in before]

    def complete():
        return dep.api("GET", f"/backfills/{backfill['id']}")["completed_at"] is not None

    dep.wait_for(f"backfill {backfill['id']} to complete", complete, 1500, 5)

    from reviews.core.run_dates import LONDON

    def in_range(r) -> bool:  # the run's period starts within [start, end] (UK dates)
        first = datetime.fromisoformat(r["data_interval_start"]).astimezone(LONDON).date()
        return date.fromisoformat(start) <= first <= date.fromisoformat(end)

    runs_made = [r for r in dep.api("GET", "/dags/regional_learning_summary/dagRuns",
                                    params={"run_type": "backfill", "limit": 100})["dag_runs"] if in_range(r)]
    assert len(runs_made) == (len(_quarters()) if runs is None else runs), runs_made
    assert {r["state"] for r in runs_made} == {"success"}, runs_made


def test_backfill_equals_one_by_one_and_a_second_backfill_changes_nothing(deployment, dagbag, monkeypatch):
    dep = deployment
    sent_before = _bulletin_sends(dep)
    # One by one: each quarter run alone with dag.test() against the deployment's warehouse (the
    # backfills below go through the scheduler).
    for name in ("AIRFLOW_CONN_REVIEWS_WAREHOUSE", "AIRFLOW_VAR_REVIEWS_CONFIG", "AIRFLOW_VAR_REVIEWS_DATA_DIR",
                 "AIRFLOW_VAR_REVIEWS_INBOX", "REVIEWS_PSEUDONYMISATION_KEY"):
        monkeypatch.setenv(name, dep.env[name])
    summary = dagbag.get_dag("regional_learning_summary")
    from datetime import datetime, timezone

    for first in _quarters():
        y, m = first.year + (first.month == 10), (first.month + 2) % 12 + 1
        dr = summary.test(logical_date=datetime(y, m, 1, 1, tzinfo=timezone.utc))  # builds the quarter before
        assert dr.state == "success", (first, {t.task_id: t.state for t in dr.get_task_instances()})
    one_by_one = _checksum(dep)
    assert one_by_one["timeliness"].split(":")[0] != "0" and one_by_one["bulletins"].startswith(f"{6 * len(_quarters())}:")

    # Wipe what the periods produced (April to June's bulletins were sent: their ledger stays), then backfill.
    with dep.warehouse.begin() as conn:
        conn.execute(sa.text("delete from timeliness where as_of_date between '2024-12-31' and '2026-03-31'"))
        conn.execute(sa.text("delete from bulletin_redactions where period_end < '2026-06-30'"))
        conn.execute(sa.text("delete from bulletins where audience not like '%:%' and period_end < '2026-06-30'"))
    assert _checksum(dep) != one_by_one
    _backfill(dep)
    assert _checksum(dep) == one_by_one

    _backfill(dep)  # again: nothing changes
    assert _checksum(dep) == one_by_one
    # A backfill rebuilds bulletins but sends nothing.
    assert _bulletin_sends(dep) == sent_before


def test_pausing_unpausing_and_backfilling_send_nothing(deployment):
    """Issue 15's sequence: a period is built while bulletin_circulation is paused, circulation is
    unpaused, then an analyst backfills an older period. Every circulation run that follows sends
    nothing and asks nothing (nothing in them was built after its send day outside a backfill)."""
    dep = deployment
    sent_before = _bulletin_sends(dep)
    asked_before = _scalar(dep, "select count(*) from bulletin_signoffs")
    with dep.warehouse.begin() as conn:  # a build finds new content: October to December 2025 is built afresh
        conn.execute(sa.text("delete from bulletins where audience not like '%:%' and period_end = '2025-12-31'"))
    dep.api("PATCH", "/dags/bulletin_circulation", json={"is_paused": True})
    summary = dep.trigger("regional_learning_summary", "2026-01-02T00:00:00+00:00")  # builds Oct to Dec 2025
    assert dep.wait_for_run("regional_learning_summary", summary, 300) == "success"
    assert _scalar(dep, "select count(*) from bulletins where period_end = '2025-12-31'") == 6
    runs_before = {r["dag_run_id"] for r in dep.api("GET", "/dags/bulletin_circulation/dagRuns",
                                                    params={"limit": 100})["dag_runs"]}
    dep.unpause("bulletin_circulation")
    _backfill(dep, "2025-01-01", "2025-01-01", runs=1)  # January to March 2025, rebuilt by an analyst

    def settled():
        runs = [r for r in dep.api("GET", "/dags/bulletin_circulation/dagRuns", params={"limit": 100})["dag_runs"]
                if r["dag_run_id"] not in runs_before]
        return runs and all(r["state"] in ("success", "failed") for r in runs) and runs

    import time

    new_runs = dep.wait_for("circulation runs after the unpause and the backfill", settled, 300, 3)
    time.sleep(10)  # any run the last asset event makes has been created by now
    new_runs = settled()
    assert new_runs, "unpausing with queued bulletin events should have woken circulation"
    for r in new_runs:
        states = {t["task_id"]: t["state"] for t in dep.task_instances("bulletin_circulation", r["dag_run_id"])}
        assert r["state"] == "success" and states["sign_off"] == "skipped" and states["send"] == "skipped", (r, states)
    assert _bulletin_sends(dep) == sent_before
    assert _scalar(dep, "select count(*) from bulletin_signoffs") == asked_before
