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


def run_timeliness(engine: Engine, cfg: Config, as_of: date) -> dict[str, dict[str, int]]:
    """Replace the `timeliness` partition for `as_of` with a fresh judgement; return counts."""
    from reviews.timeliness import compute_timeliness

    with engine.connect() as conn:
        frames = {name: read_table(conn, wh.CASE_TABLES[name]) for name in ("notifications", "rapid_reviews", "practice_reviews")}
    result = compute_timeliness(frames["notifications"], frames["rapid_reviews"], frames["practice_reviews"], cfg, as_of)
    rows = result.astype(object).where(result.notna(), None).to_dict(orient="records")
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
    reruns and backfills add nothing; changed content becomes a new version.
    """
    from reviews.bulletin import render_bulletin
    from reviews.summary import compile_summary

    summary = compile_summary(engine, cfg, period_start, period_end, as_of)
    folder = Path(out_dir) / f"{period_start.isoformat()}_{period_end.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    built = []
    for audience in ["region", *cfg.partnerships]:
        rendered = render_bulletin(summary, cfg, audience)
        with engine.begin() as conn:
            b = wh.bulletins.c
            latest = conn.execute(
                select(b.bulletin_id, b.version, b.content_hash)
                .where(b.period_start == period_start, b.period_end == period_end, b.audience == audience)
                .order_by(b.version.desc())
                .limit(1)
            ).first()
            if latest is not None and latest.content_hash == rendered.content_hash:
                built.append({"bulletin_id": latest.bulletin_id, "audience": audience, "version": latest.version, "new": False})
                continue
            version = (latest.version + 1) if latest is not None else 1
            html_path = folder / f"{audience}_v{version}.html"
            html_path.write_text(rendered.html, encoding="utf-8")
            html_path.with_suffix(".txt").write_text(rendered.text, encoding="utf-8")
            bulletin_id = conn.execute(
                insert(wh.bulletins).returning(b.bulletin_id),
                {
                    "period_start": period_start, "period_end": period_end, "audience": audience,
                    "version": version, "content_hash": rendered.content_hash, "path": str(html_path),
                    "subject": rendered.subject, "built_at": audit_now(),
                },
            ).scalar_one()
            built.append({"bulletin_id": bulletin_id, "audience": audience, "version": version, "new": True})
    return built


def bulletin_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(wh.bulletins)).scalar_one()
