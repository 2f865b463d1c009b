"""Bulletins from complete data (learning.readiness), updated versions after late data
(learning.publication), and sign-off before anything is sent (circulation.signoff), on a real
SQLite warehouse: the hand-made one of tests/bulletin_data (April to June 2024, every return
dated 10 July 2024, its due date)."""
from __future__ import annotations

import dataclasses
import email
import email.policy
import json
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from reviews.circulation import signoff as so
from reviews.circulation.bulletin_sends import queue_bulletin_sends, send_pending
from reviews.core import warehouse as wh
from reviews.core.mail import OutboxTransport
from reviews.learning import readiness as rd
from reviews.learning.publication import build_period
from tests.bulletin_data import build

Q2 = (date(2024, 4, 1), date(2024, 6, 30))
DUE = date(2024, 7, 10)


@pytest.fixture
def world(tmp_path, cfg):
    engine = wh.make_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    build(engine, cfg)
    return engine, dataclasses.replace(cfg, summary=dataclasses.replace(cfg.summary, pdf=False)), tmp_path


def _set_return(engine, code: str, day: date | None, status: str = "loaded") -> None:
    rf = wh.return_files
    with engine.begin() as conn:
        conn.execute(rf.delete().where(rf.c.partnership_code == code))
        if day is not None:
            conn.execute(sa.insert(rf), {"partnership_code": code, "file_name": f"n_{day}.csv", "sha256": code.ljust(64, "0"),
                                         "size_bytes": 1, "return_date": day, "raw_path": "raw", "status": status,
                                         "received_at": datetime(2024, 8, 1, tzinfo=timezone.utc)})


def _region_text(engine, version: int) -> str:
    with engine.connect() as conn:
        path = conn.execute(sa.select(wh.bulletins.c.path).where(
            wh.bulletins.c.audience == "region", wh.bulletins.c.version == version)).scalar_one()
    return " ".join(open(path.replace(".html", ".txt"), encoding="utf-8").read().split())


def test_each_partnership_is_judged_from_its_returns(world):
    engine, cfg, _ = world
    _set_return(engine, "sefton", date(2024, 7, 20))  # late
    _set_return(engine, "wirral", date(2024, 7, 9), status="failed")  # arrived, nothing loaded
    _set_return(engine, "st_helens", date(2024, 4, 10))  # only the return before: this one is missing
    r = rd.period_readiness(engine, cfg, *Q2, as_of=date(2024, 7, 15))
    got = {p.code: (p.status, p.received) for p in r.partnerships}
    assert got == {"knowsley": ("in", DUE), "liverpool": ("in", DUE), "sefton": ("late", date(2024, 7, 20)),
                   "st_helens": ("missing", None), "wirral": ("unusable", date(2024, 7, 9))}
    assert (r.due, r.wait_until, r.complete) == (DUE, date(2024, 7, 17), False)
    assert not r.ready and "waiting for the returns of St Helens (missing), Wirral (unusable)" in r.describe()
    assert rd.period_readiness(engine, cfg, *Q2, as_of=date(2024, 7, 17)).ready is False  # the last day waited
    assert rd.period_readiness(engine, cfg, *Q2, as_of=date(2024, 7, 18)).ready is True
    for code in cfg.partnerships:  # no return in at all: waiting, however long
        _set_return(engine, code, None)
    nobody = rd.period_readiness(engine, cfg, *Q2, as_of=date(2024, 12, 1))
    assert not nobody.ready and "no partnership's return is in" in nobody.describe()
    before_due = rd.period_readiness(engine, cfg, *Q2, as_of=date(2024, 7, 5))
    assert {p.code: p.status for p in before_due.partnerships}["st_helens"] == "not_due"
    # With monthly bulletins, May waits for the same quarterly return as June.
    assert rd.period_readiness(engine, cfg, date(2024, 5, 1), date(2024, 5, 31), date(2024, 7, 15)).due == DUE
    notices = r.notices()
    assert notices[0] == ("Sefton's return for Q1 2024-25 (April to June 2024) arrived late, on 20 July 2024 "
                          "(10 days after it was due on 10 July 2024).")
    assert any(n.startswith("St Helens's return for Q1 2024-25 (April to June 2024), due 10 July 2024, had not arrived") for n in notices)
    assert any(n.startswith("Wirral's return for Q1 2024-25 (April to June 2024) arrived but could not be loaded") for n in notices)


def test_a_backfill_judges_as_of_the_newest_return_loaded(world):
    engine, _, _ = world
    assert rd.data_as_of(engine, date(2024, 7, 1)) == DUE  # the returns have long arrived
    assert rd.data_as_of(engine, date(2024, 9, 1)) == date(2024, 9, 1)


