"""The steps after ingest, each idempotent over its partition: judge timeliness as of a date,
build the bulletins of a period. DAG tasks call these; they take an engine and plain values.
"""
from __future__ import annotations

import logging
from collections import Counter
from datetime import date
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, func, insert, select

from reviews import warehouse as wh
from reviews.audit import audit_now
from reviews.config import Config

log = logging.getLogger(__name__)


def read_table(conn, table) -> pd.DataFrame:
    return pd.read_sql(select(table), conn)


def _read_cases(conn, table) -> pd.DataFrame:
    """A case table in key order (primary key), dates as datetime64: what compute_timeliness
    takes fastest (in-order input is checked, not sorted again)."""
    keys = [c for c in table.primary_key.columns]
    dates = [c.name for c in table.columns if c.name.endswith("_date")]
    return pd.read_sql(select(table).order_by(*keys), conn, parse_dates=dates)


def run_timeliness(engine: Engine, cfg: Config, as_of: date) -> dict[str, dict[str, int]]:
    """Replace the `timeliness` partition for `as_of` with a fresh judgement; return counts."""
    from reviews.timeliness import compute_timeliness, to_records

    with engine.connect() as conn:
        frames = {name: _read_cases(conn, wh.CASE_TABLES[name]) for name in ("notifications", "rapid_reviews", "practice_reviews")}
    result = compute_timeliness(frames["notifications"], frames["rapid_reviews"], frames["practice_reviews"], cfg, as_of)
    rows = to_records(result)
    with engine.begin() as conn:
        conn.execute(wh.timeliness.delete().where(wh.timeliness.c.as_of_date == as_of))
        for i in range(0, len(rows), 5000):
            conn.execute(insert(wh.timeliness), rows[i : i + 5000])
    counts: dict[str, Counter] = {}
    for row in rows:
        counts.setdefault(row["stage"], Counter())[row["status"]] += 1
    return {stage: dict(c) for stage, c in counts.items()}


def build_bulletins(
    engine: Engine, cfg: Config, period_start: date, period_end: date, as_of: date, out_dir: Path
) -> list[dict]:
    """Render the regional bulletin and one per partnership; store each new version once.

    A rebuild that renders identical content reuses the stored version (same content hash), so
    reruns and backfills add nothing; changed content becomes a new version. Each version has
    its HTML, text, PDF and XLSX; see reviews.publication for the files and the briefings.
    """
    from reviews.publication import build_period

    return build_period(engine, cfg, period_start, period_end, as_of, out_dir).built


def bulletin_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(wh.bulletins)).scalar_one()
