"""Timeliness alerts: once per case and status change, through the mail path, no child identifiers."""
from __future__ import annotations

import email
from dataclasses import replace
from datetime import date, datetime, timezone
from email import policy
from types import SimpleNamespace

import pytest
from sqlalchemy import insert, select

from reviews.core import warehouse as wh
from reviews.timeliness.alerts import (
    PENDING,
    SENDING,
    SENT,
    alert_message,
    current_alert_rows,
    resolve_unconfirmed,
    run_alerts,
)
from reviews.core.config import load_config
from reviews.core.mail import DeliveryUnknownError, OutboxTransport, PermanentSendError, SmtpTransport
from tests.smtp_fixtures import AIOSMTPD_WARNING, smtp_server  # noqa: F401

D = date
NOW = datetime(2024, 6, 21, 8, 0, tzinfo=timezone.utc)
FRI = D(2024, 6, 21)  # at-risk window (3 working days) ends Wednesday 26 June
WED = D(2024, 6, 26)


def clock():
    return NOW


@pytest.fixture
def cfg():
    return load_config()


@pytest.fixture
def engine(tmp_path):
    eng = wh.make_engine("sqlite:///" + str(tmp_path / "w.db"))
    wh.ensure_schema(eng)
    yield eng
    eng.dispose()


class Recorder:
    """A transport that keeps what it is given (and can be told to fail)."""

    name = "recorder"

    def __init__(self, error: Exception | None = None):
        self.sent: list = []
        self.error = error

    def send(self, sender, message):
        if self.error is not None:
            raise self.error
        self.sent.append(message)
        return f"<ref-{len(self.sent)}@test>"


def judged(engine, as_of, rows):
    """Write a timeliness partition by hand: rows are (code, stage, record_id, status, due)."""
    with engine.begin() as conn:
        conn.execute(wh.timeliness.delete().where(wh.timeliness.c.as_of_date == as_of))
        conn.execute(insert(wh.timeliness), [
            {"partnership_code": code, "stage": stage, "record_id": rid, "as_of_date": as_of, "start_date": None,
             "due_date": due, "completed_date": None, "working_days_taken": None, "status": status,
             "rule_set": "working_together_2023", "reason": None}
            for code, stage, rid, status, due in rows
        ])


def ledger(engine):
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(wh.timeliness_alerts).order_by(wh.timeliness_alerts.c.alert_id))
                .mappings()]


DAY1 = [
    ("knowsley", "notification", "KNO-N-0001", "open_at_risk", D(2024, 6, 25)),  # 2 working days left
    ("wirral", "rapid_review", "WIR-N-0007", "open_overdue", D(2024, 6, 19)),  # 2 working days late
    ("sefton", "notification", "SEF-N-0003", "open_on_track", D(2024, 7, 1)),
    ("sefton", "lcspr_completion", "SEF-R-001", "met", D(2024, 5, 1)),
]


def test_one_email_lists_what_became_at_risk_or_overdue(engine, cfg):
    judged(engine, FRI, DAY1)
    transport = Recorder()
    report = run_alerts(engine, cfg, transport, FRI, clock=clock)
    assert (report.at_risk, report.overdue, report.new, report.emails, report.listed) == (1, 1, 2, 1, 2)
    [message] = transport.sent
    assert message.to == cfg.business_unit_email
    assert message.subject == "[reviews] Statutory timeliness as of 21 June 2024: 1 now overdue, 1 now at risk"
    lines = message.text.splitlines()
    overdue = next(i for i, ln in enumerate(lines) if "WIR-N-0007" in ln)
    at_risk = next(i for i, ln in enumerate(lines) if "KNO-N-0001" in ln)
    assert overdue < at_risk  # overdue first
    assert "Wirral" in lines[overdue] and "Rapid review" in lines[overdue] and "19 June 2024" in lines[overdue]
    assert "overdue by 2 working days" in lines[overdue]
    assert "Knowsley" in lines[at_risk] and "Notification to the Panel" in lines[at_risk]
    assert "25 June 2024" in lines[at_risk] and "2 working days left" in lines[at_risk]
    assert "SEF-" not in message.text and "SEF-" not in message.html
    assert ">KNO-N-0001</td>" in message.html and '<html lang="en">' in message.html
    # Written for people: what happened in words, what to do next; no warehouse table to go and read.
    assert "- 1 rapid review is overdue." in lines
    # each stage its own at-risk window (config/reviews.yaml: notification 2 working days)
    assert "- 1 notification to the Panel is at risk (due within 2 working days)." in lines
    assert "What to do next" in lines and "What to do next</h2>" in message.html
    for words in ("warehouse", "timeliness_alerts", "`timeliness`", "table "):
        assert words not in message.text, words
    # Styled like the bulletins: the shared banner colour and fonts, captions and scoped headers.
    assert "background-color:#1d4f7a" in message.html and "<caption" in message.html
    assert '<th scope="row"' in message.html and "<script" not in message.html
    assert "status page" not in message.text  # no address known: no link
    rows = ledger(engine)
    assert {(r["record_id"], r["status"], r["send_status"]) for r in rows} == {
        ("KNO-N-0001", "open_at_risk", SENT), ("WIR-N-0007", "open_overdue", SENT)}
    assert {r["working_days_left"] for r in rows} == {2, -2}
    assert all(r["first_seen_as_of"] == FRI and r["message_ref"] == "<ref-1@test>" and r["attempt"] == 1
               and r["sent_at"] is not None and r["transport"] == "recorder" for r in rows)


