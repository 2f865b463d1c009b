"""The regional learning summary from a hand-made warehouse, and the bulletins rendered from it."""
from __future__ import annotations

import html as htmllib
import json
import re
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import insert

from reviews.core import warehouse as wh
from reviews.learning.bulletin import RenderedBulletin, period_label, render_bulletin
from reviews.core.config import ConfigError, load_config
from reviews.learning.summary import compile_summary, screen_free_text

JUNE = (date(2024, 6, 1), date(2024, 6, 30))
AS_OF = date(2024, 6, 30)
SCRIPT = 'Agencies did not share <script>alert("x")</script> concerns & worries'
_row = iter(range(1, 10_000))


def lineage() -> dict:
    return {
        "return_date": date(2024, 7, 1),
        "source_file_id": 1,
        "source_row": next(_row),
        "row_hash": "0" * 64,
        "loaded_at": datetime(2024, 7, 1, 9, 0, tzinfo=timezone.utc),
    }


def notification(p, nid, incident_type, notified, aware=date(2024, 5, 1)):
    return {
        "partnership_code": p, "notification_id": nid, "child_key": "k" * 64,
        "incident_date": date(2024, 4, 30), "aware_date": aware, "notified_date": notified,
        "incident_type": incident_type, **lineage(),
    }


def rapid(p, rid, completed, outcome):
    return {"partnership_code": p, "rapid_review_id": rid, "notification_id": "n", "completed_date": completed,
            "outcome": outcome, **lineage()}


def review(p, rid, review_type, decided, completed=None):
    return {"partnership_code": p, "review_id": rid, "review_type": review_type, "decision_date": decided,
            "completed_date": completed, "status": "completed" if completed else "in_progress", **lineage()}


def finding(p, fid, rid, theme, text="Finding text.", rec="Do better."):
    return {"partnership_code": p, "finding_id": fid, "review_id": rid, "theme": theme, "finding": text,
            "recommendation": rec, "action_due_date": date(2025, 1, 31), "action_status": "open", **lineage()}


def timely(p, stage, rid, status, as_of=AS_OF):
    return {"partnership_code": p, "stage": stage, "record_id": rid, "as_of_date": as_of, "status": status}


@pytest.fixture(scope="module")
def cfg():
    return load_config()


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    engine = wh.make_engine("sqlite:///" + str(tmp_path_factory.mktemp("wh") / "w.db"))
    wh.ensure_schema(engine)
    notifications = [
        notification("knowsley", "KN1", "death", date(2024, 6, 3)),
        notification("knowsley", "KN2", "serious_harm", None, aware=date(2024, 6, 10)),  # aware_date fallback
        notification("knowsley", "KN3", "death", date(2024, 5, 20)),  # before the period
        notification("liverpool", "LV0", "death", date(2024, 6, 4)),
        *(notification("liverpool", f"LV{i}", "serious_harm", date(2024, 6, 10 + i)) for i in range(1, 8)),
        notification("st_helens", "SH1", "other", date(2024, 6, 12)),
        notification("wirral", "WI1", "death", date(2024, 6, 30)),  # last day counts
        notification("wirral", "WI2", "death", date(2024, 7, 1)),  # after the period
        notification("halton", "HA1", "death", date(2024, 6, 5)),  # not a configured partnership
    ]
    rapid_reviews = [
        rapid("knowsley", "KRR1", date(2024, 6, 20), "lcspr"),
        rapid("liverpool", "LRR1", date(2024, 6, 5), "no_further_review"),
        rapid("liverpool", "LRR2", None, None),
        rapid("wirral", "WRR1", date(2024, 5, 31), "lcspr"),
    ]
    practice_reviews = [
        review("knowsley", "KR1", "lcspr", date(2024, 6, 21)),
        review("knowsley", "KR0", "lcspr", date(2023, 10, 1), completed=date(2024, 6, 15)),
        review("liverpool", "LR5", "local_multi_agency", date(2023, 1, 10), completed=date(2023, 12, 1)),
        review("sefton", "SR9", "single_agency", date(2024, 6, 2)),
    ]
    learning = [
        finding("knowsley", "KF1", "KR0", "information_sharing", text=SCRIPT),
        finding("knowsley", "KF2", "KR0", "information_sharing"),
        finding("knowsley", "KF3", "KR0", "information_sharing"),
        finding("knowsley", "KF4", "KR0", "information_sharing"),
        finding("knowsley", "KF5", "KR0", "risk_assessment", text="Seen at L8 0AB, NHS 943 476 5919."),
        *(finding("liverpool", f"LF{i}", "LR5", "information_sharing") for i in range(1, 5)),
        finding("liverpool", "LF9", "LR5", "neglect"),
        finding("sefton", "SF1", "SR9", "domestic_abuse"),  # review not complete: not counted
    ]
    timeliness = [
        timely("knowsley", "notification", "KN1", "met"),
        timely("knowsley", "notification", "KN2", "met"),
        timely("knowsley", "notification", "KN3", "late"),
        timely("knowsley", "notification", "KN9", "not_applicable"),
        timely("liverpool", "rapid_review", "LRR2", "open_at_risk"),
        timely("liverpool", "rapid_review", "LRR1", "met", as_of=date(2024, 5, 31)),  # other snapshot
    ]
    with engine.begin() as conn:
        conn.execute(insert(wh.notifications), notifications)
        conn.execute(insert(wh.rapid_reviews), rapid_reviews)
        conn.execute(insert(wh.practice_reviews), practice_reviews)
        conn.execute(insert(wh.learning), learning)
        conn.execute(insert(wh.timeliness), timeliness)
    return engine


