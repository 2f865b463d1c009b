"""The status page's figures (reviews.status.dashboard) from a warehouse written by hand, and the
page rendered from them (reviews_airflow.ui.render).

Returns are quarterly, due 10 days after the quarter (config/reviews.yaml). As of Monday 7 Dec 2026:
the July to September return was due on 10 Oct 2026, the next (October to December) is due on
10 Jan 2027.

  knowsley   Q3 dated 8 Oct: on time             liverpool  Q3 dated 15 Oct: late
  sefton     Q3 never came: missing (Q2 in)      st_helens  Q3 received 9 Oct, not loaded
  wirral     Q3 dated 2 Oct: on time
"""
from __future__ import annotations

import json
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import insert

from reviews.core import warehouse as wh
from reviews.core.config import load_config
from reviews.status.dashboard import build_dashboard, next_return

AS_OF = date(2026, 12, 7)
CHECKED = date(2026, 12, 6)
Q2, Q3, Q4 = (date(2026, 4, 1), date(2026, 6, 30)), (date(2026, 7, 1), date(2026, 9, 30)), (date(2026, 10, 1), date(2026, 12, 31))
T = datetime(2026, 10, 6, 8, 0, tzinfo=timezone.utc)  # 09:00 UK time


@pytest.fixture(scope="module")
def cfg():
    return load_config()


def _file(i, code, day, status="loaded", loaded=10, quarantined=0):
    return {"partnership_code": code, "file_name": f"notifications_{day}.csv", "sha256": f"{i:064d}", "size_bytes": 100,
            "return_date": day, "received_at": datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc),
            "raw_path": "/raw", "rows_read": loaded + quarantined, "rows_loaded": loaded,
            "rows_quarantined": quarantined, "status": status}


def _expect(code, period, as_of, status, received=None):
    start, end = period
    return {"partnership_code": code, "period_start": start, "period_end": end, "as_of_date": as_of,
            "due_date": date(end.year + (end.month == 12), end.month % 12 + 1, 10), "received_date": received,
            "status": status}


def _bulletin(i, audience, period, version=1, subject=None, path="/nowhere.html"):
    return {"bulletin_id": i, "period_start": period[0], "period_end": period[1], "audience": audience,
            "version": version, "content_hash": f"{i:064d}", "path": path, "subject": subject or f"doc {i}",
            "built_at": T}


def _judged(code, stage, status, n, as_of):
    return [{"partnership_code": code, "stage": stage, "record_id": f"{code}-{stage}-{status}-{k}", "as_of_date": as_of,
             "status": status} for k in range(n)]


