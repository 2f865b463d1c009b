"""The SMTP server refuses mid-batch while partnership_returns sends its feedback (data quality
reports to the partnerships, late-return notices to the business unit), through `dag.test()`
against a real SMTP server on localhost (aiosmtpd, with login).

The server accepts two messages, then answers 421 (service not available) to every MAIL. The
send task retries each row with backoff within a try, fails, and Airflow retries the task; the
run fails, having sent nothing twice, and the ledger (circulation_log) says what is pending and
what failed, with the attempts used. When the server is back, a rerun sends the rest, and every
message has arrived exactly once. (bulletin_circulation's own DAG-level test drops the connection
instead: tests/integration/test_bulletins_circulation.py.)
"""
from __future__ import annotations

import json
from collections import Counter
from datetime import date

import pytest

from reviews_dev.synthetic import generate_returns
from tests.integration.returns_support import prepare, write_config
from tests.smtp_fixtures import AIOSMTPD_WARNING, smtp_server  # noqa: F401

pytestmark = [pytest.mark.slow, AIOSMTPD_WARNING]

AS_OF = date(2025, 10, 31)
RETURNS = {"frequency": "quarterly", "due_days_after_period_end": 10, "expected_from": "2025-06-30"}


def _run(dagbag, day: date):
    from datetime import datetime, timezone

    dr = dagbag.get_dag("partnership_returns").test(logical_date=datetime(day.year, day.month, day.day, tzinfo=timezone.utc))
    return dr, {(ti.task_id, ti.map_index): ti for ti in dr.get_task_instances()}


def test_smtp_refusing_mid_batch_then_a_rerun_sends_the_rest_once(dagbag, tmp_path, sqlite_url, monkeypatch, cfg,
                                                                  smtp_server):  # noqa: F811
    config = write_config(tmp_path, {"knowsley": {}, "sefton": {}}, returns=RETURNS)
    env = prepare(monkeypatch, tmp_path, sqlite_url, config)
    generate_returns(env.inbox, cfg, start=date(2025, 4, 1), end=date(2025, 9, 30), seed=5, inflate=2,
                     partnerships=["knowsley", "sefton"])
    monkeypatch.setenv("REVIEWS_SEND_BACKOFF_SECONDS", "0")
    monkeypatch.setenv("AIRFLOW_CONN_REVIEWS_SMTP", json.dumps({
        "conn_type": "smtp", "host": smtp_server.host, "port": smtp_server.port, "login": smtp_server.user,
        "password": smtp_server.password, "extra": {"security": "none", "timeout": 10}}))
    handler = smtp_server.handler
    handler.fault, handler.fail_after = "421", 2

    dr, tis = _run(dagbag, AS_OF)
    assert dr.state == "failed"
    assert all(ti.state == "success" for (task, _i), ti in tis.items() if task != "send_feedback")  # the data is in
    send = tis[("send_feedback", -1)]
    assert send.state == "failed" and send.try_number == 3  # Airflow retried it twice
    assert len(handler.messages) == 2
    ledger = env.rows("select status, attempt, error from circulation_log order by send_id")
    statuses = Counter(r["status"] for r in ledger)
    assert statuses["sent"] == 2 and statuses["failed"] == 1 and statuses["sending"] == 0
    assert statuses["pending"] == len(ledger) - 3 > 0  # the ledger says what is still to go
    [failed] = [r for r in ledger if r["status"] == "failed"]
    assert failed["attempt"] == 6 and "421" in failed["error"]  # 2 tries per task try, backoff between
    assert all(r["attempt"] == 0 for r in ledger if r["status"] == "pending")

    handler.recover()
    dr, tis = _run(dagbag, AS_OF)
    assert dr.state == "success", {k: ti.state for k, ti in tis.items()}
    ledger = env.rows("select status, attempt from circulation_log")
    assert {r["status"] for r in ledger} == {"sent"}
    delivered = Counter((m.message["Subject"], tuple(m.rcpt_tos)) for m in handler.messages)
    assert len(handler.messages) == len(ledger) and max(delivered.values()) == 1  # nothing twice
    assert env.scalar("select count(*) from return_files") == env.scalar(
        "select count(*) from return_files where quality_report_id is not null")