def test_a_rerun_sends_nothing_and_a_change_alerts_once(engine, cfg):
    judged(engine, FRI, DAY1)
    transport = Recorder()
    run_alerts(engine, cfg, transport, FRI, clock=clock)
    again = run_alerts(engine, cfg, transport, FRI, clock=clock)
    assert (again.new, again.already_alerted, again.emails) == (0, 2, 0) and len(transport.sent) == 1

    judged(engine, WED, [
        ("knowsley", "notification", "KNO-N-0001", "open_overdue", D(2024, 6, 25)),  # at risk -> overdue
        ("wirral", "rapid_review", "WIR-N-0007", "open_overdue", D(2024, 6, 19)),  # still overdue: told already
        ("sefton", "notification", "SEF-N-0003", "open_at_risk", D(2024, 7, 1)),  # on track -> at risk
    ])
    later = run_alerts(engine, cfg, transport, WED, clock=clock)
    assert (later.new, later.already_alerted, later.emails, later.listed) == (2, 1, 1, 2)
    assert "KNO-N-0001" in transport.sent[1].text and "SEF-N-0003" in transport.sent[1].text
    assert "WIR-N-0007" not in transport.sent[1].text
    assert "overdue by 1 working day" in transport.sent[1].text  # due Tuesday, as of Wednesday
    assert "3 working days left" in transport.sent[1].text  # due Monday 1 July, as of Wednesday
    assert run_alerts(engine, cfg, transport, WED, clock=clock).emails == 0
    assert len(ledger(engine)) == 4


def test_nothing_at_risk_sends_nothing(engine, cfg):
    judged(engine, FRI, DAY1[2:])
    transport = Recorder()
    report = run_alerts(engine, cfg, transport, FRI, clock=clock)
    assert (report.new, report.emails, transport.sent) == (0, 0, [])


def test_not_sending_writes_nothing(engine, cfg):
    """A backfill only counts: the ledger is left for the runs about the present."""
    judged(engine, FRI, DAY1)
    report = run_alerts(engine, cfg, None, FRI, send=False, skip_reason="backfill run")
    assert (report.at_risk, report.overdue, report.skipped, report.emails) == (1, 1, "backfill run", 0)
    assert ledger(engine) == []
    assert "alerts not sent (backfill run)" in report.summary()


def test_a_failed_send_is_retried_by_the_next_run(engine, cfg):
    judged(engine, FRI, DAY1)
    report = run_alerts(engine, cfg, Recorder(PermanentSendError("SMTP 554 no")), FRI, clock=clock)
    assert (report.failed, report.emails) == (2, 0) and not report.ok
    assert {r["send_status"] for r in ledger(engine)} == {"failed"}
    transport = Recorder()
    retry = run_alerts(engine, cfg, transport, FRI, clock=clock)
    assert (retry.new, retry.emails, retry.listed) == (0, 1, 2)
    assert {(r["send_status"], r["attempt"]) for r in ledger(engine)} == {(SENT, 2)}


def test_after_five_failed_attempts_an_alert_is_given_up_and_reported(engine, cfg):
    judged(engine, FRI, DAY1)
    broken = Recorder(PermanentSendError("SMTP 554 no"))
    for _ in range(5):
        run_alerts(engine, cfg, broken, FRI, clock=clock)
    report = run_alerts(engine, cfg, broken, FRI, clock=clock)
    assert report.failed == 0 and any("failed 5 times" in p for p in report.problems)
    assert {(r["send_status"], r["attempt"]) for r in ledger(engine)} == {("failed", 5)}