def test_waiting_periods_are_kept_and_rechecked(world):
    engine, cfg, _ = world
    _set_return(engine, "sefton", None)
    r = rd.period_readiness(engine, cfg, *Q2, as_of=date(2024, 7, 12))
    rd.record(engine, r, rd.WAITING)
    assert rd.periods_to_recheck(engine) == [Q2]
    built = rd.period_readiness(engine, cfg, *Q2, as_of=date(2024, 7, 20))
    rd.record(engine, built, rd.BUILT, signoff_wanted=True)
    assert rd.periods_to_recheck(engine) == [Q2]  # built without Sefton's data: rechecked until it comes
    assert rd.take_signoff_wanted(engine) == [Q2] and rd.take_signoff_wanted(engine) == []
    _set_return(engine, "sefton", date(2024, 8, 1))
    rd.record(engine, rd.period_readiness(engine, cfg, *Q2, as_of=date(2024, 8, 1)), rd.BUILT)
    assert rd.periods_to_recheck(engine) == []
    assert rd.stored_status(engine, *Q2)["data_status"]["sefton"] == {"status": "late", "due": "2024-07-10",
                                                                      "received": "2024-08-01"}


def test_late_data_gives_one_updated_version_saying_what_changed(world):
    engine, cfg, tmp = world
    out = tmp / "bulletins"
    _set_return(engine, "sefton", None)
    first = build_period(engine, cfg, *Q2, Q2[1], out, readiness=rd.period_readiness(engine, cfg, *Q2, date(2024, 7, 18)))
    assert {b["version"] for b in first.built} == {1}
    v1 = _region_text(engine, 1)
    assert "DATA MISSING OR LATE" in v1 and "Sefton's return for Q1 2024-25 (April to June 2024), due 10 July 2024, had not arrived" in v1
    assert "UPDATED VERSION" not in v1
    # The same data again: nothing new.
    again = build_period(engine, cfg, *Q2, Q2[1], out, readiness=rd.period_readiness(engine, cfg, *Q2, date(2024, 7, 19)))
    assert not any(b["new"] for b in again.built)
    # Sefton's return arrives on 1 August: version 2, marked as updated, with what changed.
    _set_return(engine, "sefton", date(2024, 8, 1))
    second = build_period(engine, cfg, *Q2, Q2[1], out, readiness=rd.period_readiness(engine, cfg, *Q2, date(2024, 8, 1)))
    assert {b["version"] for b in second.built if b["audience"] == "region"} == {2}
    v2 = _region_text(engine, 2)
    assert "UPDATED VERSION: this version replaces version 1" in v2
    assert "Sefton's return arrived on 1 August 2024: its figures are now included." in v2
    assert "Sefton's return for Q1 2024-25 (April to June 2024) arrived late, on 1 August 2024 (22 days after" in v2
    with engine.connect() as conn:
        subjects = conn.execute(sa.select(wh.bulletins.c.subject).where(wh.bulletins.c.version == 2)).scalars().all()
        stored = json.loads(conn.execute(sa.select(wh.bulletins.c.data_status).where(
            wh.bulletins.c.audience == "region", wh.bulletins.c.version == 2)).scalar_one())
    assert subjects and all(s.endswith("(updated)") for s in subjects)
    assert stored["partnerships"]["sefton"]["status"] == "late" and stored["headlines"]
    # Rebuilding from the same data keeps version 2: the note is the same, so is the content.
    third = build_period(engine, cfg, *Q2, Q2[1], out, readiness=rd.period_readiness(engine, cfg, *Q2, date(2024, 8, 2)))
    assert not any(b["new"] for b in third.built)


def _ledger(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(wh.circulation_log)).mappings()]


