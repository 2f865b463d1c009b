"""A small hand-made warehouse for the bulletin tests: June 2024 and the three months before it.

Big enough that some counts are published (6 and over) and others suppressed, with a review
published in June 2024 whose free text holds personal details to be redacted (a valid NHS
number, a postcode, an email, a phone number, a date of birth) and markup to be escaped.
"""
from __future__ import annotations

import html as htmllib
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import insert

from reviews.core import warehouse as wh

JUNE = (date(2024, 6, 1), date(2024, 6, 30))
NHS_NUMBER = "943 476 5919"  # passes the modulus-11 check
PII_FINDING = (f"Health records for the baby (NHS {NHS_NUMBER}, born 03/04/2023, living at CH41 5LH) "
               "were not shared; the family's worker (jo.bloggs@example.com, 0151 496 0000) was not told.")
SCRIPT_FINDING = 'Agencies did not share <script>alert("x")</script> concerns & worries about "Dad".'
PUBLISHED_REVIEW = "KNO-R-PUB"

_row = iter(range(1, 1_000_000))


def _lineage() -> dict:
    return {"return_date": date(2024, 7, 10), "source_file_id": 1, "source_row": next(_row), "row_hash": "0" * 64,
            "loaded_at": datetime(2024, 7, 10, 9, 0, tzinfo=timezone.utc)}


def _month(m: int, day: int) -> date:
    return date(2024, m, day)


