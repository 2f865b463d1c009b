"""Hand-made case rows over five financial years (2020-21 to 2024-25) for the yearly report tests.

Every row is written out by a small rule, so the tests can count the expected figures from the
same lists without the warehouse (`ROWS`). Volumes vary by partnership and year so that some
counts are published (6 and over) and others suppressed, and the Panel's decisions and the
children's characteristics spread over every category, blank included.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from sqlalchemy import insert

from reviews.core import warehouse as wh

YEAR_ENDS = (2021, 2022, 2023, 2024, 2025)  # 2020-21 ... 2024-25
VOLUMES = {"knowsley": 3, "liverpool": 8, "sefton": 2, "st_helens": 4, "wirral": 6}
TYPES = ("death", "serious_harm", "serious_harm", "other")
OUTCOMES = ("lcspr", "no_further_review", "lcspr", "other_review", "national_review_recommended")
DECISIONS = ("agree", "agree", "disagree", "national_review", None)
SEXES = ("female", "male", "male", "unknown", None)
ETHNICITIES = ("White British", "Mixed", "Asian or Asian British", "Black or Black British", "Other ethnic group",
               "Not recorded", None, "White Other")
YES_NO = ("Y", "N", "N", "unknown", None)
THEMES = ("information_sharing", "neglect", "domestic_abuse", "voice_of_child")

_row = iter(range(1, 1_000_000))


def _lineage() -> dict:
    return {"return_date": date(2025, 4, 10), "source_file_id": 1, "source_row": next(_row), "row_hash": "0" * 64,
            "loaded_at": datetime(2025, 4, 10, 9, 0, tzinfo=timezone.utc)}


def rows() -> dict[str, list[dict]]:
    notifications, rapid, reviews, learning = [], [], [], []
    for y in YEAR_ENDS:
        k = YEAR_ENDS.index(y)
        for code, base in VOLUMES.items():
            for i in range(base + k):
                # aware in May to November of the financial year: every clock is due within it
                aware = date(y - 1, 5 + i % 7, 2 + (i * 5) % 20)
                nid = f"{code[:3].upper()}-N-{y}-{i}"
                notifications.append({
                    "partnership_code": code, "notification_id": nid, "child_key": f"{len(notifications):064x}",
                    "incident_date": aware - timedelta(days=1), "aware_date": aware,
                    "notified_date": aware + timedelta(days=9 if i % 3 == 2 else 1),
                    "incident_type": TYPES[i % 4], "age_years": (i * 3 + k) % 18 if i % 9 != 8 else None,
                    "sex": SEXES[i % 5], "ethnicity": ETHNICITIES[i % 8], "disability": "N",
                    "looked_after": YES_NO[(i + 1) % 5], "cp_plan": YES_NO[i % 5], "cin_plan": "N",
                    "known_to_csc": "Y", **_lineage(),
                })
                outcome = OUTCOMES[(i + k) % 5]
                rid = f"{code[:3].upper()}-RR-{y}-{i}"
                rapid.append({
                    "partnership_code": code, "rapid_review_id": rid, "notification_id": nid,
                    "completed_date": aware + timedelta(days=14 if i % 4 else 40), "outcome": outcome,
                    "panel_response_date": aware + timedelta(days=50), "panel_decision": DECISIONS[(i + k) % 5],
                    **_lineage(),
                })
                if outcome == "lcspr":
                    decided = aware + timedelta(days=45)
                    done = decided + timedelta(days=150 if i % 2 else 250)
                    review = f"{code[:3].upper()}-R-{y}-{i}"
                    reviews.append({
                        "partnership_code": code, "review_id": review, "notification_id": nid, "review_type": "lcspr",
                        "decision_date": decided, "author": "Independent reviewer A (regional list)",
                        "methodology": "Systems", "completed_date": done if done.year < 2025 or done.month < 4 else None,
                        "final_report_sent_date": None, "published_date": None,
                        "status": "completed" if done.year < 2025 or done.month < 4 else "in_progress", **_lineage(),
                    })
                    for j in range(2):
                        due = decided + timedelta(days=300 + 100 * j)
                        completed = due - timedelta(days=10) if (i + j) % 3 == 0 else None
                        learning.append({
                            "partnership_code": code, "finding_id": f"{review}-F{j}", "review_id": review,
                            "theme": THEMES[(i + j + k) % 4], "finding": "Agencies did not share what they knew.",
                            "recommendation": "Share concerns.", "owner_agency": "Children's services",
                            "action_due_date": due, "action_status": "completed" if completed else "open",
                            "action_completed_date": completed, **_lineage(),
                        })
        # a national review each year, commissioned by the Panel for Liverpool's area
        reviews.append({
            "partnership_code": "liverpool", "review_id": f"LIV-NAT-{y}", "notification_id": None,
            "review_type": "national", "decision_date": date(y - 1, 9, 1), "author": None, "methodology": None,
            "completed_date": None, "final_report_sent_date": None, "published_date": None, "status": "in_progress",
            **_lineage(),
        })
    return {"notifications": notifications, "rapid_reviews": rapid, "practice_reviews": reviews, "learning": learning}


ROWS = rows()


def build(engine) -> None:
    """An empty warehouse (schema made here) filled with ROWS."""
    wh.ensure_schema(engine)
    with engine.begin() as conn:
        for name in ("notifications", "rapid_reviews", "practice_reviews", "learning"):
            conn.execute(insert(wh.CASE_TABLES[name]), ROWS[name])
