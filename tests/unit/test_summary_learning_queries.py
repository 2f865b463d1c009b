"""summary's learning queries (one grouped pass for the theme counts; the period's reviews picked
before their learning) against the straightforward reading: every learning row joined to its
review in Python, on varied rows (blank themes and dates, dates on the periods' edges, reviews
of unknown partnerships, learning without a review)."""
from __future__ import annotations

import random
from datetime import date, datetime, timezone

import pytest
import sqlalchemy as sa

from reviews.learning import summary as sm
from reviews.core import warehouse as wh
from reviews.core.reporting_periods import period_of, trailing_periods

CODES = ["p1", "p2", "p3"]
PERIOD = period_of(date(2025, 9, 1), date(2025, 9, 30))
TREND = trailing_periods(PERIOD, 4)
THEMES = [None, "neglect", "voice_of_child", "odd theme \u00e9"]
EDGES = [None, date(2025, 5, 31), date(2025, 6, 1), date(2025, 6, 30), date(2025, 7, 31), date(2025, 8, 1),
         date(2025, 8, 31), date(2025, 9, 1), date(2025, 9, 30), date(2025, 10, 1), date(2019, 2, 3)]


def _lineage(i: int) -> dict:
    return {"return_date": date(2025, 10, 1), "source_file_id": 1, "source_row": i, "row_hash": f"{i:064d}",
            "loaded_at": datetime(2025, 10, 1, tzinfo=timezone.utc)}


def _row(table: sa.Table, values: dict, i: int) -> dict:
    """A row with every column filled: the given values, else blank (child_key is never blank)."""
    out = {c.name: None for c in table.columns}
    out.update(_lineage(i), child_key="k" * 64)
    out.update(values)
    return {k: v for k, v in out.items() if k in table.c}


@pytest.fixture
def warehouse(tmp_path):
    rng = random.Random(8)
    engine = wh.make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    wh.ensure_schema(engine)
    reviews, learning = [], []
    for code in [*CODES, "not_in_config"]:
        for r in range(40):
            done = rng.choice(EDGES)
            published = rng.choice(EDGES + [date(2025, 9, 15)] * 3)
            reviews.append(_row(wh.practice_reviews, {"partnership_code": code, "review_id": f"R{r}",
                                                      "completed_date": done, "published_date": published,
                                                      "decision_date": date(2025, 1, 1)}, len(reviews)))
        for f in range(300):
            review = f"R{rng.randrange(45)}"  # some have no review row
            learning.append(_row(wh.learning, {
                "partnership_code": code, "finding_id": f"F{f}", "review_id": review, "theme": rng.choice(THEMES),
                "finding": rng.choice(["", "  ", "A finding", None, "=cmd|' /C calc'!A0"]),
                "recommendation": rng.choice(["", "Do better", None]),
                "action_status": rng.choice([None, "open", "completed"]),
                "action_due_date": rng.choice(EDGES), "action_completed_date": rng.choice(EDGES),
            }, len(learning)))
    with engine.begin() as conn:
        conn.execute(sa.insert(wh.practice_reviews), reviews)
        conn.execute(sa.insert(wh.learning), learning)
    return engine


def _joined(engine) -> list[dict]:
    """Every learning row of a configured partnership with its review's dates (inner join, in Python)."""
    with engine.connect() as conn:
        reviews = {(r.partnership_code, r.review_id): r for r in conn.execute(sa.select(wh.practice_reviews))}
        rows = [dict(x._mapping) for x in conn.execute(sa.select(wh.learning))]
    out = []
    for x in rows:
        r = reviews.get((x["partnership_code"], x["review_id"]))
        if r is not None and x["partnership_code"] in CODES:
            out.append({**x, "completed_date": r.completed_date, "published_date": r.published_date})
    return out


def test_theme_counts_match_a_row_by_row_count(warehouse):
    to_date, period, by_period = {}, {}, {}
    for x in _joined(warehouse):
        done, key = x["completed_date"], (x["partnership_code"], x["theme"])
        if x["theme"] is None or done is None:
            continue
        if done <= PERIOD.end:
            to_date[key] = to_date.get(key, 0) + 1
        if PERIOD.start <= done <= PERIOD.end:
            period[key] = period.get(key, 0) + 1
        if TREND[0].start <= done <= TREND[-1].end:
            counts = by_period.setdefault(key, [0] * len(TREND))
            for k, p in enumerate(TREND):
                counts[k] += p.start <= done <= p.end
    with warehouse.connect() as conn:
        got = sm._theme_counts(conn, PERIOD.start, PERIOD.end, TREND, CODES)
    assert got == (to_date, period, by_period)
    assert to_date and period and by_period and any(len(v) > 1 and v[0] != v[-1] for v in by_period.values())


@pytest.mark.parametrize("column", ["completed_date", "published_date"])
def test_learning_of_the_periods_reviews_is_the_joined_rows(warehouse, column):
    lr, pr = wh.learning, wh.practice_reviews
    want = sorted((x["partnership_code"], x["finding_id"]) for x in _joined(warehouse)
                  if x[column] is not None and PERIOD.start <= x[column] <= PERIOD.end)
    with warehouse.connect() as conn:
        got = sorted(tuple(r) for r in conn.execute(
            sa.select(lr.c.partnership_code, lr.c.finding_id)
            .where(sm._learning_of_reviews(sm._in_period(pr.c[column], PERIOD.start, PERIOD.end), CODES))))
    assert got == want and want


def test_by_code_splits_and_keeps_the_region():
    counts = {("a", "x"): 1, ("b", "x"): 2, ("a", "y"): 3}
    split = sm._by_code(counts)
    assert split == {None: counts, "a": {("a", "x"): 1, ("a", "y"): 3}, "b": {("b", "x"): 2}}
    assert sm._themes(split, sm._by_code({("a", "y"): 1}), "a") == [
        {"theme": "y", "label": "Y", "to_date": 3, "period": 1}, {"theme": "x", "label": "X", "to_date": 1, "period": 0}]
    assert sm._themes(split, {}, "zzz") == []


def test_trend_ending_after_the_period_is_refused(warehouse):
    later = trailing_periods(period_of(date(2025, 10, 1), date(2025, 10, 31)), 2)
    with warehouse.connect() as conn, pytest.raises(ValueError, match="after the period"):
        sm._theme_counts(conn, PERIOD.start, PERIOD.end, later, CODES)