def build(engine, cfg) -> None:
    """Fill an empty warehouse (schema created here) and judge timeliness as of 30 June 2024."""
    from reviews.timeliness.run import run_timeliness

    wh.ensure_schema(engine)
    with engine.begin() as conn:  # each partnership's April-to-June return, in on its due date
        conn.execute(insert(wh.return_files), [
            {"partnership_code": code, "file_name": "notifications_2024-07-10.csv", "sha256": f"{i:064x}",
             "size_bytes": 1, "return_date": date(2024, 7, 10), "received_at": datetime(2024, 7, 10, 9, tzinfo=timezone.utc),
             "raw_path": "raw", "status": "loaded"} for i, code in enumerate(cfg.partnerships, 1)])
    notifications, rapid, reviews, learning = [], [], [], []
    volumes = {"knowsley": 3, "liverpool": 4, "sefton": 1, "st_helens": 2, "wirral": 1}
    types = ["death", "serious_harm", "serious_harm", "other"]
    n = 0
    for m in (3, 4, 5, 6):
        for code, per in volumes.items():
            for i in range(per * 2):
                n += 1
                aware = _month(m, 1 + (i * 3) % 26)
                late = (i % 4 == 3)
                nid = f"{code[:3].upper()}-N-{m}-{i}"
                notifications.append({
                    "partnership_code": code, "notification_id": nid, "child_key": f"{n:064x}",
                    "incident_date": aware - timedelta(days=1), "aware_date": aware,
                    "notified_date": aware + timedelta(days=9 if late else 3),
                    "incident_type": types[i % 4], "age_years": i % 17, **_lineage(),
                })
                rapid.append({
                    "partnership_code": code, "rapid_review_id": f"{nid}-RR", "notification_id": nid,
                    "completed_date": aware + timedelta(days=18 if i % 3 == 0 else 12),
                    "outcome": ["lcspr", "no_further_review", "lcspr", "national_review_recommended"][i % 4]
                    if i % 5 else "lcspr",
                    "panel_response_date": None, "panel_decision": None, **_lineage(),
                })
    themes = ["information_sharing", "voice_of_child", "neglect", "domestic_abuse", "professional_curiosity"]
    r = 0
    for m in (3, 4, 5, 6):
        for code in ("knowsley", "liverpool", "st_helens", "wirral"):
            r += 1
            rid = f"{code[:3].upper()}-R-{r:03d}"
            completed = _month(m, 10 + r % 15)
            reviews.append({
                "partnership_code": code, "review_id": rid, "notification_id": None,
                "review_type": "lcspr" if r % 3 else "local_multi_agency", "decision_date": completed - timedelta(days=170),
                "author": "Independent reviewer A (regional list)", "methodology": "Systems approach (Learning Together)",
                "completed_date": completed, "final_report_sent_date": None, "published_date": None,
                "status": "completed", **_lineage(),
            })
            for k in range(3):
                theme = themes[(r + k) % len(themes)]
                due = completed + timedelta(days=30 + 20 * k)
                done = due - timedelta(days=5) if k == 0 else None
                learning.append({
                    "partnership_code": code, "finding_id": f"{rid}-F{k}", "review_id": rid, "theme": theme,
                    "finding": f"Practice on {theme.replace('_', ' ')} was inconsistent.",
                    "recommendation": f"Partners should agree guidance on {theme.replace('_', ' ')}.",
                    "owner_agency": "health", "action_due_date": due,
                    "action_status": "completed" if done else ("in_progress" if k == 1 else "open"),
                    "action_completed_date": done, **_lineage(),
                })
    # Decided in June: several, so the June table has a publishable total.
    for i in range(7):
        code = ["knowsley", "liverpool", "liverpool", "sefton", "wirral", "liverpool", "knowsley"][i]
        reviews.append({
            "partnership_code": code, "review_id": f"{code[:3].upper()}-R-D{i}", "notification_id": None,
            "review_type": "lcspr", "decision_date": _month(6, 3 + i * 3), "author": None, "methodology": None,
            "completed_date": None, "final_report_sent_date": None, "published_date": None,
            "status": "commissioned", **_lineage(),
        })
    # The review published in June 2024, with personal details in its free text.
    reviews.append({
        "partnership_code": "knowsley", "review_id": PUBLISHED_REVIEW, "notification_id": None, "review_type": "lcspr",
        "decision_date": date(2023, 9, 1), "author": "Independent reviewer B (regional list)",
        "methodology": "Significant Incident Learning Process (SILP)", "completed_date": date(2024, 2, 20),
        "final_report_sent_date": date(2024, 6, 3), "published_date": date(2024, 6, 17), "status": "published",
        **_lineage(),
    })
    for k, (theme, text, rec) in enumerate([
        ("information_sharing", PII_FINDING, "Health and children's social care should share records at birth."),
        ("voice_of_child", SCRIPT_FINDING, "=HYPERLINK(\"http://evil\") should never run in Excel."),
        ("sudi_safer_sleep", "Safer sleep advice was given once and not revisited.",
         "Health visitors should repeat safer sleep advice at each contact."),
    ]):
        learning.append({
            "partnership_code": "knowsley", "finding_id": f"{PUBLISHED_REVIEW}-F{k}", "review_id": PUBLISHED_REVIEW,
            "theme": theme, "finding": text, "recommendation": rec, "owner_agency": "health",
            "action_due_date": date(2024, 5, 31) if k == 0 else date(2024, 9, 30),
            "action_status": "open" if k == 0 else "in_progress", "action_completed_date": None, **_lineage(),
        })
    with engine.begin() as conn:
        conn.execute(insert(wh.notifications), notifications)
        conn.execute(insert(wh.rapid_reviews), rapid)
        conn.execute(insert(wh.practice_reviews), reviews)
        conn.execute(insert(wh.learning), learning)
    run_timeliness(engine, cfg, JUNE[1])


def monthly_config(folder) -> Path:
    """The project's config with monthly returns and bulletins (June 2024 is then a period of its
    own), written under `folder`: due 10 days after the month, sent from working day 15."""
    import yaml

    root = Path(__file__).resolve().parents[1]
    raw = yaml.safe_load((root / "config" / "reviews.yaml").read_text(encoding="utf-8"))
    raw["summary"]["period"] = "month"
    raw["returns"]["frequency"] = "monthly"
    path = Path(folder) / "reviews-monthly.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