@pytest.fixture
def engine(tmp_path):
    eng = wh.make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    wh.ensure_schema(eng)
    d = date
    with eng.begin() as conn:
        conn.execute(insert(wh.return_files), [
            _file(1, "knowsley", d(2026, 10, 8), loaded=40, quarantined=2),
            _file(2, "knowsley", d(2026, 10, 8), status="partial", loaded=7, quarantined=3),
            _file(3, "liverpool", d(2026, 10, 15)),
            _file(4, "sefton", d(2026, 7, 5)),
            _file(5, "st_helens", d(2026, 7, 8)),
            _file(6, "st_helens", d(2026, 10, 9), status="failed", loaded=0),
            _file(7, "wirral", d(2026, 10, 2)),
        ])
        conn.execute(insert(wh.return_expectations), [
            _expect("knowsley", Q3, CHECKED, "on_time", d(2026, 10, 8)),
            _expect("knowsley", (d(2024, 1, 1), d(2024, 3, 31)), CHECKED, "late", d(2024, 4, 20)),  # over a year ago
            _expect("liverpool", Q3, CHECKED, "late", d(2026, 10, 15)),
            _expect("sefton", Q2, CHECKED, "on_time", d(2026, 7, 5)),
            _expect("sefton", Q3, CHECKED, "missing"),
            _expect("st_helens", Q2, CHECKED, "on_time", d(2026, 7, 8)),
            _expect("st_helens", Q3, CHECKED, "failed", d(2026, 10, 9)),
            _expect("wirral", Q3, CHECKED, "on_time", d(2026, 10, 2)),
            # an older check (liverpool then missing) and one after as_of: neither is shown
            _expect("liverpool", Q3, d(2026, 10, 12), "missing"),
            _expect("wirral", Q3, d(2026, 12, 9), "missing"),
        ])
        conn.execute(insert(wh.timeliness), [
            *_judged("knowsley", "notification", "met", 2, CHECKED),
            *_judged("knowsley", "notification", "late", 1, CHECKED),
            *_judged("knowsley", "rapid_review", "open_overdue", 3, CHECKED),
            *_judged("liverpool", "rapid_review", "open_overdue", 1, CHECKED),
            *_judged("liverpool", "lcspr_completion", "open_at_risk", 1, CHECKED),
            *_judged("sefton", "notification", "met", 9, d(2026, 11, 30)),  # an older judgement
            *_judged("wirral", "notification", "late", 9, d(2026, 12, 8)),  # after as_of
        ])
        sep, octo = (d(2026, 9, 1), d(2026, 9, 30)), (d(2026, 10, 1), d(2026, 10, 31))
        conn.execute(insert(wh.bulletins), [
            *[_bulletin(10 + k, "quality:knowsley", (day, day)) for k, day in
              enumerate([d(2026, 1, 8), d(2026, 4, 8), d(2026, 7, 8), d(2026, 10, 8)])],
            _bulletin(14, "quality:knowsley", (d(2026, 10, 8), d(2026, 10, 8)), version=2),
            _bulletin(15, "returns:sefton", (d(2026, 9, 30), d(2026, 9, 30)), subject="Return missing"),
            _bulletin(20, "region", sep, subject="Merseyside learning bulletin: September 2026"),
            _bulletin(21, "knowsley", sep, subject="Knowsley learning bulletin: September 2026"),
            _bulletin(22, "region", octo, subject="Merseyside learning bulletin: October 2026"),
            _bulletin(23, "region", octo, version=2, subject="Merseyside learning bulletin: October 2026 (updated)"),
            _bulletin(24, "knowsley", octo, subject="Knowsley learning bulletin: October 2026"),
        ])

        def send(i, bid, who, status="sent", at=T):
            return {"send_id": i, "bulletin_id": bid, "recipient": who, "status": status, "attempt": 1,
                    "queued_at": at, "sent_at": at if status == "sent" else None}

        conn.execute(insert(wh.circulation_log), [
            send(1, 20, "a@x.gov.uk"), send(2, 20, "b@x.gov.uk"),
            send(3, 20, "c@x.gov.uk", at=datetime(2026, 10, 6, 8, 5, tzinfo=timezone.utc)),
            send(4, 20, "d@x.gov.uk", status="failed"), send(5, 21, "k@x.gov.uk"),
            send(6, 15, "bu@x.gov.uk"),  # a notice to the business unit: not a learning bulletin
        ])
        conn.execute(insert(wh.bulletin_signoffs), [
            {"period_start": octo[0], "period_end": octo[1], "bulletin_ids": json.dumps([24, 23]), "status": "requested",
             "dag_id": "bulletin_circulation", "run_id": "r2", "requested_at": datetime(2026, 11, 3, 9, tzinfo=timezone.utc)},
            {"period_start": octo[0], "period_end": octo[1], "bulletin_ids": json.dumps([22]), "status": "rejected",
             "dag_id": "bulletin_circulation", "run_id": "r1", "requested_at": datetime(2026, 11, 2, 9, tzinfo=timezone.utc)},
        ])
        conn.execute(insert(wh.bulletin_periods), [
            {"period_start": d(2026, 11, 1), "period_end": d(2026, 11, 30), "status": "waiting", "checked_as_of": CHECKED,
             "data_status": json.dumps({"knowsley": {"status": "in"}, "sefton": {"status": "missing", "due": "2026-10-10"}}),
             "signoff_wanted": False, "updated_at": T},
            {"period_start": octo[0], "period_end": octo[1], "status": "built", "checked_as_of": CHECKED,
             "data_status": "{}", "signoff_wanted": True, "updated_at": T},
        ])
    yield eng
    eng.dispose()