@pytest.fixture(scope="module")
def summary(engine, cfg):
    return compile_summary(engine, cfg, *JUNE, as_of=AS_OF)


def area(summary, code):
    return next(p for p in summary["partnerships"] if p["code"] == code)


# --- the summary ---------------------------------------------------------------------------

def test_summary_is_plain_json_in_config_order(summary, cfg):
    assert json.loads(json.dumps(summary)) == summary
    assert [p["code"] for p in summary["partnerships"]] == list(cfg.partnerships)
    assert summary["period"] == {"start": "2024-06-01", "end": "2024-06-30", "kind": "month"}
    assert summary["as_of"] == "2024-06-30"
    assert set(summary) >= {"partnerships", "region", "categories", "key_findings", "redactions", "notes"}


def test_notifications_by_type(summary):
    assert summary["region"]["notifications"] == {"death": 3, "serious_harm": 8, "other": 1, "total": 12}
    assert area(summary, "knowsley")["notifications"] == {"death": 1, "serious_harm": 1, "other": 0, "total": 2}
    assert area(summary, "liverpool")["notifications"]["total"] == 8
    assert area(summary, "sefton")["notifications"]["total"] == 0


def test_rapid_and_practice_reviews(summary):
    assert area(summary, "knowsley")["rapid_reviews_completed"]["lcspr"] == 1
    assert summary["region"]["rapid_reviews_completed"]["total"] == 2
    assert "not_recorded" not in summary["categories"]["rapid_review_outcome"]  # LRR2 is not in the period
    decided = summary["region"]["practice_reviews_decided"]
    assert decided == {"lcspr": 1, "national": 0, "local_multi_agency": 0, "single_agency": 1, "total": 2}


def test_timeliness_uses_the_as_of_snapshot(summary):
    kn = area(summary, "knowsley")["timeliness"]["notification"]
    assert kn["met"] == 2 and kn["late"] == 1 and kn["total"] == 3  # not_applicable left out
    rr = summary["region"]["timeliness"]["rapid_review"]
    assert rr["open_at_risk"] == 1 and rr["met"] == 0


def test_themes_dated_by_review_completion(summary):
    region = {t["theme"]: t for t in summary["region"]["themes"]}
    assert region["information_sharing"]["to_date"] == 8
    assert region["information_sharing"]["period"] == 4
    assert region["neglect"] == {"theme": "neglect", "label": "Neglect", "to_date": 1, "period": 0}
    assert "domestic_abuse" not in region
    assert summary["region"]["themes"][0]["theme"] == "information_sharing"
    assert [t["theme"] for t in area(summary, "sefton")["themes"]] == []


def test_key_findings_are_screened(summary):
    kn = [f for f in summary["key_findings"] if f["partnership_code"] == "knowsley"]
    assert len(kn) == 3
    assert kn[0]["finding"] == SCRIPT  # stored as written; escaped when rendered
    assert [f["theme"] for f in kn] == ["information_sharing", "risk_assessment", "information_sharing"]
    assert not [f for f in summary["key_findings"] if f["partnership_code"] == "liverpool"]  # completed 2023
    assert any("[redacted]" in f["finding"] for f in kn)
    assert [(r["partnership_code"], r["record_id"], r["review_id"], r["field"], r["kind"], r["used_in"])
            for r in summary["redactions"]] == [
        ("knowsley", "KF5", "KR0", "finding", "postcode", ["key findings"]),
        ("knowsley", "KF5", "KR0", "finding", "nhs_number", ["key findings"]),
    ]
    assert all("943" not in r["excerpt"] and "L8 0AB" not in r["excerpt"] for r in summary["redactions"])