# --- realistic volumes ---------------------------------------------------------------------------
# Single-digit serious cases a year per partnership (about 3; Liverpool about 6: docs/domain.md),
# over five years, for the tests of what a reader sees at real volumes (issue 17). Seeded, so the
# same warehouse every time. Q1 2026-27 (April to June 2026) has a national review published (the
# Panel's) and a published review with no findings recorded (its briefing is withheld).
REALISTIC_QUARTER = (date(2026, 4, 1), date(2026, 6, 30))
REALISTIC_PER_YEAR = {"knowsley": 3, "liverpool": 6, "sefton": 3, "st_helens": 3, "wirral": 3}
NATIONAL_REVIEW = "LIV-NAT-1"
NO_FINDINGS_REVIEW = "SEF-R-EMPTY"
_THEMES = ("information_sharing", "voice_of_child", "neglect", "domestic_abuse", "professional_curiosity",
           "risk_assessment", "multi_agency_working", "parental_mental_health", "parental_substance_misuse",
           "extrafamilial_harm", "sudi_safer_sleep", "escalation")
_AGENCIES = ("Health", "Children's social care", "Police", "Education", "Adult social care")


def build_realistic(engine, cfg, end: date = REALISTIC_QUARTER[1], years: int = 5, seed: int = 17) -> None:
    """Fill an empty warehouse with `years` of realistic volumes up to `end`; judge timeliness then."""
    import random

    from reviews.timeliness.run import run_timeliness

    rng = random.Random(seed)
    wh.ensure_schema(engine)
    due = date(end.year, end.month, 10) + timedelta(days=31)  # the quarter's return, in on time
    due = date(due.year, due.month, 10)
    with engine.begin() as conn:
        conn.execute(insert(wh.return_files), [
            {"partnership_code": code, "file_name": f"notifications_{due}.csv", "sha256": f"{i:064x}",
             "size_bytes": 1, "return_date": due, "received_at": datetime(due.year, due.month, due.day, 9, tzinfo=timezone.utc),
             "raw_path": "raw", "status": "loaded"} for i, code in enumerate(cfg.partnerships, 1)])
    first = date(end.year - years, end.month, 1) + timedelta(days=31)
    first = date(first.year, first.month, 1)
    notifications, rapid, reviews, learning = [], [], [], []
    n = 0

    def add_learning(code: str, rid: str, completed: date, k_max: int) -> None:
        for k in range(k_max):
            theme = rng.choice(_THEMES)
            due_by = completed + timedelta(days=rng.randint(60, 300))
            if due_by < end - timedelta(days=30) and rng.random() < 0.7:
                status, done = "completed", due_by - timedelta(days=rng.randint(0, 40))
            else:
                status, done = rng.choice(["open", "in_progress"]), None
            learning.append({
                "partnership_code": code, "finding_id": f"{rid}-F{k}", "review_id": rid, "theme": theme,
                "finding": f"Practice on {theme.replace('_', ' ')} did not keep the child in view (review {rid}).",
                "recommendation": f"Partners should review how they work on {theme.replace('_', ' ')}.",
                "owner_agency": rng.choice(_AGENCIES), "action_due_date": due_by, "action_status": status,
                "action_completed_date": done, **_lineage(),
            })

    for code, per_year in REALISTIC_PER_YEAR.items():
        for y in range(years):
            start_y = date(first.year + y, first.month, 1)
            for i in range(max(1, per_year + rng.randint(-1, 1))):
                aware = start_y + timedelta(days=rng.randint(0, 364))
                if aware > end - timedelta(days=5):
                    continue
                n += 1
                nid = f"{code[:3].upper()}-N{y}{i:02d}"
                late = rng.random() < 0.15
                notifications.append({
                    "partnership_code": code, "notification_id": nid, "child_key": f"{n:064x}",
                    "incident_date": aware - timedelta(days=rng.randint(0, 3)), "aware_date": aware,
                    "notified_date": aware + timedelta(days=rng.randint(6, 12) if late else rng.randint(1, 5)),
                    "incident_type": rng.choices(["death", "serious_harm", "other"], [4, 5, 1])[0],
                    "age_years": rng.randint(0, 17), **_lineage(),
                })
                rr_done = aware + timedelta(days=rng.randint(14, 20) if rng.random() < 0.85 else rng.randint(25, 40))
                if rr_done > end:
                    continue
                outcome = rng.choices(["lcspr", "no_further_review", "other_review", "national_review_recommended"],
                                      [35, 45, 12, 8])[0]
                rapid.append({
                    "partnership_code": code, "rapid_review_id": f"{nid}-RR", "notification_id": nid,
                    "completed_date": rr_done, "outcome": outcome, "panel_response_date": None,
                    "panel_decision": None, **_lineage(),
                })
                if outcome != "lcspr":
                    continue
                rid = f"{code[:3].upper()}-R{y}{i:02d}"
                decided = rr_done + timedelta(days=rng.randint(5, 20))
                completed = decided + timedelta(days=rng.randint(150, 330))
                published = completed + timedelta(days=rng.randint(50, 110))
                reviews.append({
                    "partnership_code": code, "review_id": rid, "notification_id": nid, "review_type": "lcspr",
                    "decision_date": decided, "author": "Independent reviewer (regional list)",
                    "methodology": "Systems approach", "completed_date": completed if completed <= end else None,
                    "final_report_sent_date": published - timedelta(days=10) if published <= end else None,
                    "published_date": published if published <= end else None,
                    "status": "published" if published <= end else ("completed" if completed <= end else "in_progress"),
                    **_lineage(),
                })
                if completed <= end:
                    add_learning(code, rid, completed, rng.randint(3, 5))
    q_start = REALISTIC_QUARTER[0] if end == REALISTIC_QUARTER[1] else end - timedelta(days=60)
    for code, rid, kind, k in (("liverpool", NATIONAL_REVIEW, "national", 4), ("sefton", NO_FINDINGS_REVIEW, "lcspr", 0)):
        completed = q_start - timedelta(days=70)
        reviews.append({
            "partnership_code": code, "review_id": rid, "notification_id": None, "review_type": kind,
            "decision_date": completed - timedelta(days=300), "author": "Reviewer (Panel's list)",
            "methodology": "Rapid appraisal", "completed_date": completed,
            "final_report_sent_date": q_start + timedelta(days=10), "published_date": q_start + timedelta(days=30),
            "status": "published", **_lineage(),
        })
        add_learning(code, rid, completed, k)
    with engine.begin() as conn:
        conn.execute(insert(wh.notifications), notifications)
        conn.execute(insert(wh.rapid_reviews), rapid)
        conn.execute(insert(wh.practice_reviews), reviews)
        conn.execute(insert(wh.learning), learning)
    run_timeliness(engine, cfg, end)


