"""Exactly-once circulation: the ledger, a real SMTP server on localhost, faults and reruns."""
from __future__ import annotations

import email
from collections import Counter
from dataclasses import replace
from datetime import date, datetime, timezone
from email import policy
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from reviews.circulation.bulletin_sends import (
    queue_bulletin_sends,
    recipients_for,
    resolve_unconfirmed,
    send_pending,
)
from reviews.core.config import load_config
from reviews.core.mail import OutboxTransport, SmtpTransport
from reviews.core.warehouse import bulletins, circulation_log, ensure_schema, make_engine
from tests.smtp_fixtures import AIOSMTPD_WARNING, smtp_server  # noqa: F401

pytestmark = AIOSMTPD_WARNING

NOW = datetime(2024, 7, 5, 9, 30, tzinfo=timezone.utc)
Q1 = (date(2024, 4, 1), date(2024, 6, 30))
GMAIL = "sefton.friend@gmail.com"


def clock():
    return NOW


@pytest.fixture
def cfg():
    base = load_config()
    sefton = replace(base.partnerships["sefton"], distribution=(*base.partnerships["sefton"].distribution, GMAIL))
    return replace(base, partnerships={**base.partnerships, "sefton": sefton})


@pytest.fixture
def engine(tmp_path):
    eng = make_engine("sqlite:///" + str(tmp_path / "w.db"))
    ensure_schema(eng)
    yield eng
    eng.dispose()


def region_allowed(cfg) -> list[str]:
    return [a for a in recipients_for(cfg, "region") if a != GMAIL]


def add_bulletin(engine, folder: Path, *, audience="region", version=1, period=Q1, subject=None) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"bulletin_{audience}_{period[0]}_{period[1]}_v{version}"
    html = f"<html><body><h1>{audience} learning bulletin v{version}</h1></body></html>"
    stem.with_suffix(".html").write_text(html, encoding="utf-8")
    stem.with_suffix(".txt").write_text(f"{audience} learning bulletin v{version}\n", encoding="utf-8")
    with engine.begin() as conn:
        return conn.execute(
            insert(bulletins).values(
                period_start=period[0], period_end=period[1], audience=audience, version=version,
                content_hash=f"{audience}{version}".ljust(64, "0"), path=str(stem.with_suffix(".html")),
                subject=subject or f"Merseyside learning bulletin {period[0]:%b %Y} ({audience}, v{version})",
                built_at=NOW,
            )
        ).inserted_primary_key[0]


def ledger(engine, bulletin_id=None) -> dict[str, dict]:
    stmt = select(circulation_log).order_by(circulation_log.c.send_id)
    if bulletin_id is not None:
        stmt = stmt.where(circulation_log.c.bulletin_id == bulletin_id)
    with engine.connect() as conn:
        return {r["recipient"]: dict(r) for r in conn.execute(stmt).mappings()}


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def naive(dt: datetime) -> datetime:
    return dt.replace(tzinfo=None)


def test_queue_then_send_exactly_one_message_per_recipient(engine, cfg, smtp_server, tmp_path):  # noqa: F811
    bid = add_bulletin(engine, tmp_path / "b")
    q = queue_bulletin_sends(engine, cfg, clock=clock)
    expected = region_allowed(cfg)
    assert (q.bulletin_ids, q.queued, q.refused) == ([bid], len(expected), 1)
    assert len(expected) == 9  # every partnership's list and the business unit

    report = send_pending(engine, cfg, SmtpTransport(smtp_server.settings()), clock=clock, sleep=Sleeps())
    assert (report.sent, report.failed, report.refused, report.pending) == (9, 0, 0, 0)
    assert report.ok and report.failures == [] and report.unconfirmed == []

    got = smtp_server.handler.messages
    assert Counter(r for m in got for r in m.rcpt_tos) == Counter(expected)
    rows = ledger(engine, bid)
    for m in got:
        [to] = m.rcpt_tos
        assert m.message["To"] == to and m.mail_from == cfg.sender
        assert m.message["Subject"] == "Merseyside learning bulletin Apr 2024 (region, v1)"
        assert m.html.strip() == "<html><body><h1>region learning bulletin v1</h1></body></html>"
        assert m.text == "region learning bulletin v1\n"
        row = rows[to]
        assert (row["status"], row["attempt"], row["transport"], row["error"]) == ("sent", 1, "smtp", None)
        assert row["message_ref"] == m.message["Message-ID"]
        assert naive(row["sent_at"]) == naive(NOW) and naive(row["queued_at"]) == naive(NOW)

    # Running both steps again changes nothing and sends nothing.
    again = queue_bulletin_sends(engine, cfg, clock=clock)
    assert (again.queued, again.refused, again.already_in_ledger) == (0, 0, 10)
    second = send_pending(engine, cfg, SmtpTransport(smtp_server.settings()), clock=clock)
    assert (second.sent, second.failed, second.pending) == (0, 0, 0)
    assert len(smtp_server.handler.messages) == 9


