"""The steps after ingest, each idempotent over its partition: judge timeliness as of a date,
build the bulletins of a period. DAG tasks call these; they take an engine and plain values.
"""
from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, func, select

from reviews import warehouse as wh
from reviews.audit import audit_now
from reviews.config import Config

log = logging.getLogger(__name__)


def read_table(conn, table) -> pd.DataFrame:
    return pd.read_sql(select(table), conn)


def _read_cases(conn, table, columns=None) -> pd.DataFrame:
    """A case table in key order (primary key), dates as datetime64: what compute_timeliness
    takes fastest (in-order input is checked, not sorted again). `columns`: only these (and
    partnership_code): at national scale the whole table is several times the memory."""
    keys = [c for c in table.primary_key.columns]
    wanted = [table.c.partnership_code, *(table.c[c] for c in columns if c != "partnership_code")] if columns else [table]
    dates = [c.name for c in table.columns if c.name.endswith("_date") and (not columns or c.name in columns)]
    return pd.read_sql(select(*wanted).order_by(*keys), conn, parse_dates=dates)


TIMELINESS_CHUNK = 50_000  # rows turned into records and inserted at a time


def run_timeliness(engine: Engine, cfg: Config, as_of: date) -> dict[str, dict[str, int]]:
    """Replace the `timeliness` partition for `as_of` with a fresh judgement; return counts.

    Reads only the columns the clocks use, and writes the rows a chunk at a time (COPY on
    PostgreSQL), so the records of a million cases are never all in memory at once.
    """
    from reviews.timeliness import (
        NOTIFICATION_COLUMNS,
        PRACTICE_REVIEW_COLUMNS,
        RAPID_REVIEW_COLUMNS,
        compute_timeliness,
        to_records,
    )

    needed = {"notifications": NOTIFICATION_COLUMNS, "rapid_reviews": RAPID_REVIEW_COLUMNS,
              "practice_reviews": PRACTICE_REVIEW_COLUMNS}
    with engine.connect() as conn:
        frames = {name: _read_cases(conn, wh.CASE_TABLES[name], cols) for name, cols in needed.items()}
    result = compute_timeliness(frames["notifications"], frames["rapid_reviews"], frames["practice_reviews"], cfg, as_of)
    del frames
    with engine.begin() as conn:
        conn.execute(wh.timeliness.delete().where(wh.timeliness.c.as_of_date == as_of))
        for i in range(0, len(result), TIMELINESS_CHUNK):
            wh.insert_rows(conn, wh.timeliness, to_records(result.iloc[i : i + TIMELINESS_CHUNK]))
    # Counts per stage and status, in order of first appearance (as counting row by row gives them).
    pairs = pd.DataFrame({"stage": result["stage"].astype(object), "status": result["status"].astype(object)})
    counts: dict[str, dict[str, int]] = {}
    for (stage, status), n in pairs.groupby(["stage", "status"], sort=False).size().items():
        counts.setdefault(stage, {})[status] = int(n)
    return counts


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