def test_screen_free_text():
    text, kinds = screen_free_text("Mum (jo@example.com, 0151 496 0000) born 03/04/2019 at CH41 5LH")
    assert "example.com" not in text and "0151" not in text and "2019" not in text and "CH41" not in text
    assert set(kinds) == {"email", "phone", "date_of_birth", "postcode"}
    assert screen_free_text("Information was not shared across 3 agencies.") == (
        "Information was not shared across 3 agencies.", []
    )


def test_period_must_be_ordered(engine, cfg):
    with pytest.raises(ValueError):
        compile_summary(engine, cfg, date(2024, 6, 30), date(2024, 6, 1), AS_OF)


# --- the bulletin --------------------------------------------------------------------------

def td_values(html: str) -> list[str]:
    return [htmllib.unescape(v).strip() for v in re.findall(r"<td[^>]*>(.*?)</td>", html, re.S)]


def headlines(html: str) -> list[tuple[str, str]]:
    return [
        (htmllib.unescape(a), htmllib.unescape(b))
        for a, b in re.findall(r"<li>([^<]*): <strong>([^<]*)</strong></li>", html)
    ]


@pytest.fixture(scope="module", params=["region", "knowsley"])
def rendered(request, summary, cfg) -> RenderedBulletin:
    return render_bulletin(summary, cfg, request.param)


def test_small_counts_are_suppressed(rendered):
    cells = td_values(rendered.html)
    assert cells and "c" in cells
    assert not [v for v in cells if v.isdigit() and 1 <= int(v) <= 5]
    for _, value in headlines(rendered.html):
        assert not re.search(r"\b[1-5]\b", value)


def test_region_table_shows_partnerships_side_by_side(summary, cfg):
    # The partnerships side by side are in the XLSX's tables (issue 17: the email shows the region's
    # figures in short); the text part holds what the HTML shows.
    out = render_bulletin(summary, cfg, "region")
    notif = next(t for t in out.tables if t.sheet == "Notifications")
    assert [r[0] for r in notif.rows[:5]] == ["Knowsley", "Liverpool", "Sefton", "St Helens", "Wirral"]
    assert notif.rows[0][1][:4] == ["c", "c", "0", "c"]  # death 1, serious harm 1, other 0, total 2
    assert any(t.caption.startswith("Notification to the Panel: cases by status") for t in out.tables)
    assert "Practice review activity, 12 months to 30 June 2024" in out.text


def test_free_text_is_escaped_and_no_script(rendered):
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; concerns &amp; worries" in rendered.html
    assert "<script" not in rendered.html.lower()
    assert SCRIPT in rendered.text  # plain text carries it verbatim; it is never interpreted


def test_every_image_has_alt_text_and_a_chart_is_embedded(rendered):
    imgs = re.findall(r"<img\b[^>]*>", rendered.html)
    assert imgs
    for img in imgs:
        alt = re.search(r'\balt="([^"]*)"', img)
        assert alt and alt.group(1).strip()
        assert 'src="data:image/png;base64,' in img
    assert "Information sharing 8" in rendered.html
    assert "not drawn" in rendered.html


def test_outlook_friendly_html(rendered):
    html = rendered.html
    assert "<caption" in html and 'scope="row"' in html and "<h1" in html and "<h2" in html
    assert "<style" not in html and "<link" not in html and "http://" not in html and "https://" not in html
    assert html.count("<table") == html.count("<caption") + 1  # every data table has a caption


def test_render_is_deterministic(rendered, summary, cfg):
    again = render_bulletin(json.loads(json.dumps(summary)), cfg, rendered.audience)
    assert again == rendered
    assert len(rendered.content_hash) == 64


def test_text_part_carries_the_headlines(rendered):
    # The headlines (kept to say what an update changed) are the In numbers figures; the text part
    # shows each figure the HTML shows.
    assert len(rendered.headlines) >= 10  # activity, conversion, timeliness, overdue actions, briefings
    for label, cells, _ in next(t for t in rendered.tables if t.sheet == "In numbers").rows:
        assert re.search(re.escape(label) + r".*" + r".*".join(map(re.escape, cells)), rendered.text)
    assert rendered.subject.endswith("June 2024")


