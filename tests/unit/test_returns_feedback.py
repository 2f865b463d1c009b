"""Ingest, quality reports and their sending, on the package alone (no Airflow)."""
from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from reviews.core import warehouse as wh
from reviews.circulation.bulletin_sends import recipients_for
from reviews.circulation.feedback_sends import send_feedback
from reviews.returns.quality_reports import build_quality_reports
from reviews.returns.ingest import ingest_partnership
from reviews.core.mail import OutboxTransport
from reviews.privacy.pseudonymise import check_key

KEY = check_key("unit-test-key-for-feedback-0000")
NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)
HEADER = "notification_id,child_ref,incident_date,aware_date,notified_date,incident_type\r\n"


def _ingest(engine, cfg, tmp_path: Path, as_of: date):
    return ingest_partnership(engine, cfg, "knowsley", tmp_path / "inbox", tmp_path / "raw", KEY, as_of,
                              clock=lambda: NOW, docs_dir=tmp_path / "docs")


def test_recipients_of_feedback(cfg):
    assert recipients_for(cfg, "quality:sefton") == ["lscp.performance@sefton.gov.uk"]
    assert recipients_for(cfg, "returns:sefton") == list(cfg.business_unit_email)
    assert recipients_for(cfg, "quality:halton") is None and recipients_for(cfg, "gossip:sefton") is None
    assert recipients_for(cfg, "sefton") == list(cfg.partnership("sefton").distribution)


def test_ingest_reports_and_sends_once(tmp_path, sqlite_url, cfg):
    engine = wh.make_engine(sqlite_url)
    wh.ensure_schema(engine)
    inbox = tmp_path / "inbox" / "knowsley"
    inbox.mkdir(parents=True)
    (inbox / "notifications_2024-07-10.csv").write_text(
        HEADER + "K-1,CHILD-SECRET-1,01/05/2024,02/05/2024,03/05/2024,death\r\n"
                 "K-2,CHILD-SECRET-2,01/05/2024,,03/05/2024,death\r\n"
                 "K-2,CHILD-SECRET-2,01/05/2024,02/05/2024,03/05/2024,death\r\n", encoding="utf-8")
    (inbox / "learning_2024-07-10.csv").write_bytes(b"\x00\x01binary")

    summary = _ingest(engine, cfg, tmp_path, date(2024, 7, 15))
    assert (summary.rows_read, summary.rows_loaded, summary.rows_quarantined, summary.files_failed) == (3, 1, 2, 1)
    assert [Path(p).name for p in summary.data_docs] == ["notifications.html"]
    with engine.connect() as conn:
        files = conn.execute(sa.text("select rows_read, rows_loaded, rows_quarantined from return_files")).all()
    assert all(r == lo + q for r, lo, q in files)

    built = build_quality_reports(engine, cfg, "knowsley", tmp_path / "reports", date(2024, 7, 15), clock=lambda: NOW)
    assert [(b["return_date"], b["files"], b["rows_quarantined"]) for b in built] == [("2024-07-10", 2, 2)]
    assert build_quality_reports(engine, cfg, "knowsley", tmp_path / "reports", date(2024, 7, 15)) == []  # all covered
    html = Path(built[0]["path"]).read_text(encoding="utf-8")
    text = Path(built[0]["path"]).with_suffix(".txt").read_text(encoding="utf-8")
    for words in ("aware_date is blank (it is required)", "notification_id appears more than once in the file",
                  "the file contains binary data", "No rows from earlier returns are waiting"):
        assert words in text and words in html, words
    with engine.connect() as conn:
        keys = [k for (k,) in conn.execute(sa.text("select child_key from notifications"))]
    for secret in ["CHILD-SECRET-1", "CHILD-SECRET-2", *keys]:
        assert secret not in html and secret not in text

    outbox = OutboxTransport(tmp_path / "outbox")
    first = send_feedback(engine, cfg, outbox, clock=lambda: NOW)
    assert (first["feedback_bulletins"], first["queued"], first["sent"]) == (1, 1, 1)
    assert send_feedback(engine, cfg, outbox, clock=lambda: NOW)["sent"] == 0  # exactly once

    # A corrected resubmission with the same date is a new return: its own report, sent too.
    (inbox / "notifications_2024-07-10 v2.csv").write_text("x", encoding="utf-8")  # not a template name: failed
    (inbox / "notifications_2024-07-12.csv").write_text(
        HEADER + "K-2,CHILD-SECRET-2,01/05/2024,02/05/2024,03/05/2024,death\r\n", encoding="utf-8")
    summary = _ingest(engine, cfg, tmp_path, date(2024, 7, 15))
    assert summary.rows_resolved == 2  # both K-2 rows of the first return
    build_quality_reports(engine, cfg, "knowsley", tmp_path / "reports", date(2024, 7, 15), clock=lambda: NOW)
    assert send_feedback(engine, cfg, outbox, clock=lambda: NOW)["sent"] == 2
    with engine.connect() as conn:
        open_rows = conn.execute(sa.text("select count(*) from quarantine where resolved_by_file_id is null")).scalar()
        sends = conn.execute(sa.text("select count(*), count(distinct bulletin_id) from circulation_log")).one()
    assert open_rows == 0 and tuple(sends) == (3, 3)
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 3
    engine.dispose()
