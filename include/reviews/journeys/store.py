"""The `case_journeys` partition of a day: built, replaced whole, read back.

`run_journeys` is what the `statutory_timeliness.journeys` task calls after `judge`: it deletes
and rewrites the rows of its as-of date in one transaction, so a rerun (or a backfill) leaves the
same table, and returns counts only (they go to XCom and the log).
"""
from __future__ import annotations

from collections import Counter
from datetime import date

from sqlalchemy import Engine, func, select

from reviews.core import warehouse as wh
from reviews.core.config import Config
from reviews.journeys.build import build_journeys
from reviews.journeys.model import Journey

CHUNK = 20_000


def write_journeys(engine: Engine, as_of: date, journeys: list[Journey]) -> None:
    rows = [j.to_row() for j in journeys]
    with engine.begin() as conn:
        conn.execute(wh.case_journeys.delete().where(wh.case_journeys.c.as_of_date == as_of))
        for i in range(0, len(rows), CHUNK):
            wh.insert_rows(conn, wh.case_journeys, rows[i:i + CHUNK])


def run_journeys(engine: Engine, cfg: Config, as_of: date) -> tuple[list[Journey], dict]:
    """Build and store the journeys as of `as_of` (after timeliness was judged as of it); return
    them and a summary of counts: cases, open, by current stage, findings by kind, flagged, rejected."""
    journeys = build_journeys(engine, cfg, as_of)
    write_journeys(engine, as_of, journeys)
    return journeys, summarise(journeys)


def summarise(journeys: list[Journey]) -> dict:
    findings = Counter(f.split(":", 1)[0] for j in journeys for f in j.findings)
    stages = Counter(j.current().stage for j in journeys if j.current() is not None)
    return {"cases": len(journeys),
            "open": sum(1 for j in journeys if j.current() is not None),
            "at_stage": dict(sorted(stages.items())), "findings": dict(sorted(findings.items())),
            "cases_with_findings": sum(1 for j in journeys if j.findings),
            "cases_flagged": sum(1 for j in journeys if j.flags), "cases_with_rejected_rows": sum(1 for j in journeys if j.rejected)}


def latest_as_of(conn, on_or_before: date) -> date | None:
    """The newest journeys partition on or before a day (the tracker shows it)."""
    c = wh.case_journeys.c
    return conn.execute(select(func.max(c.as_of_date)).where(c.as_of_date <= on_or_before)).scalar()