def test_refused_domain_gets_a_refused_row_and_is_never_sent(engine, cfg, smtp_server, tmp_path):  # noqa: F811
    bid = add_bulletin(engine, tmp_path / "b", audience="sefton")
    queue_bulletin_sends(engine, cfg, clock=clock)
    row = ledger(engine, bid)[GMAIL]
    assert row["status"] == "refused" and "gmail.com is not in allowed_domains" in row["error"]
    send_pending(engine, cfg, SmtpTransport(smtp_server.settings()), clock=clock)
    send_pending(engine, cfg, SmtpTransport(smtp_server.settings()), clock=clock)
    assert [m.rcpt_tos for m in smtp_server.handler.messages] == [["sefton.scp@sefton.gov.uk"]]
    assert ledger(engine, bid)[GMAIL]["status"] == "refused" and ledger(engine, bid)[GMAIL]["attempt"] == 0


def test_partnership_bulletin_goes_to_that_partnership_only(engine, cfg, tmp_path):
    bid = add_bulletin(engine, tmp_path / "b", audience="knowsley")
    queue_bulletin_sends(engine, cfg, clock=clock)
    assert sorted(ledger(engine, bid)) == sorted(cfg.partnerships["knowsley"].distribution)


@pytest.mark.parametrize("fault", ["421", "drop"])
def test_outage_mid_batch_then_rerun_completes_without_duplicates(engine, cfg, smtp_server, tmp_path, fault):  # noqa: F811
    bid = add_bulletin(engine, tmp_path / "b")
    queue_bulletin_sends(engine, cfg, clock=clock)
    handler = smtp_server.handler
    handler.fault, handler.fail_after = fault, 3  # the server goes away after 3 messages

    sleeps = Sleeps()
    first = send_pending(engine, cfg, SmtpTransport(smtp_server.settings()), clock=clock, sleep=sleeps)
    assert (first.sent, first.failed, first.pending) == (3, 1, 5)
    assert first.stopped and "transient" in first.stopped and not first.ok
    assert sleeps == [2.0, 4.0]  # exponential backoff, attempts_per_call=3
    statuses = Counter(r["status"] for r in ledger(engine, bid).values())
    assert statuses == Counter({"sent": 3, "failed": 1, "pending": 5, "refused": 1})
    [failed] = [r for r in ledger(engine, bid).values() if r["status"] == "failed"]
    assert failed["attempt"] == 3 and ("421" in failed["error"] or "lost before" in failed["error"])
    assert failed["recipient"] in first.failures[0] and f"bulletin {bid}" in first.failures[0]

    handler.recover()
    second = send_pending(engine, cfg, SmtpTransport(smtp_server.settings()), clock=clock, sleep=Sleeps())
    assert (second.sent, second.failed, second.pending) == (6, 0, 0) and second.ok
    assert Counter(r for m in handler.messages for r in m.rcpt_tos) == Counter(region_allowed(cfg))
    assert ledger(engine, bid)[failed["recipient"]]["attempt"] == 4


def test_short_blip_is_retried_within_the_call(engine, cfg, smtp_server, tmp_path):  # noqa: F811
    add_bulletin(engine, tmp_path / "b")
    queue_bulletin_sends(engine, cfg, clock=clock)
    h = smtp_server.handler
    h.fault, h.fail_after, h.fail_times = "421", 2, 2
    sleeps = Sleeps()
    report = send_pending(engine, cfg, SmtpTransport(smtp_server.settings()), clock=clock, sleep=sleeps,
                          backoff_seconds=0.5)
    assert (report.sent, report.failed, report.pending) == (9, 0, 0) and report.ok
    assert sleeps == [0.5, 1.0]
    assert sorted(r["attempt"] for r in ledger(engine).values() if r["status"] == "sent") == [1] * 8 + [3]
    assert len(h.messages) == 9


