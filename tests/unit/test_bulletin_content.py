"""What the bulletins say: trend, conversion, themes, actions, 7-minute briefings, redactions,
rounding, and how they are stored and attached. On the hand-made warehouse of bulletin_data."""
from __future__ import annotations

import dataclasses
import html as htmllib
import json
import os
import re
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from reviews.core import warehouse as wh
from reviews.learning.bulletin import render_bulletin, round_to
from reviews.core.config import DEFAULT_CONFIG, ConfigError, load_config
from reviews.core.mail import Message, build_mime
from reviews.learning.publication import attachment_paths, attachments_for_factory, build_period
from reviews.learning.summary import compile_summary
from tests.bulletin_data import JUNE, NHS_NUMBER, PUBLISHED_REVIEW, build


@pytest.fixture(scope="module")
def cfg():
    return load_config()


def with_summary(cfg, **changes):
    """A copy of the config with some of its `summary` settings changed."""
    return dataclasses.replace(cfg, summary=dataclasses.replace(cfg.summary, **changes))


def config_file(tmp_path, **sections):
    """The project's config file with some top-level sections replaced, written under tmp_path."""
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw.update(sections)
    path = tmp_path / "reviews.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def engine(tmp_path_factory, cfg):
    eng = wh.make_engine(f"sqlite:///{tmp_path_factory.mktemp('wh') / 'w.db'}")
    build(eng, cfg)
    return eng


@pytest.fixture(scope="module")
def summary(engine, cfg):
    return compile_summary(engine, cfg, *JUNE, JUNE[1])


def area(summary, code):
    return next(p for p in summary["partnerships"] if p["code"] == code)


def cells(html: str) -> list[str]:
    return [htmllib.unescape(v).strip() for v in re.findall(r"<td[^>]*>(.*?)</td>", html, re.S)]


def test_summary_is_json_with_trend_periods(summary):
    assert json.loads(json.dumps(summary)) == summary
    assert [p["short_label"] for p in summary["trend_periods"]] == ["Mar 2024", "Apr 2024", "May 2024", "Jun 2024"]
    trend = summary["region"]["timeliness_trend"]["notification"]
    assert len(trend) == 4 and set(trend[0]) == {"met", "late", "open_overdue", "open_at_risk"}
    # Every notification of the data is judged in the month it fell due: 21, 23, 22, 21 (see bulletin_data).
    assert sum(sum(v for k, v in t.items() if k != "open_at_risk") for t in trend) >= 80
    for code in ("knowsley", "liverpool"):
        assert area(summary, code)["timeliness_trend"]["rapid_review"][3]["met"] > 0


def test_conversion_and_national_referrals(summary):
    region = summary["region"]
    rr = region["rapid_reviews_completed"]
    assert rr["total"] == 22 and rr["lcspr"] == 13
    assert region["national_review_referrals"] == rr["national_review_recommended"]


def test_actions_as_at_period_end(summary):
    acts = summary["region"]["actions"]
    assert sum(acts[s] for s in ("open", "in_progress", "completed", "overdue")) == acts["total"] > 0
    assert area(summary, "sefton")["actions"]["total"] == 0
    assert acts["overdue"] >= 1  # the published review's first action was due 31 May 2024


def test_recurring_themes(summary):
    rec = {r["theme"]: r for r in summary["recurring_themes"]}
    assert rec and all(r["across_partnerships"] or r["across_periods"] for r in rec.values())
    assert rec["information_sharing"]["partnerships"] and len(rec["information_sharing"]["periods"]) >= 2


def test_briefing_and_redactions(summary):
    assert [b["review_id"] for b in summary["briefings"]] == [PUBLISHED_REVIEW]
    finding = summary["briefings"][0]["findings"][0]["finding"]
    assert NHS_NUMBER not in finding and "CH41" not in finding and "[redacted]" in finding
    kinds = sorted(r["kind"] for r in summary["redactions"])
    assert kinds == ["date_of_birth", "email", "nhs_number", "phone", "postcode"]
    assert all(r["record_id"] == f"{PUBLISHED_REVIEW}-F0" and r["used_in"] == ["7-minute briefing"]
               for r in summary["redactions"])