FIGURE = re.compile(r"\d+%?|c|none due")


def published_figures(html: str) -> list[str]:
    """Every figure a bulletin's HTML publishes: table cells and the bold figures of its lists."""
    cells = re.findall(r"<td[^>]*>(.*?)</td>", html, re.S) + re.findall(r"<strong>(.*?)</strong>", html, re.S)
    return [v for v in (htmllib.unescape(c).strip() for c in cells) if FIGURE.fullmatch(v)]


def built_bulletins(root: Path, fill, period: tuple[date, date]):
    """A fresh SQLite warehouse under `root` filled by `fill(engine, cfg)`, and the period's
    bulletins built from it with the project's config (PDFs printed by headless Chromium, which
    the browser tests need): (folder, build report, engine, cfg)."""
    from reviews.core.config import load_config
    from reviews.core.warehouse import make_engine
    from reviews.learning.browser import chromium_available
    from reviews.learning.publication import build_period

    if not chromium_available():
        raise RuntimeError("headless Chromium is needed (apt-get install chromium; `make test` installs it)")
    cfg = load_config()
    engine = make_engine(f"sqlite:///{root / 'w.db'}")
    fill(engine, cfg)
    report = build_period(engine, cfg, *period, period[1], root / "out")
    return Path(report.folder), report, engine, cfg