def test_permanent_error_fails_that_row_only(engine, cfg, smtp_server, tmp_path):  # noqa: F811
    bid = add_bulletin(engine, tmp_path / "b")
    queue_bulletin_sends(engine, cfg, clock=clock)
    smtp_server.handler.reject = {"learning@liverpool.gov.uk"}
    sleeps = Sleeps()
    report = send_pending(engine, cfg, SmtpTransport(smtp_server.settings()), clock=clock, sleep=sleeps)
    assert (report.sent, report.failed, report.pending) == (8, 1, 0) and report.stopped is None
    assert sleeps == []  # 5xx: no retry in this call
    row = ledger(engine, bid)["learning@liverpool.gov.uk"]
    assert row["status"] == "failed" and row["attempt"] == 1 and "550" in row["error"]
    assert report.failures == [f"bulletin {bid}, learning@liverpool.gov.uk: attempt 1: {row['error']}"]


def test_failed_rows_stop_at_max_attempts(engine, cfg, smtp_server, tmp_path):  # noqa: F811
    bid = add_bulletin(engine, tmp_path / "b", audience="sefton")
    queue_bulletin_sends(engine, cfg, clock=clock)
    smtp_server.handler.fault = "421"
    kw = dict(clock=clock, sleep=Sleeps(), max_attempts=2)
    send_pending(engine, cfg, SmtpTransport(smtp_server.settings()), **kw)
    assert ledger(engine, bid)["sefton.scp@sefton.gov.uk"]["attempt"] == 2
    smtp_server.handler.recover()
    report = send_pending(engine, cfg, SmtpTransport(smtp_server.settings()), **kw)
    assert report.sent == 0 and report.failed == 1 and "gave up after 2 attempt(s)" in report.failures[0]
    report = send_pending(engine, cfg, SmtpTransport(smtp_server.settings()), clock=clock, max_attempts=3)
    assert report.sent == 1 and len(smtp_server.handler.messages) == 1


def test_drop_during_data_is_left_sending_and_not_resent(engine, cfg, smtp_server, tmp_path):  # noqa: F811
    bid = add_bulletin(engine, tmp_path / "b")
    queue_bulletin_sends(engine, cfg, clock=clock)
    h = smtp_server.handler
    h.fault, h.fail_after, h.fail_times = "drop_in_data", 2, 1
    first = send_pending(engine, cfg, SmtpTransport(smtp_server.settings()), clock=clock, sleep=Sleeps())
    assert (first.sent, first.failed, len(first.unconfirmed)) == (8, 0, 1)
    [row] = [r for r in ledger(engine, bid).values() if r["status"] == "sending"]
    assert row["attempt"] == 1 and row["message_ref"].startswith("<") and "delivery unknown" in row["error"]

    again = send_pending(engine, cfg, SmtpTransport(smtp_server.settings()), clock=clock)
    assert again.sent == 0 and len(again.unconfirmed) == 1 and row["message_ref"] in again.unconfirmed[0]
    assert len(h.messages) == 8

    # The analyst finds it in no server log: it goes again, once.
    resolve_unconfirmed(engine, row["send_id"], delivered=False, note="not in relay log")
    third = send_pending(engine, cfg, SmtpTransport(smtp_server.settings()), clock=clock)
    assert third.sent == 1 and third.ok
    assert Counter(r for m in h.messages for r in m.rcpt_tos) == Counter(region_allowed(cfg))
    with pytest.raises(ValueError, match="not in status 'sending'"):
        resolve_unconfirmed(engine, row["send_id"], delivered=True)


class CrashAfterAccept:
    """Hands the message over, then the process 'dies' before the ledger hears about it."""

    name = "outbox"

    def __init__(self, outbox: OutboxTransport, crash_on: int):
        self.outbox, self.crash_on, self.calls = outbox, crash_on, 0

    def send(self, sender, message):
        self.calls += 1
        ref = self.outbox.send(sender, message)
        if self.calls == self.crash_on:
            raise KeyboardInterrupt("worker killed")
        return ref