@pytest.mark.parametrize("audience", ["region", "knowsley", "sefton"])
def test_rendered_bulletin(summary, cfg, audience):
    r = render_bulletin(summary, cfg, audience)
    everything = r.html + r.text + r.print_html + "".join(b.html + b.text for b in r.briefings)
    assert NHS_NUMBER not in everything and "jo.bloggs" not in everything
    assert "<script" not in (r.html + r.print_html + "".join(b.html for b in r.briefings)).lower()
    assert not [v for v in cells(r.html) if v.isdigit() and 1 <= int(v) <= 5]
    for rate in re.findall(r"<td[^>]*>(\d+)%</td>", r.html):
        assert 0 <= int(rate) <= 100
    # Learning first (issue 17): findings, what changes, briefings, recurring themes, then In numbers;
    # the timeliness trend is in the XLSX only.
    order = ["What we learned: findings by theme", "What needs to change", "7-minute briefings",
             "Themes that keep coming back", "In numbers", "About these figures"]
    at = [r.html.index(f">{h}</h2>") for h in order]
    assert at == sorted(at) and not re.search(r"<table(?! role=\"presentation\")", r.html[:at[4]])
    assert "Timeliness over the last 4 months" not in r.html
    assert {"Trend Notification", "Actions", "Recurring themes", "In numbers"} <= {t.sheet for t in r.tables}
    assert r.html.count("<img") >= 1 and all(t.caption for t in r.tables)
    if audience == "sefton":
        assert not r.briefings and "no review was published in June 2024" in r.text
    else:
        assert [b.review_id for b in r.briefings] == [PUBLISHED_REVIEW]
        assert "7-minute briefing: Knowsley" in r.print_html and "7-minute briefing: Knowsley" not in r.html
        brief = r.briefings[0].html
        assert "&lt;script&gt;" in brief and 'href="https://www.gov.uk/' in brief
        for heading in ("Background", "Why it matters", "What the review found", "What needs to change",
                        "Questions for practitioners", "Find out more"):
            assert heading in brief


def test_rates_only_when_both_counts_are_shown(summary, cfg):
    r = render_bulletin(summary, cfg, "region")
    conversion = next(t for t in r.tables if t.sheet == "Conversion")
    for _, (total, lcspr, rate, _national), _ in conversion.rows:
        if "c" in (total, lcspr):
            assert rate == "c"
        elif total == "0":
            assert rate == "none due"
        else:
            assert rate == f"{round(100 * int(lcspr) / int(total))}%"


def test_rounding_of_regional_notification_totals(summary, cfg):
    assert [round_to(v, 10, "c") for v in ("21", "25", "14", "c", "0")] == ["20", "30", "10", "c", "0"]
    rounded = dataclasses.replace(cfg, round_regional_totals_to=10)
    region = render_bulletin(summary, rounded, "region")
    # In numbers: 87 notifications over the 12 months, rounded to 90; the month's table (XLSX) 21 -> 20.
    in_numbers = next(t for t in region.tables if t.sheet == "In numbers")
    assert in_numbers.rows[0][1] == ["90"] and ">90</td>" in region.html
    assert "rounded to the nearest 10" in region.text
    notif = next(t for t in region.tables if t.sheet == "Notifications")
    assert notif.rows[-1][1][-1] == "20" and notif.rows[1][1][-1] == "7"  # the region rounded, Liverpool exact
    knowsley = render_bulletin(summary, rounded, "knowsley")
    assert next(t for t in knowsley.tables if t.sheet == "Notifications").rows[-1][1] == ["6", "20"]
    plain = render_bulletin(summary, cfg, "region")
    assert next(t for t in plain.tables if t.sheet == "In numbers").rows[0][1] == ["87"]


def test_quarterly_summary(engine, cfg):
    q = compile_summary(engine, cfg, date(2024, 4, 1), date(2024, 6, 30), date(2024, 6, 30))
    assert q["period"]["kind"] == "quarter"
    assert [p["short_label"] for p in q["trend_periods"]] == ["Q2 2023-24", "Q3 2023-24", "Q4 2023-24", "Q1 2024-25"]
    r = render_bulletin(q, cfg, "region")
    assert r.subject.endswith("Q1 2024-25 (April to June 2024)") and "last 4 quarters" in r.html


