"""The business unit's status page, as a person uses it: a running `airflow standalone`, headless
Chromium, Airflow's own login page, then the figures (returns, timeliness per stage, bulletins
waiting for sign-off and sent), a screenshot, and axe-core in the page; then the bulletin
previews and the list of redactions the sign-off links to, each behind the same login."""
from __future__ import annotations

import json
import re
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from reviews.learning.browser import HeadlessChromium, chromium_available
from reviews.core.config import load_config
from reviews.core.run_dates import LONDON
from reviews.returns.ingest import ingest_partnership
from reviews.learning.publication import build_period
from reviews.returns.quality_reports import build_quality_reports
from reviews.returns.returns_due import check_returns
from reviews.timeliness.run import run_timeliness
from reviews_dev.synthetic import generate_returns
from reviews.core import warehouse as wh
from reviews.core.warehouse import ensure_schema, make_engine
from tests.browser.standalone import ROOT, airflow_standalone
from tests.browser.standalone import axe_violations as _axe
from tests.browser.standalone import goto as _goto
from tests.browser.standalone import log_in as _log_in
from tests.browser.standalone import wait_for as _wait
from tests.integration.deployment import PASSWORD, USER

pytestmark = [pytest.mark.slow, pytest.mark.browser]
AS_OF = date(2026, 10, 31)
Q2, Q3 = (date(2026, 4, 1), date(2026, 6, 30)), (date(2026, 7, 1), date(2026, 9, 30))
SENT_AT = datetime(2026, 7, 7, 8, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def standalone():
    if not chromium_available():
        pytest.fail("Debian's chromium is needed for browser tests (make test installs it)")
    home = Path(tempfile.mkdtemp(prefix="reviews-standalone-"))
    data = home / "data"
    cfg = load_config()
    generate_returns(data / "inbox", cfg, start=date(2025, 10, 1), end=date(2026, 9, 30), seed=5, inflate=3)
    url = f"sqlite:///{data / 'warehouse.db'}"
    engine = make_engine(url)
    ensure_schema(engine)
    for code in cfg.partnerships:
        ingest_partnership(engine, cfg, code, data / "inbox", data / "raw", b"status-page-test-key-0123", AS_OF)
    run_timeliness(engine, cfg, AS_OF)
    check_returns(engine, cfg, AS_OF, data / "reports" / "returns")
    for code in cfg.partnerships:
        build_quality_reports(engine, cfg, code, data / "reports" / "quality", AS_OF)
    ids = {}
    for period in (Q2, Q3):  # Q2 was sent; Q3 waits for sign-off
        build_period(engine, cfg, *period, AS_OF, data / "bulletins")
        with engine.connect() as conn:
            ids[period] = dict(conn.execute(sa.select(wh.bulletins.c.audience, wh.bulletins.c.bulletin_id).where(
                wh.bulletins.c.period_start == period[0], wh.bulletins.c.period_end == period[1])).all())
    with engine.begin() as conn:
        conn.execute(sa.insert(wh.circulation_log), [
            {"bulletin_id": ids[Q2]["region"], "recipient": f"lead{i}@merseyside-safeguarding.gov.uk", "status": "sent",
             "attempt": 1, "queued_at": SENT_AT, "sent_at": SENT_AT, "transport": "outbox"} for i in range(3)])
        conn.execute(sa.insert(wh.bulletin_signoffs), [{
            "period_start": Q3[0], "period_end": Q3[1], "bulletin_ids": json.dumps(sorted(ids[Q3].values())),
            "status": "requested", "dag_id": "bulletin_circulation", "run_id": "scheduled__2026-10-06T08:00:00+00:00",
            "requested_at": datetime(2026, 10, 6, 8, 0, tzinfo=timezone.utc)}])
        conn.execute(sa.delete(wh.bulletin_redactions).where(wh.bulletin_redactions.c.period_start == Q3[0]))
        conn.execute(sa.insert(wh.bulletin_redactions), [{
            "period_start": Q3[0], "period_end": Q3[1], "partnership_code": "sefton", "review_id": "SEF-R-001",
            "record_id": "SEF-F-0001", "field": "finding", "kind": "postcode", "used_in": "key findings",
            "excerpt": "the family moved to [postcode removed] before the review", "found_at": SENT_AT}])
    try:
        with airflow_standalone(home, url, data, {"REVIEWS_DEADLINES": "on"}) as base:
            yield {"base": base, "home": home, "data": data, "url": url, "q2": ids[Q2], "q3": ids[Q3]}
    finally:
        engine.dispose()


def _texts(page, selector: str) -> list[str]:
    return page.evaluate(f"[...document.querySelectorAll({selector!r})].map(e => e.innerText.trim())")


ROUTES = ["/reviews/", "/reviews/bulletins/{region}", "/reviews/bulletins/{region}.pdf", "/reviews/quality/{quality}",
          f"/reviews/periods/{Q3[0]}_{Q3[1]}/redactions"]


def _routes(site) -> list[str]:
    engine = make_engine(site["url"])
    with engine.connect() as conn:
        quality = conn.execute(sa.select(sa.func.min(wh.bulletins.c.bulletin_id))
                               .where(wh.bulletins.c.audience.like("quality:%"))).scalar_one()
    engine.dispose()
    return [r.format(region=site["q3"]["region"], quality=quality) for r in ROUTES]


def test_every_route_sends_a_visitor_without_a_login_to_the_login_page(standalone):
    for route in _routes(standalone):
        r = requests.get(f"{standalone['base']}{route}", allow_redirects=False, timeout=30)
        assert r.status_code == 307, route
        assert r.headers["location"].startswith("/auth/login") and b"<html" not in r.content, route
        forged = requests.get(f"{standalone['base']}{route}", allow_redirects=False, timeout=30,
                              headers={"Authorization": "Bearer not.a.token"})
        assert forged.status_code == 307, route


def test_page_needs_login_then_shows_the_figures(standalone, tmp_path):
    base = standalone["base"]
    assert requests.get(f"{base}/reviews/", allow_redirects=False, timeout=30).status_code == 307
    with HeadlessChromium() as browser:
        page = browser.new_page(width=1400, height=900)
        _log_in(page, base)
        _wait(page, "document.querySelector('#status')")
        text = page.evaluate("document.querySelector('#status').innerText")
        for name in ("Knowsley", "Liverpool", "Sefton", "St Helens", "Wirral"):
            assert name in text
        body = page.evaluate("document.body.innerText")
        today = datetime.now(LONDON).date()
        assert f"As of {today.day} {today:%b %Y}." in body  # the page is live
        assert "Returns last checked as of 31 Oct 2026" in body and "timeliness judged as of 31 Oct 2026" in body
        assert page.evaluate("document.documentElement.lang") == "en" and page.evaluate("document.title")
        assert _texts(page, "h2") == ["Returns per partnership", "Statutory timeliness per stage",
                                      "Bulletins waiting for sign-off", "Bulletins sent"]
        # Per partnership: the last return and its due date, the next one expected, in words.
        rows = page.evaluate("[...document.querySelectorAll('#status tbody tr')].map(r => [...r.cells].map(c => c.innerText))")
        assert len(rows) == 5
        for cells in rows:
            assert re.search(r"received \d{1,2} \w{3} 20\d\d, (on time|late|received, not loaded) \(due \d{1,2} \w{3} 20\d\d\)",
                             cells[1]), cells
            assert re.search(r": due \d{1,2} \w{3} 20\d\d$", cells[2].strip()), cells
            assert re.fullmatch(r"none|((Late|Missing|Not loaded): .+\n?)+(and \d+ earlier: .+)?", cells[3].strip()), cells
        # The returns end in September 2026: July to September's, due on 10 October, is flagged in words.
        assert rows[0][3].startswith("Missing: Jul to Sep 2026, due 10 Oct 2026"), rows[0]
        quality = page.evaluate("[...document.querySelectorAll('#status a[href^=\"/reviews/quality/\"]')].length")
        assert quality >= 5  # each partnership's reports, newest first
        # Timeliness per stage: one table each, cases by status, a total row.
        for stage in ("notification", "rapid_review", "lcspr_completion", "publication_notice"):
            assert page.evaluate(f"!!document.querySelector('#timeliness-{stage} caption')"), stage
        numbers = page.evaluate("[...document.querySelectorAll('#timeliness-notification td.n')].map(td => +td.innerText)")
        assert sum(numbers) > 0
        # Bulletins waiting for sign-off (Q3, every audience, with previews) and sent (Q2's regional, to 3).
        waiting = page.evaluate("document.querySelector('#awaiting-signoff').innerText")
        assert "Jul to Sep 2026" in waiting and "6 Oct 2026 09:00" in waiting and "version 1" in waiting
        links = page.evaluate("[...document.querySelectorAll('#awaiting-signoff a')].map(a => a.getAttribute('href'))")
        region = standalone["q3"]["region"]
        assert f"/reviews/bulletins/{region}" in links and f"/reviews/bulletins/{region}.pdf" in links
        assert f"/reviews/periods/{Q3[0]}_{Q3[1]}/redactions" in links
        assert len([h for h in links if h.startswith("/reviews/bulletins/") and not h.endswith(".pdf")]) == len(standalone["q3"])
        [sent] = page.evaluate("[...document.querySelectorAll('#bulletins-sent tbody tr')].map(r => [...r.cells].map(c => c.innerText))")
        assert sent[0] == "Apr to Jun 2026" and sent[2:] == ["1", "3", "7 Jul 2026 09:00"]
        violations = _axe(page)
        shot = page.screenshot()
    assert not violations, f"axe found on the status page: {violations}"
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 10_000
    (tmp_path / "status_page.png").write_bytes(shot)
    out = ROOT / "var" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    (out / "status_page.png").write_bytes(shot)


def test_previews_and_redactions_behind_the_login(standalone, tmp_path):
    base, region = standalone["base"], standalone["q3"]["region"]
    token = requests.post(f"{base}/auth/token", json={"username": USER, "password": PASSWORD}, timeout=30).json()
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    routes = _routes(standalone)
    for route in routes:
        r = requests.get(f"{base}{route}", headers=auth, allow_redirects=False, timeout=60)
        assert r.status_code == 200, (route, r.status_code, r.text[:300])
        assert "default-src 'none'" in r.headers["content-security-policy"], route
        assert r.headers["x-content-type-options"] == "nosniff", route
    pdf = requests.get(f"{base}/reviews/bulletins/{region}.pdf", headers=auth, timeout=60)
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content[:5] == b"%PDF-"
    html = requests.get(f"{base}/reviews/bulletins/{region}", headers=auth, timeout=60)
    stored = Path(next(p for p in (standalone["data"] / "bulletins").rglob("*.html")
                       if p.read_bytes() == html.content))  # exactly the file the warehouse names
    assert stored.is_relative_to(standalone["data"])
    # Numbers only; nothing that is not a stored document of the right kind; nothing outside the data folder.
    assert requests.get(f"{base}/reviews/bulletins/..%2F..%2Fetc%2Fpasswd", headers=auth, timeout=30).status_code in (404, 422)
    assert requests.get(f"{base}/reviews/bulletins/999999", headers=auth, timeout=30).status_code == 404
    assert requests.get(f"{base}/reviews/quality/{region}", headers=auth, timeout=30).status_code == 404  # not a report
    engine = make_engine(standalone["url"])
    outside = tmp_path / "outside.html"
    outside.write_text("<p>not a bulletin</p>")
    other = standalone["q3"]["knowsley"]
    with engine.begin() as conn:
        kept = conn.execute(sa.select(wh.bulletins.c.path).where(wh.bulletins.c.bulletin_id == other)).scalar_one()
        conn.execute(sa.update(wh.bulletins).where(wh.bulletins.c.bulletin_id == other).values(path=str(outside)))
    try:
        refused = requests.get(f"{base}/reviews/bulletins/{other}", headers=auth, timeout=30)
    finally:  # put it back: the sign-off test sends this bulletin
        with engine.begin() as conn:
            conn.execute(sa.update(wh.bulletins).where(wh.bulletins.c.bulletin_id == other).values(path=kept))
        engine.dispose()
    assert refused.status_code == 404 and "not a bulletin" not in refused.text
    # In the browser, after logging in: the preview and the redactions, each with no axe violation.
    with HeadlessChromium() as browser:
        page = browser.new_page(width=1000, height=900)
        _log_in(page, base)
        for route, check in ((f"/reviews/bulletins/{region}", "document.querySelector('h1')"),
                             (f"/reviews/periods/{Q3[0]}_{Q3[1]}/redactions", "document.querySelector('#redactions')")):
            _goto(page, f"{base}{route}")
            _wait(page, check)
            violations = _axe(page)
            assert not violations, f"axe found on {route}: {violations}"
            shot = page.screenshot()
            name = "bulletin_preview.png" if "bulletins" in route else "redactions.png"
            (tmp_path / name).write_bytes(shot)
        table = page.evaluate("document.querySelector('#redactions').innerText")
        assert "Sefton" in table and "postcode" in table and "[postcode removed]" in table and "key findings" in table


def test_alert_emails_are_accessible_like_the_bulletins(tmp_path):
    """The timeliness alert and the task-failure alert, rendered as a mail client would show them."""
    if not chromium_available():
        pytest.fail("Debian's chromium is needed for browser tests (make test installs it)")
    from reviews.timeliness.alerts import alert_message
    from reviews_airflow.notifier import failure_message

    cfg = load_config()
    rows = [{"partnership_code": "wirral", "stage": "rapid_review", "record_id": "WIR-N-0007", "status": "open_overdue",
             "due_date": date(2024, 6, 19), "working_days_left": -2},
            {"partnership_code": "knowsley", "stage": "notification", "record_id": "KNO-N-0001",
             "status": "open_at_risk", "due_date": date(2024, 6, 25), "working_days_left": 2}]
    timeliness = alert_message(rows, cfg, date(2024, 6, 21), cfg.business_unit_email, "http://localhost:8080/reviews/")
    _, failure, _ = failure_message(dag_id="partnership_returns", task_id="ingest", run_id="manual__1", map_index=0,
                                    try_number=1, partnership="knowsley", log_url="http://localhost:8080/dags/x",
                                    exc=OSError("disk full"), status_url="http://localhost:8080/reviews/")
    with HeadlessChromium() as browser:
        page = browser.new_page()
        for name, html in (("timeliness_alert", timeliness.html), ("failure_alert", failure)):
            page.load_html(html)
            violations = _axe(page)
            assert not violations, f"axe found in the {name} email: {violations}"
            (tmp_path / f"{name}.png").write_bytes(page.screenshot())


def test_sign_off_request_in_the_airflow_ui_then_approved(standalone, tmp_path):
    """A real bulletin_circulation run under the standalone scheduler: its sign-off request waits
    under Required actions (screenshot of Airflow's own page, with the preview links), nothing is
    sent; approved through the REST API, the bulletins go (outbox: no SMTP connection here)."""
    base, q3 = standalone["base"], standalone["q3"]
    engine = make_engine(standalone["url"])
    with engine.begin() as conn:  # the fixture's stand-in request for the status page makes way for a real one
        conn.execute(sa.update(wh.bulletin_signoffs).values(status="withdrawn"))
    token = requests.post(f"{base}/auth/token", json={"username": USER, "password": PASSWORD}, timeout=30).json()
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token['access_token']}"
    assert api.patch(f"{base}/api/v2/dags/bulletin_circulation", json={"is_paused": False}, timeout=30).ok
    made = api.post(f"{base}/api/v2/dags/bulletin_circulation/dagRuns",
                    json={"logical_date": None, "conf": {"period_end": Q3[1].isoformat()}}, timeout=30)
    assert made.ok, made.text
    run_id = made.json()["dag_run_id"]
    signoff = f"{base}/api/v2/dags/bulletin_circulation/dagRuns/{run_id}/taskInstances/sign_off/-1/hitlDetails"

    def task_states():
        tis = api.get(f"{base}/api/v2/dags/bulletin_circulation/dagRuns/{run_id}/taskInstances", timeout=30).json()
        return {t["task_id"]: t["state"] for t in tis["task_instances"]}

    deadline = time.monotonic() + 240
    while task_states().get("sign_off") != "awaiting_input":
        assert time.monotonic() < deadline, task_states()
        time.sleep(2)
    request = api.get(signoff, timeout=30).json()
    assert request["subject"] == "Sign off the learning bulletins: Q2 2026-27 (July to September 2026)"
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(wh.circulation_log)
                            .where(wh.circulation_log.c.bulletin_id.in_(q3.values()))).scalar_one() == 0

    with HeadlessChromium() as browser:
        page = browser.new_page(width=1400, height=1000)
        _log_in(page, base)
        _goto(page, f"{base}/dags/bulletin_circulation/runs/{run_id}/tasks/sign_off/required_actions")
        _wait(page, "document.body.innerText.includes('Sign off the learning bulletins')")
        _wait(page, "document.querySelectorAll('a[href^=\"/reviews/bulletins/\"]').length > 0")
        links = page.evaluate("[...document.querySelectorAll('a[href^=\"/reviews/bulletins/\"]')].map(a => a.getAttribute('href'))")
        text = page.evaluate("document.body.innerText")
        shot = page.screenshot()
    assert f"/reviews/bulletins/{q3['region']}" in links and f"/reviews/bulletins/{q3['region']}.pdf" in links
    for words in ("Data missing or late", "Redactions", "Approve and send", "Reject", "recipient(s)"):
        assert words in text, words
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 10_000
    (tmp_path / "signoff_request.png").write_bytes(shot)
    out = ROOT / "var" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    (out / "signoff_request.png").write_bytes(shot)

    # Answer as a person would, not within seconds of the request appearing: Airflow 3.3's scheduler
    # may not yet have handled the executor's report of the parked task, and an answer that beats it
    # makes it retry the task, which asks again (nothing is sent either way). docs/bulletins.md.
    time.sleep(15)
    answered = api.patch(signoff, json={"chosen_options": ["Approve and send"], "params_input": {"reason": ""}}, timeout=30)
    assert answered.ok, answered.text
    deadline = time.monotonic() + 240
    while (state := api.get(f"{base}/api/v2/dags/bulletin_circulation/dagRuns/{run_id}", timeout=30).json()["state"]) \
            not in ("success", "failed"):
        assert time.monotonic() < deadline, task_states()
        time.sleep(2)
    assert state == "success", task_states()
    with engine.connect() as conn:
        sent = conn.execute(sa.select(sa.func.count()).select_from(wh.circulation_log).where(
            wh.circulation_log.c.bulletin_id.in_(q3.values()), wh.circulation_log.c.status == "sent")).scalar_one()
        decided = conn.execute(sa.select(wh.bulletin_signoffs.c.status, wh.bulletin_signoffs.c.decided_by)
                               .where(wh.bulletin_signoffs.c.run_id == run_id)).one()
    engine.dispose()
    assert sent == 17 and tuple(decided) == ("approved", USER)
