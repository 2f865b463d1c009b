"""`yearly_report` through Airflow itself (`dag.test()`) for the logical date 1 May 2025: it builds
2024-25 (HTML, XLSX, and the PDF when Chromium is here), waits for the business unit's sign-off
(answered by reviews_dev.signoff.Answerer), and mails each business contact once through the
ledger to a real SMTP server (aiosmtpd); a rerun sends nothing more."""
from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from reviews.core import warehouse as wh
from reviews.learning.browser import chromium_available
from reviews_dev.signoff import Answerer
from tests.smtp_fixtures import AIOSMTPD_WARNING, smtp_server  # noqa: F401
from tests.yearly_data import build

pytestmark = [pytest.mark.slow, AIOSMTPD_WARNING]

RUN = datetime(2025, 5, 1, 5, 0, tzinfo=timezone.utc)  # 06:00 UK time on 1 May 2025: builds 2024-25


def _run(dagbag, when: datetime):
    with Answerer(dag_id="yearly_report") as answerer:
        dr = dagbag.get_dag("yearly_report").test(logical_date=when)
    assert not answerer.errors, answerer.errors
    return dr, {ti.task_id: ti.state for ti in dr.get_task_instances()}, answerer.seen


@pytest.fixture
def warehouse(tmp_path, monkeypatch, smtp_server):  # noqa: F811
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    engine = wh.make_engine(url)
    build(engine)
    monkeypatch.setenv("AIRFLOW_CONN_REVIEWS_WAREHOUSE", url)
    monkeypatch.setenv("AIRFLOW_VAR_REVIEWS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("REVIEWS_SEND_BACKOFF_SECONDS", "0")
    monkeypatch.setenv(
        "AIRFLOW_CONN_REVIEWS_SMTP",
        json.dumps({"conn_type": "smtp", "host": smtp_server.host, "port": smtp_server.port, "login": smtp_server.user,
                    "password": smtp_server.password, "extra": {"security": "none", "timeout": 10}}),
    )
    if not chromium_available():  # the test suite has it; elsewhere the report is built without PDFs
        from tests.unit.test_yearly_report import _no_pdf_config

        monkeypatch.setenv("AIRFLOW_VAR_REVIEWS_CONFIG", str(_no_pdf_config(tmp_path)))
    return engine, tmp_path / "data"


def test_yearly_report_builds_2024_25_and_is_sent_once_after_sign_off(dagbag, warehouse, smtp_server, cfg):  # noqa: F811
    engine, data = warehouse
    dr, states, seen = _run(dagbag, RUN)
    assert dr.state == "success", states
    assert states["sign_off"] == "success" and states["send"] == "success"
    assert len(seen) == 1 and seen[0].subject == "Sign off the yearly report: 2024-25 (April 2024 to March 2025)"
    assert "/reviews/bulletins/" in seen[0].body

    folder = data / "yearly" / "2024-25"
    assert (folder / "merseyside-yearly-report-2024-25-v1.html").is_file()
    assert (folder / "merseyside-yearly-report-2024-25-v1.xlsx").read_bytes()[:2] == b"PK"
    pdf = folder / "knowsley-yearly-report-2024-25-v1.pdf"
    assert pdf.read_bytes().startswith(b"%PDF-") if chromium_available() else not pdf.exists()

    with engine.connect() as conn:
        ledger = [dict(r) for r in conn.execute(
            sa.select(wh.circulation_log, wh.bulletins.c.audience)
            .join(wh.bulletins, wh.bulletins.c.bulletin_id == wh.circulation_log.c.bulletin_id)).mappings()]
        signoffs = conn.execute(sa.select(wh.bulletin_signoffs.c.status, wh.bulletin_signoffs.c.dag_id)).all()
    assert signoffs == [("approved", "yearly_report")]
    assert ledger and {r["status"] for r in ledger} == {"sent"}
    contacts = {a for p in cfg.partnerships.values() for a in p.business_contact}
    assert {r["recipient"] for r in ledger if r["audience"] == "yearly:region"} == contacts | set(cfg.business_unit_email)
    assert {r["recipient"] for r in ledger if r["audience"] == "yearly:wirral"} == set(cfg.partnership("wirral").business_contact)

    received = smtp_server.handler.messages
    assert Counter((m.message["Subject"], m.rcpt_tos[0]) for m in received) == Counter(
        (s, r["recipient"]) for r in ledger
        for s in [f"{'Merseyside' if r['audience'] == 'yearly:region' else cfg.partnership(r['audience'][7:]).name} "
                  "safeguarding partnership yearly report: 2024-25"])
    for m in received:
        files = m.attachments()
        assert any(n.endswith(".xlsx") for n in files)
        assert any(n.endswith(".pdf") for n in files) == chromium_available()
        assert "Financial year 2024-25" in m.text

    # A rerun builds the same versions, asks nothing and sends nothing more.
    dr, states, seen = _run(dagbag, RUN)
    assert dr.state == "success", states
    assert not seen and states["sign_off"] == "skipped"
    assert len(smtp_server.handler.messages) == len(received)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.max(wh.bulletins.c.version))).scalar() == 1