def test_charts_travel_as_related_parts(summary, cfg):
    r = render_bulletin(summary, cfg, "region")
    msg = build_mime("reviews.bulletins@merseyside-safeguarding.gov.uk",
                     Message(to=("a@knowsley.gov.uk",), subject=r.subject, html=r.html, text=r.text))
    html = msg.get_body(("html",)).get_content()
    cids = set(re.findall(r'src="cid:([^"]+)"', html))
    parts = {p["Content-ID"].strip("<>") for p in msg.walk() if p.get_content_type() == "image/png"}
    assert cids and cids == parts and "data:image" not in html


def test_build_store_rebuild_and_attach(engine, cfg, tmp_path):
    out = tmp_path / "bulletins"
    no_pdf = with_summary(cfg, pdf=False)
    first = build_period(engine, no_pdf, *JUNE, JUNE[1], out)
    assert [b["version"] for b in first.built] == [1] * 6 and all(b["new"] for b in first.built)
    again = build_period(engine, no_pdf, *JUNE, JUNE[1], out)
    assert [b["bulletin_id"] for b in again.built] == [b["bulletin_id"] for b in first.built]
    assert not any(b["new"] for b in again.built)
    folder = Path(first.folder)
    assert (folder / "internal" / "redactions.csv").read_text().count("\n") == 1 + 5
    assert NHS_NUMBER not in (folder / "internal" / "redactions.csv").read_text()
    assert len(list((folder / "briefings").glob("*.html"))) == 1
    with engine.connect() as conn:
        stored = conn.execute(sa.select(wh.bulletin_redactions).where(
            wh.bulletin_redactions.c.period_end == JUNE[1])).mappings().all()
        rows = {r["audience"]: dict(r) for r in conn.execute(sa.select(wh.bulletins).where(
            wh.bulletins.c.period_end == JUNE[1])).mappings()}
    assert len(stored) == 5 and {r["kind"] for r in stored} >= {"nhs_number", "postcode"}
    region_html = Path(rows["region"]["path"])
    assert region_html.name == "merseyside-learning-bulletin-jun-2024-v1.html"
    pdf, xlsx = attachment_paths(region_html)
    assert xlsx.is_file() and not pdf.exists()

    attach = attachments_for_factory(no_pdf)
    bu = cfg.business_unit_email[0]
    assert attach({**rows["region"], "recipient": bu}) == [xlsx]
    assert attach({**rows["region"], "recipient": "lscp@liverpool.gov.uk"}) == [xlsx]  # xlsx_to_everyone
    bu_only = dataclasses.replace(no_pdf, circulation=dataclasses.replace(no_pdf.circulation, xlsx_to_everyone=False))
    assert attachments_for_factory(bu_only)({**rows["region"], "recipient": bu}) == [xlsx]
    assert attachments_for_factory(bu_only)({**rows["region"], "recipient": "lscp@liverpool.gov.uk"}) == []
    assert attach({**rows["region"], "audience": "quality:knowsley", "recipient": bu}) == []
    with_pdf = attachments_for_factory(with_summary(cfg, pdf=True))
    with pytest.raises(FileNotFoundError):
        with_pdf({**rows["region"], "recipient": bu})
    pdf.write_bytes(b"%PDF-1.4 test")
    assert with_pdf({**rows["region"], "recipient": "lscp@liverpool.gov.uk"}) == [pdf, xlsx]


def test_bulletin_settings_defaults(cfg, tmp_path):
    schedule = cfg.circulation.schedule
    assert (cfg.summary.period, schedule.weekday, schedule.hour, cfg.round_regional_totals_to) == ("quarter", 1, 9, None)
    assert (cfg.summary.wait_for_returns_days, cfg.circulation.signoff_reminder_hours) == (7, 24)
    monthly = config_file(tmp_path, summary={"period": "month"}, returns={
        "frequency": "monthly", "due_days_after_period_end": 5, "expected_from": "2023-12-31"})
    assert load_config(monthly).summary.period == "month"
    bare = load_config(config_file(tmp_path, summary=None, circulation=None, briefings=None))
    assert (bare.summary.period, bare.circulation.schedule.describe(), bare.circulation.late_send_window_days) == (
        "quarter", "the first working Tuesday, no earlier than working day 15, after the period ends, "
                   "at 09:00 Europe/London", 92)