def _by_code(dashboard):
    return {p.code: p for p in dashboard.partnerships}


def test_last_and_next_return_with_due_dates(engine, cfg):
    dash = build_dashboard(engine, cfg, AS_OF)
    p = _by_code(dash)
    assert dash.returns_checked_as_of == CHECKED and dash.returns_frequency == "quarterly"
    assert (p["knowsley"].last_return.period_end, p["knowsley"].last_return.received_date,
            p["knowsley"].last_return.status, p["knowsley"].last_return.due_date) == (
        Q3[1], date(2026, 10, 8), "on_time", date(2026, 10, 10))
    assert p["liverpool"].last_return.status == "late"
    assert p["sefton"].last_return.period_end == Q2[1]  # Q3 never came
    assert p["st_helens"].last_return.status == "failed"
    for s in p.values():  # as of 7 December the next return is October to December's, due 10 January
        assert (s.next_return.period_start, s.next_return.period_end, s.next_return.due_date) == (
            Q4[0], Q4[1], date(2027, 1, 10)), s.code
    # The latest return's files: rows added up, the worst status
    assert (p["knowsley"].last_files, p["knowsley"].last_return_rows_loaded,
            p["knowsley"].last_return_rows_quarantined, p["knowsley"].last_file_status) == (2, 47, 5, "partial")
    assert p["st_helens"].files_failed == 1


def test_next_return_before_the_due_date_is_the_period_just_ended(engine, cfg):
    # 5 October: July to September's return is due on 10 October; Wirral's came on 2 October.
    p = _by_code(build_dashboard(engine, cfg, date(2026, 10, 5)))
    assert (p["knowsley"].next_return.period_end, p["knowsley"].next_return.due_date) == (Q3[1], date(2026, 10, 10))
    assert (p["wirral"].next_return.period_end, p["wirral"].next_return.due_date) == (Q4[1], date(2027, 1, 10))
    # On the due date itself it is still the one expected; the day after, the next quarter's.
    assert next_return(cfg.returns, set(), date(2026, 10, 10)).period_end == Q3[1]
    assert next_return(cfg.returns, set(), date(2026, 10, 11)).period_end == Q4[1]
    assert next_return(cfg.returns, {Q3[1], Q4[1]}, date(2026, 10, 5)).period_end == date(2027, 3, 31)


def test_late_missing_and_not_loaded_flags_come_from_the_latest_check(engine, cfg):
    p = _by_code(build_dashboard(engine, cfg, AS_OF))
    flags = {code: [(f.period_end, f.status) for f in s.flags] for code, s in p.items()}
    assert flags == {
        "knowsley": [],  # its late return of 2024 is more than a year old
        "liverpool": [(Q3[1], "late")],  # late, not missing: the latest check, not the one of 12 October
        "sefton": [(Q3[1], "missing")],
        "st_helens": [(Q3[1], "failed")],
        "wirral": [],  # the check dated after as_of is not used
    }


def test_quality_report_links_newest_first(engine, cfg):
    p = _by_code(build_dashboard(engine, cfg, AS_OF))
    assert [(q.bulletin_id, q.version) for q in p["knowsley"].quality_reports] == [(14, 2), (13, 1), (12, 1)]
    assert p["sefton"].quality_reports == []  # its late/missing notice is not a quality report


