"""Gather one partnership's new returns into the warehouse: land, read, map, check, load.

Called by the `partnership_returns` DAG once per partnership. Each file is loaded in one
transaction (its rows, its quarantined rows, its history and its `return_files` record), so a
failure part-way leaves no trace of that file and the next run picks it up again. What this
returns is counts only: it goes to XCom and logs, where no case data may go.
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, insert, select

from reviews import warehouse as wh
from reviews.audit import audit_now
from reviews.cleaning import DT_SUFFIX, RAW_SUFFIX, business_columns, clean_table
from reviews.config import Config, Partnership
from reviews.landing import IncomingFile, discover, keep_raw
from reviews.mapping import MappingError, map_columns
from reviews.quality import FILE_COLUMN, KEY_COLUMN, validate
from reviews.readers import ROW_COLUMN, ReadError, read_csv_return, read_xlsx_return
from reviews.template import DATASET_ORDER, DATASETS

log = logging.getLogger(__name__)


@dataclass
class FileOutcome:
    file_name: str
    status: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    error: str | None = None


@dataclass
class IngestSummary:
    """What happened for one partnership in one run (no case data: safe for XCom and logs)."""

    partnership_code: str
    as_of: str
    files_seen: int = 0
    files_new: int = 0
    files_skipped_already_loaded: int = 0
    files_waiting_future_date: int = 0
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    files: list[FileOutcome] = field(default_factory=list)
    rule_counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Prepared:
    """A landed file, read and cleaned, waiting for validation and load."""

    incoming: IncomingFile
    raw_path: Path
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    dropped: set[str] = field(default_factory=set)
    error: str | None = None
    notes: list[str] = field(default_factory=list)


def already_loaded(engine: Engine, partnership_code: str) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(wh.return_files.c.sha256).where(wh.return_files.c.partnership_code == partnership_code)
        )
        return {r[0] for r in rows}


def _read(prep: _Prepared, partnership: Partnership, cfg: Config, key: bytes) -> None:
    inc = prep.incoming
    if inc.name_error:
        prep.error = inc.name_error
        return
    try:
        if inc.kind == "csv":
            result = read_csv_return(prep.raw_path, inc.dataset, partnership.header_map(inc.dataset))
        else:
            result = read_xlsx_return(prep.raw_path, {d: partnership.header_map(d) for d in DATASETS})
        prep.notes.extend(result.notes)
        for dataset, table in result.tables.items():
            mapped, dropped, absent = map_columns(table, dataset, partnership)
            prep.dropped.update(dropped)
            required_absent = [c for c in absent if DATASETS[dataset].column(c).required]
            if required_absent:
                raise ReadError(f"the {dataset} table has no column for {', '.join(required_absent)}")
            prep.tables[dataset] = clean_table(mapped, dataset, partnership, cfg, key, inc.return_date)
    except (ReadError, MappingError) as exc:
        prep.error = str(exc)
        prep.tables.clear()


def _row_hash(values: dict) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


def _value(v):
    """None for the many spellings of missing that pandas produces."""
    return None if v is None or (not isinstance(v, str) and pd.isna(v)) else v


def _record_values(row: dict, dataset: str) -> dict:
    """The stored values of a valid row: typed dates, ints for ages, text otherwise."""
    ds = DATASETS[dataset]
    out = {}
    for col in business_columns(dataset):
        value = _value(row.get(col))
        if col in ds.column_names and ds.column(col).kind == "date":
            ts = row.get(col + DT_SUFFIX)
            value = None if _value(ts) is None else ts.date()
        elif col in ds.column_names and ds.column(col).kind == "age":
            value = None if value is None else int(value)
        out[col] = value
    return out


def _raw_values(row: dict, dataset: str) -> str:
    """The row as the partnership sent it (template columns only, child_ref already hashed)."""
    ds = DATASETS[dataset]
    vals = {}
    for col in business_columns(dataset):
        if col in ds.column_names and ds.column(col).kind == "date":
            vals[col] = _value(row.get(col + RAW_SUFFIX))
        else:
            vals[col] = _value(row.get(col))
    return json.dumps(vals, default=str, ensure_ascii=False)


def _load_file(
    engine: Engine,
    prep: _Prepared,
    failures: dict[str, dict[int, list[str]]],
    now: datetime,
) -> FileOutcome:
    inc = prep.incoming
    outcome = FileOutcome(inc.safe_name, "failed", error=prep.error)
    with engine.begin() as conn:
        file_row = {
            "partnership_code": inc.partnership_code,
            "file_name": inc.safe_name,
            "sha256": inc.sha256,
            "size_bytes": inc.size_bytes,
            "return_date": inc.return_date,
            "received_at": now,
            "raw_path": str(prep.raw_path),
            "datasets": ",".join(d for d in DATASET_ORDER if d in prep.tables) or None,
            "dropped_columns": ", ".join(sorted(prep.dropped)) or None,
            "status": "failed",
            "error": prep.error,
        }
        file_id = conn.execute(insert(wh.return_files).returning(wh.return_files.c.file_id), file_row).scalar_one()
        for dataset in DATASET_ORDER:
            table = prep.tables.get(dataset)
            if table is None:
                continue
            ds = DATASETS[dataset]
            current = wh.existing_keys(
                conn, wh.CASE_TABLES[dataset], ["partnership_code", ds.id_column],
                {"partnership_code": inc.partnership_code},
            )
            loads, history, quarantined = [], [], []
            bad = failures.get(dataset, {})
            for row in table.to_dict(orient="records"):
                outcome.rows_read += 1
                reasons = bad.get(int(row[KEY_COLUMN]))
                if reasons:
                    quarantined.append({
                        "partnership_code": inc.partnership_code, "dataset": dataset, "file_id": file_id,
                        "file_name": inc.safe_name, "row_number": int(row[ROW_COLUMN]),
                        "record_id": row.get(ds.id_column), "failed_checks": "\n".join(reasons),
                        "raw_values": _raw_values(row, dataset), "quarantined_at": now,
                    })
                    continue
                values = _record_values(row, dataset)
                digest = _row_hash(values)
                record_id = values[ds.id_column]
                history.append({
                    "partnership_code": inc.partnership_code, "dataset": dataset, "record_id": record_id,
                    "file_id": file_id, "return_date": inc.return_date, "row_hash": digest,
                    "values_json": json.dumps(values, default=str, sort_keys=True), "loaded_at": now,
                })
                existing = current.get((inc.partnership_code, record_id))
                if existing is None or existing["return_date"] <= inc.return_date:
                    loads.append({"partnership_code": inc.partnership_code, **values, "return_date": inc.return_date,
                                  "source_file_id": file_id, "source_row": int(row[ROW_COLUMN]),
                                  "row_hash": digest, "loaded_at": now})
            wh.upsert(conn, wh.CASE_TABLES[dataset], loads, ["partnership_code", ds.id_column])
            if history:
                conn.execute(insert(wh.record_history), history)
            if quarantined:
                conn.execute(insert(wh.quarantine), quarantined)
            outcome.rows_quarantined += len(quarantined)
            outcome.rows_loaded = outcome.rows_read - outcome.rows_quarantined
        if prep.error is None:
            outcome.status = "loaded" if outcome.rows_quarantined == 0 else (
                "partial" if outcome.rows_loaded else "rejected")
            outcome.error = None
        conn.execute(
            wh.return_files.update().where(wh.return_files.c.file_id == file_id).values(
                rows_read=outcome.rows_read, rows_loaded=outcome.rows_loaded,
                rows_quarantined=outcome.rows_quarantined, status=outcome.status, error=outcome.error,
            )
        )
    return outcome


def ingest_partnership(
    engine: Engine,
    cfg: Config,
    partnership_code: str,
    inbox: Path,
    raw_root: Path,
    key: bytes,
    as_of: date,
    clock: Callable[[], datetime] = audit_now,
) -> IngestSummary:
    """Load every new return of one partnership dated on or before `as_of`."""
    partnership = cfg.partnership(partnership_code)
    wh.ensure_schema(engine)
    summary = IngestSummary(partnership_code, as_of.isoformat())
    found = discover(Path(inbox) / partnership_code, partnership_code)
    summary.files_seen = len(found)
    seen = already_loaded(engine, partnership_code)
    prepared: list[_Prepared] = []
    batch_hashes: set[str] = set()
    for inc in found:
        if inc.sha256 in seen or inc.sha256 in batch_hashes:
            summary.files_skipped_already_loaded += 1
            continue
        if inc.return_date is not None and inc.return_date > as_of:
            summary.files_waiting_future_date += 1
            continue
        batch_hashes.add(inc.sha256)
        prep = _Prepared(inc, keep_raw(inc, raw_root))
        _read(prep, partnership, cfg, key)
        prepared.append(prep)
    summary.files_new = len(prepared)

    # Validate each dataset once over all new files (fast), then load file by file.
    failures: dict[str, dict[int, list[str]]] = {}
    next_key = 0
    for dataset in DATASET_ORDER:
        frames = []
        for i, prep in enumerate(prepared):
            table = prep.tables.get(dataset)
            if table is None:
                continue
            table = table.copy()
            table[KEY_COLUMN] = range(next_key, next_key + len(table))
            table[FILE_COLUMN] = i
            next_key += len(table)
            prep.tables[dataset] = table
            frames.append(table)
        if not frames:
            continue
        batch = pd.concat(frames, ignore_index=True)
        result = validate(batch, dataset, cfg)
        failures[dataset] = result.failures
        for rule, n in result.rule_counts.items():
            if n:
                summary.rule_counts[rule] = summary.rule_counts.get(rule, 0) + n

    now = clock()
    for prep in prepared:
        outcome = _load_file(engine, prep, failures, now)
        summary.files.append(outcome)
        summary.rows_read += outcome.rows_read
        summary.rows_loaded += outcome.rows_loaded
        summary.rows_quarantined += outcome.rows_quarantined
        log.info(
            "%s: %s %s (read %d, loaded %d, quarantined %d)%s",
            partnership_code, outcome.file_name, outcome.status, outcome.rows_read, outcome.rows_loaded,
            outcome.rows_quarantined, f": {outcome.error}" if outcome.error else "",
        )
    return summary
