"""Keep case records no longer than the configured period, except those under a legal hold.

A case is a notification with its rapid reviews, practice reviews and learning (a review below
the LCSPR threshold, with no notification, is a case of its own). Its last date is the latest
date anywhere in it. When that is more than `keep_years` before the run's as-of date, the case
is anonymised (child key and free text removed; dates and codes kept, so past statistics still
add up) or deleted, as configured; its history and quarantined rows go the same way. Raw files
dated before the cut-off are deleted: they hold child references and cannot be partly redacted.
Every action is counted in `retention_log`. Judged as of the run's date, so reruns change nothing.
"""
from __future__ import annotations

import json
import logging
import os
from datetime import date
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, insert, select, tuple_

from reviews.core import warehouse as wh
from reviews.core.audit import audit_now
from reviews.core.config import Config
from reviews.core.template import DATASETS

log = logging.getLogger(__name__)
ANONYMISED = "anonymised"
CHUNK = 500


def cutoff_date(as_of: date, keep_years: int) -> date:
    try:
        return as_of.replace(year=as_of.year - keep_years)
    except ValueError:  # 29 February
        return as_of.replace(year=as_of.year - keep_years, day=28)


def _dates(frame: pd.DataFrame, dataset: str) -> pd.Series:
    cols = [c for c in DATASETS[dataset].of_kind("date") if c in frame]
    if frame.empty or not cols:
        return pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    return frame[cols].apply(pd.to_datetime, errors="coerce").max(axis=1)


def case_last_dates(tables: dict[str, pd.DataFrame]) -> pd.Series:
    """Latest date of each case (index: case id), over every dataset that belongs to it."""
    n, rr, pr, le = (tables[d] for d in ("notifications", "rapid_reviews", "practice_reviews", "learning"))
    parts = [pd.Series(_dates(n, "notifications").values, index=n["notification_id"])]
    parts.append(pd.Series(_dates(rr, "rapid_reviews").values, index=rr["notification_id"]))
    review_case = pr["notification_id"].where(pr["notification_id"].notna() & (pr["notification_id"] != ""), pr["review_id"])
    parts.append(pd.Series(_dates(pr, "practice_reviews").values, index=review_case.values))
    case_of_review = dict(zip(pr["review_id"], review_case))
    parts.append(pd.Series(_dates(le, "learning").values, index=le["review_id"].map(case_of_review).values))
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.Series(dtype="datetime64[ns]")
    allp = pd.concat(parts)
    allp = allp[allp.index.notna()]
    return allp.groupby(level=0).max()


def _record_ids(tables: dict[str, pd.DataFrame], cases: set[str]) -> dict[str, list[str]]:
    pr = tables["practice_reviews"]
    review_case = pr["notification_id"].where(pr["notification_id"].notna() & (pr["notification_id"] != ""), pr["review_id"])
    reviews = set(pr.loc[review_case.isin(cases), "review_id"])
    return {
        "notifications": list(tables["notifications"].loc[tables["notifications"]["notification_id"].isin(cases), "notification_id"]),
        "rapid_reviews": list(tables["rapid_reviews"].loc[tables["rapid_reviews"]["notification_id"].isin(cases), "rapid_review_id"]),
        "practice_reviews": sorted(reviews),
        "learning": list(tables["learning"].loc[tables["learning"]["review_id"].isin(reviews), "finding_id"]),
    }