def test_unsent_alerts_for_cases_that_moved_on_are_withdrawn(engine, cfg):
    judged(engine, FRI, DAY1)
    run_alerts(engine, cfg, Recorder(PermanentSendError("SMTP 554 no")), FRI, clock=clock)
    # By Wednesday the Knowsley notification was sent (met); Wirral's rapid review is still overdue.
    judged(engine, WED, [("knowsley", "notification", "KNO-N-0001", "met", D(2024, 6, 25)),
                         ("wirral", "rapid_review", "WIR-N-0007", "open_overdue", D(2024, 6, 19))])
    transport = Recorder()
    report = run_alerts(engine, cfg, transport, WED, clock=clock)
    assert (report.withdrawn, report.listed) == (1, 1)
    assert "WIR-N-0007" in transport.sent[0].text and "KNO-N-0001" not in transport.sent[0].text
    knowsley = next(r for r in ledger(engine) if r["record_id"] == "KNO-N-0001")
    assert knowsley["send_status"] == "withdrawn" and "as of 2024-06-26 the case is met" in knowsley["error"]


def test_delivery_unknown_is_never_resent_automatically(engine, cfg):
    judged(engine, FRI, DAY1)
    report = run_alerts(engine, cfg, Recorder(DeliveryUnknownError("lost during DATA")), FRI, clock=clock)
    assert report.unconfirmed == 2 and report.emails == 0
    rows = ledger(engine)
    assert {r["send_status"] for r in rows} == {SENDING}
    ref = rows[0]["message_ref"]
    assert ref.startswith("<") and {r["message_ref"] for r in rows} == {ref}  # the Message-ID, recorded first
    transport = Recorder()
    again = run_alerts(engine, cfg, transport, FRI, clock=clock)
    assert transport.sent == [] and again.unconfirmed == 2 and "resolve_unconfirmed" in again.problems[0]
    assert resolve_unconfirmed(engine, ref, delivered=False, note="not in the server log", clock=clock) == 2
    run_alerts(engine, cfg, transport, FRI, clock=clock)
    assert len(transport.sent) == 1 and {r["send_status"] for r in ledger(engine)} == {SENT}
    with pytest.raises(ValueError, match="sending"):
        resolve_unconfirmed(engine, ref, delivered=True)


def test_business_unit_outside_allowed_domains_is_not_sent_to(engine, cfg):
    judged(engine, FRI, DAY1)
    transport = Recorder()
    report = run_alerts(engine, replace(cfg, allowed_domains=("nhs.net",)), transport, FRI, clock=clock)
    assert transport.sent == [] and report.emails == 0
    assert any("not in allowed_domains" in p for p in report.problems)
    assert {r["send_status"] for r in ledger(engine)} == {PENDING}  # sent once the config is put right
    run_alerts(engine, cfg, transport, FRI, clock=clock)
    assert len(transport.sent) == 1


def test_working_days_left_counts_bank_holidays(engine):
    # As of Thursday 28 March 2024, due Tuesday 2 April: Good Friday and Easter Monday do not count.
    judged(engine, D(2024, 3, 28), [("knowsley", "notification", "N1", "open_at_risk", D(2024, 4, 2)),
                                     ("knowsley", "rapid_review", "N1", "open_overdue", D(2024, 3, 25))])
    left = {r["stage"]: r["working_days_left"] for r in current_alert_rows(engine, D(2024, 3, 28))}
    assert left == {"notification": 1, "rapid_review": -3}


def test_alert_email_goes_through_the_outbox_like_every_email(engine, cfg, tmp_path):
    judged(engine, FRI, DAY1)
    outbox = tmp_path / "outbox"
    report = run_alerts(engine, cfg, OutboxTransport(outbox), FRI, clock=clock)
    [eml] = list(outbox.glob("*.eml"))
    msg = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert msg["From"] == cfg.sender and msg["To"] == ", ".join(cfg.business_unit_email)
    assert "KNO-N-0001" in msg.get_body(("plain",)).get_content()
    assert report.message_ref == str(eml)


@AIOSMTPD_WARNING
def test_alert_email_over_real_smtp(engine, cfg, smtp_server):  # noqa: F811
    judged(engine, FRI, DAY1)
    run_alerts(engine, cfg, SmtpTransport(smtp_server.settings()), FRI, clock=clock)
    run_alerts(engine, cfg, SmtpTransport(smtp_server.settings()), FRI, clock=clock)
    [got] = smtp_server.handler.messages
    assert got.rcpt_tos == list(cfg.business_unit_email)
    assert "WIR-N-0007" in got.text
    assert {r["message_ref"] for r in ledger(engine)} == {got.message["Message-ID"]}