def test_only_what_the_business_unit_approved_is_ever_queued(world):
    engine, cfg, tmp = world
    build_period(engine, cfg, *Q2, Q2[1], tmp / "bulletins")
    wanted = so.to_sign_off(engine, cfg, [Q2])
    ids = [r["bulletin_id"] for r in wanted[Q2]]
    assert len(ids) == 1 + len(cfg.partnerships)
    request = so.build_request(engine, cfg, wanted)
    assert request.subject == "Sign off the learning bulletins: Q1 2024-25 (April to June 2024)"
    body = request.body
    for bid in ids:
        assert f"(/reviews/bulletins/{bid})" in body and f"(/reviews/bulletins/{bid}.pdf)" in body
    assert "knowsley.scp@knowsley.gov.uk" in body and "17 email(s) in all" in body
    assert "None: every partnership's return was in on time." in body
    assert "removed from the free text" in body and "(/reviews/periods/2024-04-01_2024-06-30/redactions)" in body
    assert "943 476 5919" not in body and "CH41 5LH" not in body  # the redactions are counted, never shown

    so.record_request(engine, request, wanted, "bulletin_circulation", "run-1")
    assert so.to_sign_off(engine, cfg, [Q2]) == {}  # asked about: not asked again
    # Before a decision nothing can be queued; a rejection keeps its reason and queues nothing.
    assert queue_bulletin_sends(engine, cfg, approved_ids=so.approved_ids(engine, "bulletin_circulation", "run-1")).queued == 0
    assert so.record_decision(engine, "bulletin_circulation", "run-1", False, "analyst", "wrong quarter") == 1
    assert so.approved_ids(engine, "bulletin_circulation", "run-1") == set() and _ledger(engine) == []
    with engine.connect() as conn:
        row = conn.execute(sa.select(wh.bulletin_signoffs)).mappings().one()
    assert (row["status"], row["decided_by"], row["reason"]) == ("rejected", "analyst", "wrong quarter")

    # Asked again (a rejected version may be asked about again), approved: exactly those go.
    wanted = so.to_sign_off(engine, cfg, [Q2])
    so.record_request(engine, so.build_request(engine, cfg, wanted), wanted, "bulletin_circulation", "run-2")
    so.record_decision(engine, "bulletin_circulation", "run-2", True, "business.unit", "")
    approved = so.approved_ids(engine, "bulletin_circulation", "run-2")
    assert approved == set(ids)
    report = queue_bulletin_sends(engine, cfg, resend_bulletin_ids=approved, approved_ids=approved)
    assert report.queued == 17 and {r["bulletin_id"] for r in _ledger(engine)} == approved
    # A newer version built after the approval is not queued by it.
    with engine.begin() as conn:
        conn.execute(wh.bulletins.update().where(wh.bulletins.c.bulletin_id == ids[0]).values(content_hash="changed"))
    from tests.bulletin_data import _lineage

    with engine.begin() as conn:  # a new notification changes the figures: version 2 of every audience
        conn.execute(sa.insert(wh.notifications), {
            "partnership_code": "knowsley", "notification_id": "KNO-N-NEW", "child_key": "f" * 64,
            "incident_date": date(2024, 6, 9), "aware_date": date(2024, 6, 10), "notified_date": date(2024, 6, 12),
            "incident_type": "death", "age_years": 3, **_lineage()})
    build_period(engine, cfg, *Q2, Q2[1], tmp / "bulletins")
    again = queue_bulletin_sends(engine, cfg, resend_bulletin_ids=approved, approved_ids=approved)
    assert again.queued == 0 and any("needs a sign-off of its own" in p for p in again.problems)
    assert {r["bulletin_id"] for r in _ledger(engine)} == approved


def test_one_reminder_when_a_request_waits_too_long(world):
    engine, cfg, tmp = world
    build_period(engine, cfg, *Q2, Q2[1], tmp / "bulletins")
    wanted = so.to_sign_off(engine, cfg, [Q2])
    asked = datetime(2024, 7, 23, 8, 0, tzinfo=timezone.utc)
    so.record_request(engine, so.build_request(engine, cfg, wanted), wanted, "bulletin_circulation", "run-1",
                      clock=lambda: asked)
    outbox = OutboxTransport(tmp / "outbox")
    hours = cfg.circulation.signoff_reminder_hours
    assert so.remind_if_due(engine, cfg, outbox, "bulletin_circulation", "run-1", asked + timedelta(hours=hours - 1)) == "waiting"
    assert not (tmp / "outbox").exists()
    assert so.remind_if_due(engine, cfg, outbox, "bulletin_circulation", "run-1", asked + timedelta(hours=hours),
                            "https://airflow.example.gov.uk") == "reminded"
    assert so.remind_if_due(engine, cfg, outbox, "bulletin_circulation", "run-1", asked + timedelta(hours=hours * 3)) == "decided"
    [eml] = list((tmp / "outbox").glob("*.eml"))
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert message["Subject"] == "Reminder: learning bulletins waiting for sign-off (Q1 2024-25 (April to June 2024))"
    assert message["To"] == cfg.business_unit_email[0]
    text = message.get_body(("plain",)).get_content()
    assert "https://airflow.example.gov.uk/required_actions" in text and "only reminder" in text
    # Answered: nothing more to watch, nothing more sent.
    so.record_decision(engine, "bulletin_circulation", "run-1", True, "business.unit", "")
    assert so.remind_if_due(engine, cfg, outbox, "bulletin_circulation", "run-1", asked + timedelta(days=9)) == "decided"
    assert len(list((tmp / "outbox").glob("*.eml"))) == 1
    assert send_pending(engine, cfg, outbox).sent == 0  # a reminder queues no bulletin