def test_partnership_page(summary, cfg):
    out = render_bulletin(summary, cfg, "knowsley")
    assert out.subject == "Knowsley practice review learning bulletin: June 2024"
    # Over the 12 months: June's 12 and Knowsley's May one (KN3).
    assert {"label": "Serious incident notifications to the Panel, 12 months to 30 June 2024",
            "value": "c (Merseyside: 13)"} in out.headlines
    assert ">Liverpool<" not in out.html  # other partnerships' rows are not shown
    with pytest.raises(ConfigError):
        render_bulletin(summary, cfg, "halton")


def test_different_figures_change_the_hash(summary, cfg):
    changed = json.loads(json.dumps(summary))
    changed["key_findings"][0]["finding"] = "Another finding."
    assert render_bulletin(changed, cfg).content_hash != render_bulletin(summary, cfg).content_hash


@pytest.mark.parametrize(
    "start, end, expected",
    [
        (date(2024, 6, 1), date(2024, 6, 30), "June 2024"),
        (date(2024, 4, 1), date(2024, 6, 30), "Q1 2024-25 (April to June 2024)"),
        (date(2025, 1, 1), date(2025, 3, 31), "Q4 2024-25 (January to March 2025)"),
        (date(2024, 4, 1), date(2025, 3, 31), "2024-25 (April 2024 to March 2025)"),
        (date(2024, 1, 1), date(2024, 12, 31), "2024"),
        (date(2024, 2, 1), date(2024, 3, 31), "February to March 2024"),
        (date(2024, 11, 1), date(2025, 2, 28), "November 2024 to February 2025"),
        (date(2024, 6, 3), date(2024, 6, 16), "3 June 2024 to 16 June 2024"),
    ],
)
def test_period_label(start, end, expected):
    assert period_label(start, end) == expected


def test_timeliness_trend_skipping_old_cases_matches_judging_every_case(tmp_path, cfg, monkeypatch):
    """The trend reads only cases that may be due in its periods: the same counts as reading all."""
    import random
    from datetime import timedelta

    from sqlalchemy import true as sa_true

    from reviews.learning import summary as summary_module
    from reviews.core.reporting_periods import period_of, trailing_periods

    engine = wh.make_engine("sqlite:///" + str(tmp_path / "trend.db"))
    wh.ensure_schema(engine)
    rnd = random.Random(8)
    codes = list(cfg.partnerships)

    def day(lo=date(2019, 1, 1), span=2200):  # a date, or blank one time in eight
        return None if rnd.random() < 0.125 else lo + timedelta(days=rnd.randrange(span))

    notes, rapids, reviews = [], [], []
    for i in range(900):
        p = rnd.choice(codes)
        aware = day()
        notes.append({**notification(p, f"N{i}", "death", day(aware or date(2019, 1, 1), 60), aware=aware),
                      "incident_date": day()})
        for j in range(rnd.randrange(3)):
            rapids.append({**rapid(p, f"R{i}_{j}", day(aware or date(2019, 1, 1), 120), "lcspr"),
                           "notification_id": f"N{i}" if rnd.random() < 0.9 else f"N{rnd.randrange(900)}"})
        decided = day()
        reviews.append({**review(p, f"P{i}", rnd.choice(["lcspr", "other_review"]), decided,
                                 day(decided or date(2019, 1, 1), 400)),
                        "final_report_sent_date": day(decided or date(2019, 1, 1), 500),
                        "published_date": day(decided or date(2019, 1, 1), 520)})
    with engine.begin() as conn:
        conn.execute(insert(wh.notifications), notes)
        conn.execute(insert(wh.rapid_reviews), rapids)
        conn.execute(insert(wh.practice_reviews), reviews)

    def trend(every_case: bool, end: date) -> dict:
        first = end.replace(day=1)
        periods = trailing_periods(period_of(first, end), 4)
        if every_case:
            monkeypatch.setattr(summary_module, "_may_be_due", lambda t, columns, bound: sa_true())
        else:
            monkeypatch.undo()
        with engine.connect() as conn:
            return summary_module._timeliness_trend(conn, cfg, periods, codes)

    for end in (date(2020, 3, 31), date(2021, 8, 31), date(2023, 1, 31), date(2024, 11, 30), date(2025, 6, 30)):
        bounded = trend(False, end)
        assert bounded and bounded == trend(True, end)