def test_crash_after_the_server_accepted_is_not_resent(engine, cfg, tmp_path):
    bid = add_bulletin(engine, tmp_path / "b")
    queue_bulletin_sends(engine, cfg, clock=clock)
    outbox = OutboxTransport(tmp_path / "outbox")
    with pytest.raises(KeyboardInterrupt):
        send_pending(engine, cfg, CrashAfterAccept(outbox, crash_on=4), clock=clock)
    rows = ledger(engine, bid)
    assert Counter(r["status"] for r in rows.values()) == Counter(
        {"sent": 3, "sending": 1, "pending": 5, "refused": 1}
    )
    [crashed] = [r for r in rows.values() if r["status"] == "sending"]

    report = send_pending(engine, cfg, outbox, clock=clock)
    assert report.sent == 5 and len(report.unconfirmed) == 1 and crashed["recipient"] in report.unconfirmed[0]
    assert ledger(engine, bid)[crashed["recipient"]]["status"] == "sending"
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 9  # the crashed one was written once

    resolve_unconfirmed(engine, crashed["send_id"], delivered=True, clock=clock)
    assert ledger(engine, bid)[crashed["recipient"]]["status"] == "sent"
    assert send_pending(engine, cfg, outbox, clock=clock).ok


def test_newer_version_is_not_resent_unless_asked(engine, cfg, smtp_server, tmp_path):  # noqa: F811
    v1 = add_bulletin(engine, tmp_path / "b", version=1)
    queue_bulletin_sends(engine, cfg, clock=clock)
    transport = SmtpTransport(smtp_server.settings())
    assert send_pending(engine, cfg, transport, clock=clock).sent == 9

    v2 = add_bulletin(engine, tmp_path / "b", version=2)
    q = queue_bulletin_sends(engine, cfg, clock=clock)
    assert (q.bulletin_ids, q.queued, q.not_resent) == ([v2], 0, 9)
    assert send_pending(engine, cfg, transport, clock=clock).sent == 0

    with pytest.raises(ValueError, match=rf"\[{v1}\]"):
        queue_bulletin_sends(engine, cfg, resend_bulletin_ids={v1})  # only the newest can be resent
    with pytest.raises(ValueError, match="999"):
        queue_bulletin_sends(engine, cfg, resend_bulletin_ids={999})

    q = queue_bulletin_sends(engine, cfg, resend_bulletin_ids={v2}, clock=clock)
    assert q.queued == 9
    assert send_pending(engine, cfg, transport, clock=clock).sent == 9
    subjects = Counter((m.rcpt_tos[0], m.message["Subject"][-3:-1]) for m in smtp_server.handler.messages)
    assert set(subjects.values()) == {1}
    assert Counter(v for _, v in subjects) == Counter({"v1": 9, "v2": 9})


def test_unsent_older_version_is_superseded_by_the_newer(engine, cfg, tmp_path):
    v1 = add_bulletin(engine, tmp_path / "b", version=1)
    queue_bulletin_sends(engine, cfg, clock=clock)
    v2 = add_bulletin(engine, tmp_path / "b", version=2)
    q = queue_bulletin_sends(engine, cfg, clock=clock)
    assert (q.superseded, q.queued, q.not_resent) == (9, 9, 0)
    assert all(
        r["status"] == "refused" and (r["recipient"] == GMAIL or f"superseded by bulletin {v2}" in r["error"])
        for r in ledger(engine, v1).values()
    )
    report = send_pending(engine, cfg, OutboxTransport(tmp_path / "outbox"), clock=clock)
    assert report.sent == 9
    for path in (tmp_path / "outbox").glob("*.eml"):
        with path.open("rb") as fh:
            assert "(region, v2)" in email.message_from_binary_file(fh, policy=policy.default)["Subject"]