def test_timeliness_is_counted_per_stage_as_of_the_latest_judgement(engine, cfg):
    dash = build_dashboard(engine, cfg, AS_OF)
    p = _by_code(dash)
    assert dash.timeliness_as_of == CHECKED
    assert p["knowsley"].timeliness == {"notification": {"met": 2, "late": 1}, "rapid_review": {"open_overdue": 3}}
    assert p["liverpool"].timeliness == {"rapid_review": {"open_overdue": 1}, "lcspr_completion": {"open_at_risk": 1}}
    assert p["sefton"].timeliness == {} and p["wirral"].timeliness == {}
    assert dash.timeliness_totals("rapid_review") == {"open_overdue": 4}


def test_bulletins_waiting_for_sign_off_and_sent(engine, cfg):
    dash = build_dashboard(engine, cfg, AS_OF)
    [waiting] = dash.awaiting_signoff  # the rejected request is not waiting
    assert (waiting.period_start, waiting.period_end) == (date(2026, 10, 1), date(2026, 10, 31))
    assert [(b.bulletin_id, b.audience, b.version) for b in waiting.bulletins] == [(23, "region", 2), (24, "knowsley", 1)]
    assert waiting.bulletins[1].name == "Knowsley"
    sent = [(s.bulletin.bulletin_id, s.bulletin.version, s.recipients) for s in dash.sent]
    assert sent == [(20, 1, 3), (21, 1, 1)]  # newest first; the failed send is not counted; no notices
    assert dash.sent[0].last_sent_at.replace(tzinfo=timezone.utc) == datetime(2026, 10, 6, 8, 5, tzinfo=timezone.utc)
    p = _by_code(dash)
    assert p["knowsley"].last_bulletin_subject.startswith("Merseyside")  # the region's went last
    assert p["sefton"].last_bulletin_subject.startswith("Merseyside")
    [period] = dash.periods_waiting
    assert period.period_end == date(2026, 11, 30) and period.waiting_for == ["Sefton (missing)"]


def test_the_page_says_it_in_words(engine, cfg):
    from reviews_airflow.ui import render

    html = render(build_dashboard(engine, cfg, AS_OF), cfg)
    assert '<html lang="en">' in html and "<title>Status: returns, timeliness and bulletins (7 Dec 2026)</title>" in html
    assert "As of 7 Dec 2026." in html
    assert "<strong>Missing</strong>: Jul to Sep 2026, due 10 Oct 2026" in html
    assert "<strong>Late</strong>: Jul to Sep 2026, due 10 Oct 2026, received 15 Oct 2026" in html
    assert "<strong>Not loaded</strong>" in html
    assert "Oct to Dec 2026: due 10 Jan 2027" in html
    assert 'href="/reviews/quality/14"' in html and 'href="/reviews/quality/10"' not in html
    for stage in ("Notification to the Panel", "Rapid review", "LCSPR completion", "Publication notice"):
        assert f">{stage}</h3>" in html
    assert 'href="/reviews/bulletins/23"' in html and 'href="/reviews/bulletins/23.pdf"' in html
    assert 'href="/reviews/periods/2026-10-01_2026-10-31/redactions"' in html
    assert "3 Nov 2026 09:00" in html  # requested at 09:00 UTC = 09:00 GMT
    assert "6 Oct 2026 09:05" in html  # sent at 08:05 UTC = 09:05 BST
    assert html.count('scope="col"') > 20 and "<caption>" in html


def test_a_long_run_of_missing_returns_is_counted_not_listed(engine, cfg):
    from reviews_airflow.ui import render

    with engine.begin() as conn:  # Sefton sent nothing for the four quarters before Q2 2026 either
        conn.execute(insert(wh.return_expectations), [
            _expect("sefton", (date(y, m - 2, 1), date(y, m, 30 if m in (6, 9) else 31)), CHECKED, "missing")
            for y, m in ((2025, 6), (2025, 9), (2025, 12), (2026, 3))])
    html = render(build_dashboard(engine, cfg, AS_OF), cfg)
    row = html[html.index(">Sefton</th>"):html.index(">St Helens</th>")]
    assert row.count("<strong>Missing</strong>") == 3  # the newest three
    assert "and 2 earlier: 2 missing (the oldest due 10 Jul 2025)" in row