def test_action_states_counted_by_group_match_row_by_row(engine, cfg):
    """summary._actions counts groups in the database: the same states as judging every row."""
    from reviews.learning import summary as sm
    from tests.bulletin_data import _lineage

    codes = list(cfg.partnerships)
    lr, pr = wh.learning, wh.practice_reviews
    with engine.begin() as conn:  # edge cases: dates on the period end, completed with no date, no status
        conn.execute(sa.insert(wh.practice_reviews), [
            {"partnership_code": "wirral", "review_id": "EDGE", "review_type": "lcspr", "decision_date": date(2024, 1, 1),
             "completed_date": date(2024, 5, 1), "status": "completed", **_lineage()},
        ])
        conn.execute(sa.insert(wh.learning), [
            {"partnership_code": "wirral", "finding_id": f"EDGE{k}", "review_id": "EDGE", "theme": "neglect",
             "finding": "x", "recommendation": rec, "action_status": status, "action_due_date": due,
             "action_completed_date": done, **_lineage()}
            for k, (rec, status, due, done) in enumerate([
                ("r", "open", date(2024, 6, 30), None), ("r", "open", date(2024, 6, 29), None),
                ("r", "in_progress", date(2024, 6, 30), date(2024, 6, 30)), ("r", "completed", None, None),
                ("r", "completed", date(2024, 7, 31), date(2024, 7, 1)), ("r", None, None, None),
                ("", "open", None, date(2024, 6, 1)), (None, None, None, None),
            ])
        ])
    try:
        for end in (date(2024, 6, 30), date(2024, 5, 31), date(2024, 7, 1)):
            stmt = (sa.select(lr.c.partnership_code, lr.c.action_status, lr.c.action_due_date, lr.c.action_completed_date)
                    .select_from(sm._learning_join())
                    .where(lr.c.partnership_code.in_(codes), pr.c.completed_date <= end,
                           sa.or_(sa.func.length(sa.func.trim(sa.func.coalesce(lr.c.recommendation, ""))) > 0,
                                  lr.c.action_status.is_not(None))))
            with engine.connect() as conn:
                grouped = sm._actions(conn, end, codes)
                rows = conn.execute(stmt).mappings().all()
            expected = {c: {s: 0 for s in sm.ACTION_STATES} for c in codes}
            for r in rows:
                expected[r["partnership_code"]][sm._action_state(dict(r), end)] += 1
            for c in codes:
                expected[c]["total"] = sum(expected[c][s] for s in sm.ACTION_STATES)
            assert grouped == expected
            assert grouped["wirral"]["total"] > 0
    finally:
        with engine.begin() as conn:
            conn.execute(wh.learning.delete().where(wh.learning.c.review_id == "EDGE"))
            conn.execute(wh.practice_reviews.delete().where(wh.practice_reviews.c.review_id == "EDGE"))


def test_bulletins_rendered_together_match_one_at_a_time(summary, cfg):
    """render_bulletins shares the suppressed grids between audiences: the same bulletins."""
    from reviews.learning.bulletin import render_bulletins

    audiences = ["region", *cfg.partnerships]
    together = render_bulletins(summary, cfg, audiences)
    for a in audiences:
        alone = render_bulletin(summary, cfg, a)
        assert (together[a].content_hash, together[a].tables) == (alone.content_hash, alone.tables)


