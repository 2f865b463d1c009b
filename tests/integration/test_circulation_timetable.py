"""Two months of the real timetables, day by day, with returns arriving on their due dates and one late.

28 September to 27 November 2026 (the shipped config: quarterly returns due 10 days after the
quarter, bulletins built when every return is in or 7 days after the due date, sent on the first
working Tuesday from working day 15 after the quarter, after sign-off). Every DAG run the real
timetables start in the window is run through Airflow (`dag.test()`), in order:

- partnership_returns at 06:00 every day (its cron timetable), after that day's files arrive: four
  partnerships' July-to-September returns on their due date (10 October), Sefton's on 3 November;
- regional_learning_summary on its timetable (00:00 on 1 October) and after every returns run (its
  asset schedule: a run with no logical date, as Airflow gives an asset-triggered run);
- bulletin_circulation on its timetable's send day (27 October) and after every build (asset).

A person answers each sign-off request through the same Airflow code the REST API runs
(reviews_dev.signoff), after the test has looked at what was sent before the answer.
"""
from __future__ import annotations

import json
import shutil
import time
from datetime import date, datetime, timedelta

import pendulum
import pytest
import sqlalchemy as sa
import yaml
from airflow.timetables.base import TimeRestriction

from reviews.core import warehouse as wh
from reviews.core.config import load_config
from reviews_dev.signoff import APPROVE, Answerer
from reviews_dev.synthetic import generate_returns
from tests.integration.returns_support import KEY, ROOT
from tests.smtp_fixtures import AIOSMTPD_WARNING, smtp_server  # noqa: F401

pytestmark = [pytest.mark.slow, AIOSMTPD_WARNING]

LONDON = pendulum.timezone("Europe/London")
SIM_START, SIM_END = date(2026, 9, 28), date(2026, 11, 27)
Q3 = (date(2026, 7, 1), date(2026, 9, 30))
DUE, WAIT_UNTIL = date(2026, 10, 10), date(2026, 10, 17)
SEND_DAY = date(2026, 10, 27)  # first working Tuesday from working day 15 after 30 September
LATE_CODE, LATE_DAY = "sefton", date(2026, 11, 3)


def _at(day: date, hour: int = 0, minute: int = 0) -> datetime:
    return pendulum.datetime(day.year, day.month, day.day, hour, minute, tz=LONDON).in_timezone("UTC")


def _timetable_runs(dag, start: date, end: date) -> list[datetime]:
    """Every run_after the DAG's real timetable gives in [start, end] (catch-up on: no wall clock)."""
    timetable = getattr(dag.timetable, "timetable", dag.timetable)  # AssetOrTimeSchedule wraps one
    restriction = TimeRestriction(earliest=_at(start - timedelta(days=100)), latest=None, catchup=True)
    out, last = [], None
    for _ in range(500):
        info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        if info is None or info.run_after > _at(end + timedelta(days=1)):
            break
        if info.run_after >= _at(start):
            out.append(info.run_after)
        last = info.data_interval
    return out


@pytest.fixture
def world(tmp_path, monkeypatch, smtp_server):  # noqa: F811
    raw = yaml.safe_load((ROOT / "config" / "reviews.yaml").read_text(encoding="utf-8"))
    raw["summary"]["pdf"] = False  # Chromium prints PDFs in other tests; here it would only slow 60 days down
    raw["returns"]["expected_from"] = "2025-03-31"  # the first return the generated history holds
    config = tmp_path / "reviews.yaml"
    config.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    cfg = load_config(config)
    staged, inbox, data = tmp_path / "staged", tmp_path / "data" / "inbox", tmp_path / "data"
    generate_returns(staged, cfg, start=date(2025, 1, 1), end=date(2026, 10, 31), seed=15, inflate=1)
    for path in (staged / LATE_CODE).glob(f"*_{DUE.isoformat()}.*"):  # Sefton's return comes late
        path.rename(path.with_name(path.name.replace(DUE.isoformat(), LATE_DAY.isoformat())))
    for path in staged.rglob("*.*"):  # the history before the window is in the inbox already
        if date.fromisoformat(path.stem.rsplit("_", 1)[1]) < SIM_START:
            target = inbox / path.parent.name / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            path.rename(target)
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    for name, value in {
        "AIRFLOW_CONN_REVIEWS_WAREHOUSE": url, "AIRFLOW_VAR_REVIEWS_INBOX": str(inbox),
        "AIRFLOW_VAR_REVIEWS_DATA_DIR": str(data), "AIRFLOW_VAR_REVIEWS_CONFIG": str(config),
        "REVIEWS_PSEUDONYMISATION_KEY": KEY, "REVIEWS_SEND_BACKOFF_SECONDS": "0",
        "AIRFLOW_CONN_REVIEWS_SMTP": json.dumps({
            "conn_type": "smtp", "host": smtp_server.host, "port": smtp_server.port, "login": smtp_server.user,
            "password": smtp_server.password, "extra": {"security": "none", "timeout": 10}}),
    }.items():
        monkeypatch.setenv(name, value)
    return {"staged": staged, "inbox": inbox, "engine": wh.make_engine(url), "cfg": cfg}


