"""Build and circulate a period's bulletins through Airflow itself (`dag.test()`), against a real
SMTP server on localhost (aiosmtpd, with login): what arrives is parsed and checked, and a
server that drops the connection mid-batch is survived by a rerun that sends nothing twice.
"""
from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from reviews.core import warehouse as wh
from reviews_dev.signoff import Answerer
from tests.bulletin_data import NHS_NUMBER, build, monthly_config
from tests.smtp_fixtures import AIOSMTPD_WARNING, smtp_server  # noqa: F401

pytestmark = [pytest.mark.slow, AIOSMTPD_WARNING]

SUMMARY_RUN = datetime(2024, 7, 1, tzinfo=timezone.utc)  # builds June 2024
SEND_RUN = datetime(2024, 7, 23, 8, 0, tzinfo=timezone.utc)  # June's send day (working Tuesday from day 15): asks, sends once approved


def _run(dagbag, dag_id: str, when: datetime, **kwargs):
    with Answerer() as answerer:  # the business unit approves each sign-off request (reviews_dev.signoff)
        dr = dagbag.get_dag(dag_id).test(logical_date=when, **kwargs)
    assert not answerer.errors, answerer.errors
    return dr, {ti.task_id: ti.state for ti in dr.get_task_instances()}


@pytest.fixture
def cycle(tmp_path, monkeypatch, smtp_server, cfg):  # noqa: F811
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    engine = wh.make_engine(url)
    build(engine, cfg)
    monkeypatch.setenv("AIRFLOW_CONN_REVIEWS_WAREHOUSE", url)
    monkeypatch.setenv("AIRFLOW_VAR_REVIEWS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AIRFLOW_VAR_REVIEWS_CONFIG", str(monthly_config(tmp_path)))
    monkeypatch.setenv("REVIEWS_SEND_BACKOFF_SECONDS", "0")
    monkeypatch.setenv(
        "AIRFLOW_CONN_REVIEWS_SMTP",
        json.dumps({"conn_type": "smtp", "host": smtp_server.host, "port": smtp_server.port, "login": smtp_server.user,
                    "password": smtp_server.password, "extra": {"security": "none", "timeout": 10}}),
    )
    return engine


def _ledger(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(
            sa.select(wh.circulation_log, wh.bulletins.c.audience)
            .join(wh.bulletins, wh.bulletins.c.bulletin_id == wh.circulation_log.c.bulletin_id)
        ).mappings()]


def test_bulletins_arrive_with_their_attachments(dagbag, cycle, smtp_server, cfg):  # noqa: F811
    dr, states = _run(dagbag, "regional_learning_summary", SUMMARY_RUN)
    assert dr.state == "success", states
    dr, states = _run(dagbag, "bulletin_circulation", SEND_RUN)
    assert dr.state == "success", states

    ledger = _ledger(cycle)
    assert ledger and {r["status"] for r in ledger} == {"sent"}
    received = smtp_server.handler.messages
    assert sorted(r for m in received for r in m.rcpt_tos) == sorted(r["recipient"] for r in ledger)
    business_unit = cfg.business_unit_email[0]
    regional_list = {a for p in cfg.partnerships.values() for a in p.distribution} | {business_unit}
    by_rcpt = {m.rcpt_tos[0]: m for m in received if len(m.rcpt_tos) == 1}
    assert len(by_rcpt) == len(regional_list)  # one regional email each; partnership pages counted below
    for m in received:
        assert len(m.rcpt_tos) == 1 and m.message["To"] == m.rcpt_tos[0]  # nobody sees another address
        subject = m.message["Subject"]
        assert subject.endswith("practice review learning bulletin: June 2024"), subject
        html, text = m.html, m.text
        assert "<script" not in html.lower() and "&lt;script&gt;" not in text
        assert 'src="cid:' in html and "data:image" not in html  # charts travel as related parts
        related = [p for p in m.message.walk() if p.get_content_type() == "image/png"]
        assert related and all(p["Content-ID"] for p in related)
        assert NHS_NUMBER not in m.raw.decode("utf-8", "replace") and NHS_NUMBER.replace(" ", "") not in text
        files = m.attachments()
        pdfs = [n for n in files if n.endswith(".pdf")]
        assert len(pdfs) == 1 and files[pdfs[0]].startswith(b"%PDF-")
        xlsx = [n for n in files if n.endswith(".xlsx")]
        # every copy carries its bulletin's published tables (circulation.xlsx_to_everyone)
        assert len(xlsx) == 1 and files[xlsx[0]][:2] == b"PK"
    regional = [m for m in received if m.message["Subject"].startswith("Merseyside")]
    assert {m.rcpt_tos[0] for m in regional} == regional_list
    knowsley = [m for m in received if m.message["Subject"].startswith("Knowsley")]
    assert {m.rcpt_tos[0] for m in knowsley} == set(cfg.partnership("knowsley").distribution)
    assert "7-minute briefing" in knowsley[0].text and "KNO-R-PUB" in knowsley[0].text  # listed; in full in the PDF

    # A rerun of circulation sends nothing again; a rebuild with unchanged figures adds no version.
    assert _run(dagbag, "regional_learning_summary", SUMMARY_RUN)[0].state == "success"
    assert _run(dagbag, "bulletin_circulation", SEND_RUN)[0].state == "success"
    assert len(smtp_server.handler.messages) == len(received)
    with cycle.connect() as conn:
        assert conn.execute(sa.select(sa.func.max(wh.bulletins.c.version))).scalar() == 1


def test_dropped_connection_mid_batch_then_rerun_completes_without_duplicates(dagbag, cycle, smtp_server):  # noqa: F811
    assert _run(dagbag, "regional_learning_summary", SUMMARY_RUN)[0].state == "success"
    handler = smtp_server.handler
    handler.fault, handler.fail_after = "drop", 4  # four messages accepted, then the server drops every MAIL

    dr, states = _run(dagbag, "bulletin_circulation", SEND_RUN)
    assert dr.state == "failed" and states["send"] == "failed"  # the business unit is told
    first = len(handler.messages)
    assert first == 4
    statuses = Counter(r["status"] for r in _ledger(cycle))
    assert statuses["sent"] == 4 and statuses["pending"] + statuses["failed"] == sum(statuses.values()) - 4
    assert statuses["sending"] == 0  # a drop before DATA is known not to have delivered

    handler.recover()
    dr, states = _run(dagbag, "bulletin_circulation", SEND_RUN)
    assert dr.state == "success", states
    ledger = _ledger(cycle)
    assert {r["status"] for r in ledger} == {"sent"}
    delivered = Counter((m.message["Subject"], m.rcpt_tos[0]) for m in handler.messages)
    assert len(handler.messages) == len(ledger) and max(delivered.values()) == 1  # nothing twice