def test_charts_on_a_shared_renderer_match_a_fresh_canvas(monkeypatch):
    """charts._Canvas reuses renderers between charts: the PNG bytes of a fresh Agg canvas each time."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from reviews.learning import charts

    def draw_all():
        out = []
        for i in range(3):
            out.append(charts.bar_chart([("Neglect", 12 + i), ("Voice of the child", 7), ("Other", 1)], "Findings",
                                        caption="c", alt="a").src)
            out.append(charts.line_chart(["Jun", "Jul", "Aug", "Sep"], [("Notification", [80.0, None, 70.0 + i, 90.0]),
                                                                        ("Rapid review", [50.0, 60.0, 65.0, None])],
                                         "Met", caption="c", alt="a").src)
        return out

    shared = draw_all()
    monkeypatch.setattr(charts, "_Canvas", FigureCanvasAgg)
    assert draw_all() == shared


def test_rebuild_with_the_same_inputs_renders_nothing(engine, cfg, tmp_path, monkeypatch):
    """A rebuild renders only audiences whose inputs changed or whose files are missing."""
    import reviews.learning.bulletin as bulletin

    out = tmp_path / "bulletins"
    no_pdf = with_summary(cfg, pdf=False)
    first = build_period(engine, no_pdf, *JUNE, JUNE[1], out)
    folder = Path(first.folder)
    files = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != "inputs.json"}
    asked: list[list[str]] = []
    real = bulletin.render_bulletins
    monkeypatch.setattr(bulletin, "render_bulletins", lambda s, c, audiences: asked.append(list(audiences))
                        or real(s, c, audiences))

    again = build_period(engine, no_pdf, *JUNE, JUNE[1], out)
    assert asked[-1] == [] and again.built == [{**b, "new": False} for b in first.built]
    assert again.briefings == first.briefings

    with engine.connect() as conn:
        paths = {r.audience: Path(r.path) for r in conn.execute(sa.select(wh.bulletins.c.audience, wh.bulletins.c.path)
                                                                 .where(wh.bulletins.c.period_end == JUNE[1]))}
    attachment_paths(paths["knowsley"])[1].unlink()
    next(iter((folder / "briefings").glob("*.txt"))).unlink()
    third = build_period(engine, no_pdf, *JUNE, JUNE[1], out)
    assert sorted(asked[-1]) == ["knowsley", "region"] and not any(b["new"] for b in third.built)
    assert {p: p.read_bytes() for p in files} == files  # the missing files are back, the same bytes

    changed = dataclasses.replace(no_pdf, round_regional_totals_to=10)
    fourth = build_period(engine, changed, *JUNE, JUNE[1], out)
    assert sorted(asked[-1]) == sorted(["region", *cfg.partnerships])
    assert any(b["new"] for b in fourth.built)


@pytest.mark.slow  # a process pool: about 4.5 s of CPU
def test_bulletins_rendered_in_a_pool_match_in_process(summary, cfg, monkeypatch):
    """summary.workers > 1 renders in spawned processes: the same bulletins, and the same XLSX bytes."""
    from reviews.learning import bulletin
    from reviews.learning.bulletin import render_bulletins, workbook_bytes

    monkeypatch.setattr(bulletin, "POOL_MIN_AUDIENCES", 2)
    audiences = ["region", *cfg.partnerships]
    one, two = with_summary(cfg, workers=1), with_summary(cfg, workers=2)
    here, pooled = render_bulletins(summary, one, audiences), render_bulletins(summary, two, audiences)
    assert list(pooled) == audiences
    for a in audiences:
        assert dataclasses.replace(pooled[a], xlsx=b"") == here[a]
        assert pooled[a].xlsx == workbook_bytes(summary, cfg, here[a])


def test_a_failing_worker_names_its_audience(summary, cfg, monkeypatch):
    import copy

    from reviews.learning import bulletin
    from reviews.learning.bulletin import RenderError, render_bulletins

    monkeypatch.setattr(bulletin, "POOL_MIN_AUDIENCES", 2)
    broken = copy.deepcopy(summary)
    del broken["partnerships"][0]["notifications"]
    two = with_summary(cfg, workers=2)
    with pytest.raises(RenderError, match="audience 'region'"):
        render_bulletins(broken, two, ["region", *cfg.partnerships])


def test_workers_setting(cfg, tmp_path):
    def workers(n):
        return load_config(config_file(tmp_path, summary={} if n is None else {"workers": n}))

    assert workers(1).summary.workers == 1
    assert workers(None).summary.workers == min(2, os.cpu_count() or 1)
    assert repr(workers(3)) == repr(workers(None))  # not an input
    with pytest.raises(ConfigError, match="summary.workers"):
        workers(0)
