"""Rotate the pseudonymisation key: re-key every child_key in the warehouse, in one transaction.

A child_key is HMAC-SHA256(key, partnership | child reference): it cannot be reversed, so the
warehouse cannot be re-keyed from itself. The references are in the immutable raw copies of the
returns (`return_files.raw_path`, under the data dir), so re-keying reads them again:

1. For every file recorded for a partnership (except those that failed: nothing was loaded
   from them), read its notifications table from the raw copy with the same readers and column
   mapping as ingest, and pair each child reference's hash under the old key with its hash under
   the new key.
2. In ONE transaction, replace the child_key wherever it is stored: `notifications.child_key`,
   `record_history.values_json` (notification versions) and `quarantine.raw_values`
   (notification rows not loaded), recomputing the row hashes that cover them.
3. Refuse (roll back, change nothing) when any stored child_key has no pair, with the counts per
   table and partnership; and, before committing, search every text column of every table for
   any old-key hash: if one is left anywhere, roll back.

Records anonymised by retention (`child_key = 'anonymised'`) stay as they are. Raw copies that
retention deleted are not needed for anonymised records; a record still live whose every raw
file is gone cannot be re-keyed, and the refusal says so.

The keys are secrets: the command line takes them from the environment only (never argv, which
other users of the machine can read in the process list), prints counts only, and never the keys
or any reference. Procedure (docs/security.md):

    export REVIEWS_REKEY_OLD_KEY=...   # the key in use now
    export REVIEWS_REKEY_NEW_KEY=...   # the new one (openssl rand -base64 48)
    # pause the DAGs (partnership_returns must not load while the key changes), then:
    python -m reviews.admin.rekey --dry-run  # reads everything, checks, rolls back
    python -m reviews.admin.rekey            # re-keys and commits
    # set the new key in the reviews_pseudonymisation connection (or the environment), unpause.

The warehouse is `--warehouse URL`, else the environment's AIRFLOW_CONN_REVIEWS_WAREHOUSE (a URI
or Airflow's JSON form), else REVIEWS_WAREHOUSE_URL; the config is `--config`, else
AIRFLOW_VAR_REVIEWS_CONFIG, else the project's own.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, String, Text, select

from reviews.core import warehouse as wh
from reviews.core.config import Config, load_config
from reviews.returns.landing import parse_name
from reviews.returns.mapping import MappingError, map_columns
from reviews.privacy.pseudonymise import PseudonymisationKeyError, check_key, child_key
from reviews.returns.readers import ReadError, read_csv_return, read_xlsx_return
from reviews.core.template import DATASETS

log = logging.getLogger(__name__)

OLD_KEY_ENV = "REVIEWS_REKEY_OLD_KEY"
NEW_KEY_ENV = "REVIEWS_REKEY_NEW_KEY"
ANONYMISED = "anonymised"  # retention.ANONYMISED (not imported: retention pulls in pandas too)
_HASH = re.compile(r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])")


class RekeyError(RuntimeError):
    """The warehouse cannot be re-keyed as asked; nothing was changed. Counts only, no data."""


@dataclass
class RekeyReport:
    files_read: int = 0
    files_skipped: int = 0  # failed files (nothing loaded from them)
    references: int = 0  # distinct (partnership, child reference) pairs found in raw copies
    updated: Counter = field(default_factory=Counter)  # table -> rows re-keyed
    already_new: Counter = field(default_factory=Counter)  # table -> rows already under the new key
    anonymised: Counter = field(default_factory=Counter)  # table -> rows left (retention)
    dry_run: bool = False

    def summary(self) -> str:
        tables = ", ".join(f"{t} {n}" for t, n in sorted(self.updated.items())) or "nothing"
        extra = []
        if sum(self.already_new.values()):
            extra.append(f"already under the new key: {sum(self.already_new.values())}")
        if sum(self.anonymised.values()):
            extra.append(f"anonymised by retention, left as they are: {sum(self.anonymised.values())}")
        return (f"{'dry run (rolled back): would re-key' if self.dry_run else 're-keyed'} {tables}; "
                f"{self.references} child reference(s) from {self.files_read} raw file(s)"
                f" ({self.files_skipped} failed file(s) skipped)" + ("; " + "; ".join(extra) if extra else ""))


def _file_refs(cfg: Config, row, limits) -> list[str]:
    """The child references of one landed file, read from its raw copy as ingest read it."""
    partnership = cfg.partnership(row.partnership_code)
    kind, dataset, _date, _err = parse_name(row.file_name)
    raw = Path(row.raw_path)
    if not raw.is_file():
        raise RekeyError(
            f"{row.partnership_code}: the raw copy of file {row.file_id} ({row.file_name}) is missing, so its "
            "child references cannot be re-keyed")
    suffix = raw.suffix.lower()
    try:
        if suffix == ".csv":
            if dataset != "notifications":
                return []
            result = read_csv_return(raw, dataset, partnership.header_map(dataset), limits=limits)
        elif suffix == ".xlsx":
            if dataset not in (None, "notifications"):
                return []
            result = read_xlsx_return(raw, {d: partnership.header_map(d) for d in DATASETS}, dataset, limits=limits)
        else:
            return []
        table = result.tables.get("notifications")
        if table is None:
            return []
        mapped, _dropped, _absent = map_columns(table, "notifications", partnership)
    except (ReadError, MappingError) as exc:
        raise RekeyError(f"{row.partnership_code}: file {row.file_id} ({row.file_name}) cannot be read again: {exc}") from None
    return [r for r in mapped["child_ref"].tolist() if isinstance(r, str) and r.strip()]


def build_mapping(engine: Engine, cfg: Config, old_key: bytes, new_key: bytes,
                  report: RekeyReport | None = None) -> dict[tuple[str, str], str]:
    """(partnership, child_key under the old key) -> child_key under the new key, from the raw copies."""
    report = report if report is not None else RekeyReport()
    rf = wh.return_files.c
    with engine.connect() as conn:
        files = conn.execute(
            select(rf.file_id, rf.partnership_code, rf.file_name, rf.raw_path, rf.status).order_by(rf.file_id)
        ).all()
    pairs: dict[tuple[str, str], str] = {}
    seen: set[tuple[str, str]] = set()
    for row in files:
        if row.status == "failed":
            report.files_skipped += 1
            continue
        if row.partnership_code not in cfg.partnerships:
            raise RekeyError(f"file {row.file_id} belongs to {row.partnership_code!r}, which is not in the config")
        report.files_read += 1
        for ref in _file_refs(cfg, row, cfg.limits):
            code = row.partnership_code
            old = child_key(ref, code, old_key)
            if (code, old) in seen:
                continue
            seen.add((code, old))
            pairs[(code, old)] = child_key(ref, code, new_key)
    report.references = len(pairs)
    return pairs


def _row_hash(values: dict) -> str:
    from reviews.returns.ingest import _row_hash as ingest_row_hash  # the same digest ingest wrote

    return ingest_row_hash(values)


def _business_values(row) -> dict:
    from reviews.returns.cleaning import business_columns

    return {c: row[c] for c in business_columns("notifications")}


def rekey(engine: Engine, cfg: Config, old_key: str | bytes, new_key: str | bytes, *, dry_run: bool = False) -> RekeyReport:
    """Re-key the warehouse from `old_key` to `new_key` in one transaction (see the module doc)."""
    old, new = check_key(old_key), check_key(new_key)
    if old == new:
        raise RekeyError("the old and the new key are the same: nothing to do")
    wh.ensure_schema(engine)
    report = RekeyReport(dry_run=dry_run)
    pairs = build_mapping(engine, cfg, old, new, report)
    new_keys = {(code, k) for (code, _old), k in pairs.items()}
    missing: Counter = Counter()  # (table, partnership) -> stored keys with no pair

    def translate(table: str, code: str, key: str | None) -> str | None:
        if key is None or key == ANONYMISED:
            if key == ANONYMISED:
                report.anonymised[table] += 1
            return None
        if (code, key) in pairs:
            return pairs[(code, key)]
        if (code, key) in new_keys:
            report.already_new[table] += 1
            return None
        missing[(table, code)] += 1
        return None

    with engine.connect() as conn:
        trans = conn.begin()
        try:
            _rekey_tables(conn, translate, report)
            if missing:
                detail = "; ".join(f"{table} ({code}): {k}" for (table, code), k in sorted(missing.items()))
                raise RekeyError(
                    f"{sum(missing.values())} stored child_key(s) match no child reference in the raw copies under "
                    f"the old key ({detail}). Is {OLD_KEY_ENV} the key in use, and are the raw copies all there? "
                    "Nothing was changed.")
            left = _old_hashes_left(conn, {k for (_code, k) in pairs})
            if left:
                raise RekeyError(f"old-key hashes are still stored after re-keying ({left}); nothing was changed")
        except BaseException:
            trans.rollback()
            raise
        if dry_run:
            trans.rollback()
        else:
            trans.commit()
    log.info("rekey: %s", report.summary())
    return report


def _rekey_tables(conn, translate, report: RekeyReport) -> None:
    n, h, q = wh.notifications, wh.record_history, wh.quarantine
    for row in conn.execute(select(n)).mappings().all():
        target = translate("notifications", row["partnership_code"], row["child_key"])
        if target is None:
            continue
        values = {**_business_values(row), "child_key": target}
        conn.execute(n.update().where(n.c.partnership_code == row["partnership_code"],
                                      n.c.notification_id == row["notification_id"])
                     .values(child_key=target, row_hash=_row_hash(values)))
        report.updated["notifications"] += 1
    for row in conn.execute(select(h.c.history_id, h.c.partnership_code, h.c.values_json)
                            .where(h.c.dataset == "notifications")).all():
        values = json.loads(row.values_json)
        if "child_key" not in values:
            continue  # anonymised by retention: {"retention": "anonymised"}
        target = translate("record_history", row.partnership_code, values["child_key"])
        if target is None:
            continue
        values["child_key"] = target
        conn.execute(h.update().where(h.c.history_id == row.history_id)
                     .values(values_json=json.dumps(values, default=str, sort_keys=True), row_hash=_row_hash(values)))
        report.updated["record_history"] += 1
    for row in conn.execute(select(q.c.quarantine_id, q.c.partnership_code, q.c.raw_values)
                            .where(q.c.dataset == "notifications")).all():
        values = json.loads(row.raw_values)
        if "child_key" not in values:
            continue
        target = translate("quarantine", row.partnership_code, values["child_key"])
        if target is None:
            continue
        values["child_key"] = target
        conn.execute(q.update().where(q.c.quarantine_id == row.quarantine_id)
                     .values(raw_values=json.dumps(values, default=str, ensure_ascii=False)))
        report.updated["quarantine"] += 1


def _old_hashes_left(conn, old_hashes: set[str]) -> str:
    """Where (table.column: count) any old-key hash is still stored, searching every text column."""
    if not old_hashes:
        return ""
    found: Counter = Counter()
    for table in wh.metadata.sorted_tables:
        cols = [c for c in table.columns if isinstance(c.type, (String, Text))]
        if not cols:
            continue
        for row in conn.execute(select(*cols)):
            for col, value in zip(cols, row):
                if isinstance(value, str) and len(value) >= 32 and any(
                        m in old_hashes for m in _HASH.findall(value)):
                    found[f"{table.name}.{col.name}"] += 1
    return ", ".join(f"{k}: {v}" for k, v in sorted(found.items()))


# ------------------------------------------------------------------------------ command line


def _warehouse_url(given: str | None) -> str:
    if given:
        return given
    conn = os.environ.get("AIRFLOW_CONN_REVIEWS_WAREHOUSE")
    if conn:
        if conn.lstrip().startswith("{"):
            from reviews.core.connections import sqlalchemy_url

            c = json.loads(conn)
            return sqlalchemy_url(c.get("conn_type", ""), c.get("host"), c.get("schema"), c.get("login"),
                                  c.get("password"), c.get("port"))
        return conn.replace("postgres://", "postgresql://", 1)
    url = os.environ.get("REVIEWS_WAREHOUSE_URL")
    if url:
        return url
    raise SystemExit("no warehouse: give --warehouse URL or set AIRFLOW_CONN_REVIEWS_WAREHOUSE")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reviews.admin.rekey",
        description=("Re-key the warehouse's child keys from the old pseudonymisation key to a new one, in one "
                     f"transaction. The keys are read from the environment only: {OLD_KEY_ENV} and {NEW_KEY_ENV}."),
    )
    parser.add_argument("--warehouse", help="SQLAlchemy URL (default: AIRFLOW_CONN_REVIEWS_WAREHOUSE)")
    parser.add_argument("--config", help="config file (default: AIRFLOW_VAR_REVIEWS_CONFIG or the project's)")
    parser.add_argument("--dry-run", action="store_true", help="do everything, then roll back")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        old_key, new_key = check_key(os.environ.get(OLD_KEY_ENV)), check_key(os.environ.get(NEW_KEY_ENV))
    except PseudonymisationKeyError as exc:
        print(f"rekey: set {OLD_KEY_ENV} and {NEW_KEY_ENV} in the environment ({exc})", file=sys.stderr)
        return 2
    cfg = load_config(args.config or os.environ.get("AIRFLOW_VAR_REVIEWS_CONFIG") or None)
    engine = wh.make_engine(_warehouse_url(args.warehouse))
    try:
        report = rekey(engine, cfg, old_key, new_key, dry_run=args.dry_run)
    except RekeyError as exc:
        print(f"rekey refused: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(report.summary())
    if not args.dry_run:
        print("now set the new key in the Airflow connection 'reviews_pseudonymisation' (or "
              "REVIEWS_PSEUDONYMISATION_KEY) before the next run of partnership_returns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