def test_list_and_allowlist_changes_are_applied_to_unsent_rows(engine, cfg, tmp_path):
    bid = add_bulletin(engine, tmp_path / "b", audience="knowsley")
    queue_bulletin_sends(engine, cfg, clock=clock)
    k = cfg.partnerships["knowsley"]
    smaller = replace(cfg, partnerships={**cfg.partnerships, "knowsley": replace(k, distribution=k.distribution[:1])})
    q = queue_bulletin_sends(engine, smaller, clock=clock)
    assert q.withdrawn == 1
    assert ledger(engine, bid)[k.distribution[1]]["error"] == "no longer on the distribution list"
    q = queue_bulletin_sends(engine, cfg, clock=clock)
    assert q.queued == 1 and ledger(engine, bid)[k.distribution[1]]["status"] == "pending"

    # A recipient whose domain is no longer allowed when the send runs is refused, not sent.
    narrow = replace(cfg, allowed_domains=("nhs.net",))
    report = send_pending(engine, narrow, OutboxTransport(tmp_path / "outbox"), clock=clock)
    assert (report.sent, report.refused) == (0, 2)
    assert {r["status"] for r in ledger(engine, bid).values()} == {"refused"}


def test_bad_bulletin_is_not_attempted(engine, cfg, tmp_path):
    bad = add_bulletin(engine, tmp_path / "b", audience="sefton", subject="Bulletin\r\nBcc: all@evil.example")
    gone = add_bulletin(engine, tmp_path / "b", audience="wirral")
    Path(tmp_path / "b" / f"bulletin_wirral_{Q1[0]}_{Q1[1]}_v1.txt").unlink()
    queue_bulletin_sends(engine, cfg, clock=clock)
    report = send_pending(engine, cfg, OutboxTransport(tmp_path / "outbox"), clock=clock)
    assert report.sent == 0 and report.pending == 3 and not report.ok
    assert any("subject contains a line break" in f and f"bulletin {bad}" in f for f in report.failures)
    assert any("cannot read the bulletin's files" in f and f"bulletin {gone}" in f for f in report.failures)
    assert all(r["attempt"] == 0 for r in ledger(engine).values())
    assert not (tmp_path / "outbox").exists()


def test_refused_login_stops_the_batch(engine, cfg, smtp_server, tmp_path):  # noqa: F811
    add_bulletin(engine, tmp_path / "b")
    queue_bulletin_sends(engine, cfg, clock=clock)
    report = send_pending(engine, cfg, SmtpTransport(smtp_server.settings(password="wrong")), clock=clock)
    assert (report.sent, report.failed, report.pending) == (0, 1, 8)
    assert report.stopped.startswith("SMTP login refused") and "535" in report.failures[0]
    assert smtp_server.handler.messages == []
    report = send_pending(engine, cfg, SmtpTransport(smtp_server.settings()), clock=clock)
    assert report.sent == 9


def test_outbox_transport_records_the_file_and_attachments(engine, cfg, tmp_path):
    bid = add_bulletin(engine, tmp_path / "b", audience="liverpool")
    pdf = tmp_path / "b" / "charts.pdf"
    pdf.write_bytes(b"%PDF charts")
    queue_bulletin_sends(engine, cfg, clock=clock)
    report = send_pending(
        engine, cfg, OutboxTransport(tmp_path / "outbox"), clock=clock, attachments_for=lambda b: [pdf]
    )
    assert report.sent == 2
    for recipient, row in ledger(engine, bid).items():
        assert row["transport"] == "outbox"
        with open(row["message_ref"], "rb") as fh:
            m = email.message_from_binary_file(fh, policy=policy.default)
        assert m["To"] == recipient
        assert [(a.get_filename(), a.get_content()) for a in m.iter_attachments()] == [("charts.pdf", b"%PDF charts")]


def test_periods_limit_what_is_queued(engine, cfg, tmp_path):
    add_bulletin(engine, tmp_path / "b", audience="sefton")
    q2 = (date(2024, 7, 1), date(2024, 9, 30))
    later = add_bulletin(engine, tmp_path / "b", audience="sefton", period=q2)
    q = queue_bulletin_sends(engine, cfg, periods=[q2], clock=clock)
    assert q.bulletin_ids == [later]
    assert {r["bulletin_id"] for r in ledger(engine).values()} == {later}


def test_unknown_audience_is_reported(engine, cfg, tmp_path):
    add_bulletin(engine, tmp_path / "b", audience="halton")
    q = queue_bulletin_sends(engine, cfg, clock=clock)
    assert q.queued == 0 and "halton" in q.problems[0]