def _deliver(world, day: date) -> list[str]:
    """Move the files dated `day` into the partnerships' drop folders (they arrive that morning)."""
    moved = []
    for path in sorted(world["staged"].rglob(f"*_{day.isoformat()}.*")):
        target = world["inbox"] / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, target)
        moved.append(f"{path.parent.name}/{path.name}")
    return moved


def _rows(engine, sql: str, **params) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]


def _q3_versions(engine) -> list[dict]:
    return _rows(engine, "select bulletin_id, audience, version, subject, path, data_status from bulletins "
                         "where period_start = :s and period_end = :e and audience not like '%:%' order by bulletin_id",
                 s=Q3[0], e=Q3[1])


def _sent(engine) -> list[dict]:
    return _rows(engine, "select c.bulletin_id, c.recipient, c.status, b.version from circulation_log c "
                         "join bulletins b on b.bulletin_id = c.bulletin_id where b.audience not like '%:%'")


def _run(dag, **kwargs):
    dr = dag.test(**kwargs)
    return dr, {ti.task_id: ti.state for ti in dr.get_task_instances()}


def test_two_months_of_the_real_timetables(dagbag, world, smtp_server):  # noqa: F811
    engine = world["engine"]
    returns, summary, circulation = (dagbag.get_dag(d) for d in
                                     ("partnership_returns", "regional_learning_summary", "bulletin_circulation"))
    # Each DAG's own timetable says when it runs in the window.
    daily = _timetable_runs(returns, SIM_START, SIM_END)
    assert len(daily) == (SIM_END - SIM_START).days + 1 and all(r.astimezone(LONDON).hour == 6 for r in daily)
    summary_runs = _timetable_runs(summary, SIM_START, SIM_END)
    assert [r.astimezone(LONDON).date() for r in summary_runs] == [date(2026, 10, 1)]
    send_runs = _timetable_runs(circulation, SIM_START, SIM_END)
    assert [r.astimezone(LONDON).date() for r in send_runs] == [SEND_DAY]

    looked_at_before_answer: list[dict] = []

    def decide(subject, body):
        looked_at_before_answer.append({"subject": subject, "body": body, "sent": _sent(engine),
                                        "versions": _q3_versions(engine)})
        return APPROVE, ""

    first_built = None
    timeline = []
    started = time.monotonic()
    with Answerer(decide, user="business.unit") as answerer:
        for run_after in sorted(daily + summary_runs + send_runs):
            day = run_after.astimezone(LONDON).date()
            if run_after in summary_runs:
                dr, states = _run(summary, logical_date=run_after, run_after=run_after)
                assert dr.state == "success", states
                timeline.append((day, "summary timetable", states))
                continue
            if run_after in send_runs:
                dr, states = _run(circulation, logical_date=run_after, run_after=run_after)
                assert dr.state == "success", (day, states)
                timeline.append((day, "circulation timetable", states))
                continue
            arrived = _deliver(world, day)
            dr, states = _run(returns, logical_date=run_after, run_after=run_after)
            assert dr.state == "success", (day, states)
            # The cases asset wakes the summary: an asset-triggered run (no logical date).
            before = {b["bulletin_id"] for b in _q3_versions(engine)}
            dr, states = _run(summary, logical_date=None, run_after=run_after + timedelta(minutes=30))
            assert dr.state == "success", (day, states)
            timeline.append((day, f"returns ({len(arrived)} file(s)) + summary", states))
            versions = _q3_versions(engine)
            if versions and first_built is None:
                first_built = day
            if {b["bulletin_id"] for b in versions} - before:  # a build: the bulletins asset wakes circulation
                dr, states = _run(circulation, logical_date=None, run_after=run_after + timedelta(minutes=45))
                assert dr.state == "success", (day, states)
                timeline.append((day, "circulation (asset)", states))
    took = time.monotonic() - started
    assert not answerer.errors, answerer.errors
    print(f"simulated {len(daily)} days in {took:.0f}s")

    # 1. Nothing was built before every return was in or the wait was over: Sefton's is missing on
    #    18 October, the first day after the wait, so that is when the first version was built.
    assert first_built == WAIT_UNTIL + timedelta(days=1), timeline
    waiting_days = [(d, s) for d, what, s in timeline if "summary" in what and d <= WAIT_UNTIL and d >= DUE]
    assert waiting_days and all(s.get("build_bulletins") == "skipped" for _, s in waiting_days), waiting_days
    versions = _q3_versions(engine)
    v1 = [b for b in versions if b["version"] == 1]
    assert len(v1) == 6  # the region and each partnership
    region_v1 = next(b for b in v1 if b["audience"] == "region")
    text = " ".join(open(region_v1["path"].replace(".html", ".txt"), encoding="utf-8").read().split())
    assert "DATA MISSING OR LATE" in text and "Sefton's return for" in text and "had not arrived" in text
    assert json.loads(region_v1["data_status"])["partnerships"][LATE_CODE]["status"] == "missing"

    # 2. The build on 18 October came before the send day: circulation asked nothing then.
    early = [s for d, what, s in timeline if what == "circulation (asset)" and d < SEND_DAY]
    assert early and all(s["sign_off"] == "skipped" and s["send"] == "skipped" for s in early), early

    # 3. On the send day the business unit was asked; nothing had gone before the answer; then 17 went.
    first, second = looked_at_before_answer[0], looked_at_before_answer[1]
    assert "July to September 2026" in first["subject"] and first["sent"] == []
    assert "/reviews/bulletins/" in first["body"] and "Sefton's return" in first["body"]
    v1_sent = [s for s in _sent(engine) if s["version"] == 1 and s["status"] == "sent"]
    assert len(v1_sent) == 17

    # 4. Sefton's late return (3 November) gave version 2, marked as updated with what changed,
    #    which waited for sign-off: none of it was sent before the answer.
    v2 = [b for b in versions if b["version"] == 2]
    assert len(v2) == 6, versions
    assert all("(updated)" in b["subject"] for b in v2)
    region_v2 = next(b for b in v2 if b["audience"] == "region")
    text2 = " ".join(open(region_v2["path"].replace(".html", ".txt"), encoding="utf-8").read().split())
    assert "UPDATED VERSION" in text2 and "Sefton's return arrived on 3 November 2026" in text2
    assert "arrived late, on 3 November 2026 (24 days after it was due on 10 October 2026)" in text2
    assert "updated version" in second["body"] and not [s for s in second["sent"] if s["version"] == 2]
    v2_sent = [s for s in _sent(engine) if s["version"] == 2 and s["status"] == "sent"]
    assert len(v2_sent) == 17
    signoffs = _rows(engine, "select status, decided_by from bulletin_signoffs order by signoff_id")
    assert signoffs == [{"status": "approved", "decided_by": "business.unit"}] * 2
    # What reached the SMTP server: 34 bulletin emails (besides data quality reports), the updated ones say so.
    bulletins = [m for m in smtp_server.handler.messages if "learning bulletin" in m.message["Subject"]]
    assert len(bulletins) == 34
    assert sum("(updated)" in m.message["Subject"] for m in bulletins) == 17
    # No other period was built (October to December has not ended).
    assert _rows(engine, "select count(*) n from bulletins where period_start > :e and audience not like '%:%'",
                 e=Q3[1]) == [{"n": 0}]
