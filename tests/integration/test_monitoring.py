"""Every failure reaches the business unit; deadlines warn; neither carries case data."""
from __future__ import annotations

import asyncio
import email
import email.policy
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
import yaml

from reviews.core.config import load_config
from reviews_dev.synthetic import generate_returns

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _two_partnership_config(tmp_path: Path) -> Path:
    raw = yaml.safe_load((ROOT / "config" / "reviews.yaml").read_text())
    raw["partnerships"] = {k: raw["partnerships"][k] for k in ("knowsley", "sefton")}
    path = tmp_path / "reviews.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _messages(outbox: Path) -> list:
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in sorted(outbox.glob("*.eml"))]


def test_a_broken_partnership_fails_alone_and_the_business_unit_is_told(dagbag, tmp_path, sqlite_url, monkeypatch):
    config = _two_partnership_config(tmp_path)
    data = tmp_path / "data"
    generate_returns(data / "inbox", load_config(config), start=date(2025, 4, 1), end=date(2025, 9, 30),
                     seed=3, inflate=3, partnerships=["knowsley"])
    assert not (data / "inbox" / "sefton").exists()  # Sefton's drop folder is missing
    monkeypatch.setenv("AIRFLOW_VAR_REVIEWS_CONFIG", str(config))
    monkeypatch.setenv("AIRFLOW_VAR_REVIEWS_INBOX", str(data / "inbox"))
    monkeypatch.setenv("AIRFLOW_VAR_REVIEWS_DATA_DIR", str(data))
    monkeypatch.setenv("AIRFLOW_CONN_REVIEWS_WAREHOUSE", sqlite_url)
    monkeypatch.setenv("REVIEWS_PSEUDONYMISATION_KEY", "monitoring-test-key-0123456789")

    dr = dagbag.get_dag("partnership_returns").test(logical_date=datetime(2025, 10, 31, tzinfo=timezone.utc))
    states = {(ti.task_id, ti.map_index): ti.state for ti in dr.get_task_instances()}
    assert dr.state == "failed"
    assert states[("ingest", 0)] == "success"  # Knowsley loaded
    assert states[("ingest", 1)] == "failed"  # Sefton failed, after its retries
    assert states[("publish_cases", -1)] == "success"  # Knowsley's data still handed over

    notices = [m for m in _messages(data / "outbox") if "failed" in m["Subject"]]
    assert len(notices) == 1, [m["Subject"] for m in notices]
    body = notices[0].get_body(("plain",)).get_content()
    assert notices[0]["Subject"] == "[reviews] failed: partnership_returns.ingest for sefton"
    for needle in ("DAG: partnership_returns", "Task: ingest", f"Run: {dr.run_id}", "Partnership: sefton",
                   "FileNotFoundError: sefton: the drop folder", "Log: "):
        assert needle in body, needle
    assert set(m["To"] for m in notices) == {"business.unit@merseyside-safeguarding.gov.uk"}


def test_deadline_callback_emails_the_business_unit(airflow_db, tmp_path, monkeypatch):
    from reviews_airflow.deadlines import deadline_alert, deadline_missed

    monkeypatch.setenv("AIRFLOW_VAR_REVIEWS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("AIRFLOW_CONN_REVIEWS_SMTP", raising=False)

    class Run:
        dag_id, run_id = "partnership_returns", "scheduled__2026-11-02T06:00:00+00:00"

    asyncio.run(deadline_missed({"dag_run": Run()}, what="the daily returns run", allowed_minutes=120))
    [message] = _messages(tmp_path / "outbox")
    assert message["Subject"] == "[reviews] deadline missed: the daily returns run"
    text = message.get_body(("plain",)).get_content()
    assert "DAG: partnership_returns" in text and "120 minutes" in text and Run.run_id in text
    alert = deadline_alert(__import__("datetime").timedelta(hours=2), "the daily returns run")
    assert alert.callback.path == "reviews_airflow.deadlines.deadline_missed"
