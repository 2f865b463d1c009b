"""Judge timeliness as of a date and store it: idempotent over its `as_of` partition.

The `statutory_timeliness` DAG task calls this with an engine and plain values; the rules
themselves are in `reviews.timeliness.compute`.
"""
from __future__ import annotations

import hashlib
import json
import logging
from datetime import date
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, func, select

from reviews.core import warehouse as wh
from reviews.core.audit import audit_now
from reviews.core.config import Config

log = logging.getLogger(__name__)


def _read_cases(conn, table, columns=None) -> pd.DataFrame:
    """A case table in key order (primary key), dates as datetime64: what compute_timeliness
    takes fastest (in-order input is checked, not sorted again). `columns`: only these (and
    partnership_code): at national scale the whole table is several times the memory."""
    keys = [c for c in table.primary_key.columns]
    wanted = [table.c.partnership_code, *(table.c[c] for c in columns if c != "partnership_code")] if columns else [table]
    dates = [c.name for c in table.columns if c.name.endswith("_date") and (not columns or c.name in columns)]
    return pd.read_sql(select(*wanted).order_by(*keys), conn, parse_dates=dates)


TIMELINESS_CHUNK = 50_000  # rows turned into records and inserted at a time


def read_current_flags(conn) -> pd.DataFrame:
    """The current flags (row_flags not superseded by a later return's row for the record), as
    compute_timeliness takes them (FLAG_INPUT_COLUMNS), in a fixed order (they are hashed)."""
    from reviews.timeliness.compute import FLAG_INPUT_COLUMNS

    f = wh.row_flags.c
    query = (select(*(f[c] for c in FLAG_INPUT_COLUMNS)).where(f.superseded_by_file_id.is_(None))
             .order_by(f.partnership_code, f.dataset, f.record_id, f.file_id, f.row_number, f.rule_id))
    return pd.DataFrame(conn.execute(query).all(), columns=list(FLAG_INPUT_COLUMNS))


def run_timeliness(engine: Engine, cfg: Config, as_of: date) -> dict[str, dict[str, int]]:
    """Replace the `timeliness` partition for `as_of` with a fresh judgement; return counts.

    Reads only the columns the clocks use (and the current row_flags: a stage that reads a cell
    a return got wrong is `unknown`, with the flag in its reason), and writes the rows a chunk at
    a time (COPY on PostgreSQL), so the records of a million cases are never all in memory at
    once. A rerun whose inputs are what the partition was judged from (the same case columns,
    flags, config and rules: see `_judgement_digest`) keeps the partition and returns its stored
    counts: a rerun with no new returns costs the reading, not the judging and writing; a new
    flag, or one a later return superseded, judges again.
    """
    from reviews.timeliness.compute import (
        NOTIFICATION_COLUMNS,
        PRACTICE_REVIEW_COLUMNS,
        RAPID_REVIEW_COLUMNS,
        compute_timeliness,
    )

    # rapid_review_id: the key a rapid review's flags name
    needed = {"notifications": NOTIFICATION_COLUMNS, "rapid_reviews": ("rapid_review_id", *RAPID_REVIEW_COLUMNS),
              "practice_reviews": PRACTICE_REVIEW_COLUMNS}
    with engine.connect() as conn:
        frames = {name: _read_cases(conn, wh.CASE_TABLES[name], cols) for name, cols in needed.items()}
        frames["row_flags"] = read_current_flags(conn)
        digest = _judgement_digest(frames, cfg, as_of)
        kept = _kept_judgement(conn, as_of, digest)
    if kept is not None:
        log.info("timeliness as of %s: inputs unchanged since it was judged; kept", as_of)
        return kept
    result = compute_timeliness(frames["notifications"], frames["rapid_reviews"], frames["practice_reviews"], cfg, as_of,
                                flags=frames["row_flags"])
    del frames
    # Counts per stage and status, in order of first appearance (as counting row by row gives them).
    pairs = pd.DataFrame({"stage": result["stage"].astype(object), "status": result["status"].astype(object)})
    counts: dict[str, dict[str, int]] = {}
    for (stage, status), n in pairs.groupby(["stage", "status"], sort=False).size().items():
        counts.setdefault(stage, {})[status] = int(n)
    with engine.begin() as conn:
        conn.execute(wh.timeliness.delete().where(wh.timeliness.c.as_of_date == as_of))
        conn.execute(wh.timeliness_runs.delete().where(wh.timeliness_runs.c.as_of_date == as_of))
        for i in range(0, len(result), TIMELINESS_CHUNK):
            wh.insert_frame(conn, wh.timeliness, result.iloc[i : i + TIMELINESS_CHUNK])
        conn.execute(wh.timeliness_runs.insert().values(
            as_of_date=as_of, inputs_digest=digest, rows=len(result), counts_json=json.dumps(counts),
            judged_at=audit_now()))
    return counts


def _judgement_digest(frames: dict[str, pd.DataFrame], cfg: Config, as_of: date) -> str:
    """A hash of everything a judgement as of `as_of` depends on: the case columns it reads (every
    value, in key order), the current flags, the config (rule sets, calendars, thresholds, at-risk
    windows) and the code of the rules."""
    import reviews.timeliness.compute as rules
    import reviews.core.working_days as calendar

    h = hashlib.sha256(f"{as_of.isoformat()}\n{cfg!r}\n".encode())
    for module in (rules, calendar):
        h.update(Path(module.__file__).read_bytes())
    for name in sorted(frames):
        frame = frames[name]
        h.update(f"{name}:{len(frame)}:{','.join(frame.columns)}\n".encode())
        h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


def _kept_judgement(conn, as_of: date, digest: str) -> dict[str, dict[str, int]] | None:
    """The stored counts when the partition for `as_of` was judged from the same inputs and is whole."""
    runs = wh.timeliness_runs.c
    row = conn.execute(select(runs.inputs_digest, runs.rows, runs.counts_json).where(runs.as_of_date == as_of)).first()
    if row is None or row.inputs_digest != digest:
        return None
    stored = conn.execute(select(func.count()).select_from(wh.timeliness)
                          .where(wh.timeliness.c.as_of_date == as_of)).scalar_one()
    return json.loads(row.counts_json) if stored == row.rows else None