def _apply(conn, code: str, dataset: str, ids: list[str], action: str) -> int:
    table = wh.CASE_TABLES[dataset]
    key = table.c[DATASETS[dataset].id_column]
    changed = 0
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i : i + CHUNK]
        where = [table.c.partnership_code == code, key.in_(chunk)]
        hist = [wh.record_history.c.partnership_code == code, wh.record_history.c.dataset == dataset,
                wh.record_history.c.record_id.in_(chunk)]
        quar = [wh.quarantine.c.partnership_code == code, wh.quarantine.c.dataset == dataset,
                wh.quarantine.c.record_id.in_(chunk)]
        if action == "delete":
            changed += conn.execute(table.delete().where(*where)).rowcount
            conn.execute(wh.record_history.delete().where(*hist))
            conn.execute(wh.quarantine.delete().where(*quar))
            continue
        values = {}
        if "child_key" in table.c:
            values["child_key"] = ANONYMISED
            where.append(table.c.child_key != ANONYMISED)
        for col in DATASETS[dataset].of_kind("freetext"):
            values[col] = None
        if dataset == "learning":
            where.append(table.c.finding.isnot(None) | table.c.recommendation.isnot(None))
        if values:
            changed += conn.execute(table.update().where(*where).values(**values)).rowcount
        conn.execute(wh.record_history.update().where(*hist).values(values_json=json.dumps({"retention": ANONYMISED})))
        conn.execute(wh.quarantine.update().where(*quar).values(raw_values=json.dumps({"retention": ANONYMISED})))
    return changed


def _held(conn, code: str) -> set[str]:
    h = wh.legal_holds.c
    return set(conn.execute(select(h.case_id).where(h.partnership_code == code)).scalars())


def _expire_raw_files(conn, code: str, cutoff: date) -> int:
    rf = wh.return_files.c
    removed = 0
    for path in conn.execute(select(rf.raw_path).where(rf.partnership_code == code, rf.return_date < cutoff)).scalars():
        p = Path(path)
        if p.exists():
            os.chmod(p, 0o644)
            p.unlink()
            removed += 1
    return removed


def apply_retention(engine: Engine, cfg: Config, as_of: date) -> list[dict]:
    """Anonymise or delete expired cases, partnership by partnership; return what was done."""
    rule = cfg.retention
    if rule is None:
        log.info("no retention rule configured: nothing done")
        return []
    cutoff = cutoff_date(as_of, rule.keep_years)
    done = []
    for code in cfg.partnerships:
        with engine.begin() as conn:
            tables = {
                name: pd.read_sql(select(t).where(t.c.partnership_code == code), conn)
                for name, t in wh.CASE_TABLES.items()
            }
            last = case_last_dates(tables)
            expired = set(last[last < pd.Timestamp(cutoff)].index)
            held = expired & _held(conn, code)
            ids = _record_ids(tables, expired - held)
            held_ids = _record_ids(tables, held)
            now = audit_now()
            rows = []
            for dataset, record_ids in ids.items():
                n = _apply(conn, code, dataset, record_ids, rule.action)
                rows.append({"as_of_date": as_of, "cutoff_date": cutoff, "action": rule.action, "partnership_code": code,
                             "dataset": dataset, "records": n, "held": len(held_ids[dataset]), "done_at": now})
            raw = _expire_raw_files(conn, code, cutoff)
            rows.append({"as_of_date": as_of, "cutoff_date": cutoff, "action": "delete", "partnership_code": code,
                         "dataset": "raw_files", "records": raw, "held": 0, "done_at": now})
            conn.execute(insert(wh.retention_log), rows)
            done.extend(rows)
        log.info("%s: retention as of %s (cut-off %s, %s): %s", code, as_of, cutoff, rule.action,
                 {r["dataset"]: (r["records"], r["held"]) for r in rows})
    return [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()} for r in done]


def place_legal_hold(engine: Engine, partnership_code: str, case_id: str, reason: str, placed_by: str) -> None:
    with engine.begin() as conn:
        wh.upsert(conn, wh.legal_holds, [{"partnership_code": partnership_code, "case_id": case_id, "reason": reason,
                                          "placed_by": placed_by, "placed_at": audit_now()}],
                  ["partnership_code", "case_id"])


def lift_legal_hold(engine: Engine, partnership_code: str, case_id: str) -> int:
    h = wh.legal_holds.c
    with engine.begin() as conn:
        return conn.execute(wh.legal_holds.delete().where(tuple_(h.partnership_code, h.case_id).in_([(partnership_code, case_id)]))).rowcount