def test_the_email_links_the_status_page_when_its_address_is_known(engine, cfg):
    judged(engine, FRI, DAY1)
    transport = Recorder()
    run_alerts(engine, cfg, transport, FRI, clock=clock, status_url="https://airflow.example.gov.uk/reviews/")
    [message] = transport.sent
    assert "status page shows every partnership's returns" in message.text
    assert "https://airflow.example.gov.uk/reviews/" in message.text
    assert '<a href="https://airflow.example.gov.uk/reviews/"' in message.html
    plural = alert_message([{"partnership_code": "wirral", "stage": "rapid_review", "record_id": f"WIR-N-000{i}",
                             "status": "open_overdue", "due_date": D(2024, 6, 19), "working_days_left": -2}
                            for i in range(3)], cfg, FRI, cfg.business_unit_email)
    assert "- 3 rapid reviews are overdue." in plural.text.splitlines()
    assert "3 cases need attention" in plural.text


def test_no_child_identifier_reaches_the_email(cfg):
    rows = [{"partnership_code": "knowsley", "stage": "notification", "record_id": "KNO-N-0001",
             "status": "open_at_risk", "due_date": D(2024, 6, 25), "working_days_left": 2, "child_key": "k" * 64}]
    message = alert_message(rows, cfg, FRI, cfg.business_unit_email)
    assert "k" * 16 not in message.text and "k" * 16 not in message.html
    assert "no child is named" in message.text


# --- when to send: the DAG's glue ---------------------------------------------------------------------


def _context(run_type="manual", conf=None, send_alerts=True):
    return {"dag_run": SimpleNamespace(run_type=SimpleNamespace(value=run_type), conf=conf or {}),
            "params": {"send_alerts": send_alerts}}


@pytest.mark.parametrize(
    "run_type, conf, param, expected",
    [
        ("scheduled", None, True, True),
        ("manual", None, True, True),
        ("asset_triggered", None, True, True),
        ("backfill", None, True, False),  # backfills are about the past
        ("backfill", {"send_alerts": True}, True, True),  # ... unless asked in the run conf
        ("scheduled", None, False, False),
        ("manual", {"send_alerts": False}, True, False),
    ],
)
def test_alerts_wanted(run_type, conf, param, expected):
    from reviews_airflow.tasks import alerts_wanted

    send, why = alerts_wanted(_context(run_type, conf, param))
    assert send is expected
    assert (why is None) is expected


# --- the task-failure alert (reviews_airflow.notifier) ------------------------------------------------


def test_failure_alert_is_in_words_styled_and_links_the_status_page(monkeypatch):
    from reviews_airflow.notifier import failure_message, status_page_url

    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.gov.uk/")
    assert status_page_url() == "https://airflow.example.gov.uk/reviews/"
    exc = FileNotFoundError("knowsley: the drop folder /data/inbox/knowsley does not exist")
    subject, html, text = failure_message(
        dag_id="partnership_returns", task_id="ingest", run_id="manual__1", map_index=0, try_number=2,
        partnership="knowsley", log_url="https://airflow.example.gov.uk/dags/partnership_returns/runs/manual__1",
        exc=exc, status_url=status_page_url(), region="Merseyside")
    assert subject == "[reviews] failed: partnership_returns.ingest for knowsley"
    lines = text.splitlines()
    assert lines[0] == "The task ingest of partnership_returns for knowsley failed (try 2)."
    assert "What to do next" in lines and any("clear the task in Airflow" in ln for ln in lines)
    assert "Task: ingest (map index 0)" in lines and "Error: FileNotFoundError: knowsley: the drop folder" in text
    assert "https://airflow.example.gov.uk/reviews/" in text
    assert '<html lang="en">' in html and "background-color:#1d4f7a" in html and '<th scope="row"' in html
    assert '<a href="https://airflow.example.gov.uk/dags/partnership_returns/runs/manual__1"' in html
    assert '<a href="https://airflow.example.gov.uk/reviews/"' in html and "<script" not in html
    # A configuration error keeps its message whole, with what to set.
    _, html, text = failure_message(
        dag_id="partnership_returns", task_id="ingest", run_id="r", map_index=-1, try_number=1, partnership=None,
        log_url=None, exc=None, config_message="set the key\nsecond line <b>", status_url=None)
    assert "What to set: set the key\nsecond line <b>" in text and "without retries" in text
    assert "second line &lt;b&gt;" in html and "status page" not in text  # escaped; no address: no link
