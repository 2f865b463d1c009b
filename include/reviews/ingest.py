"""Gather one partnership's new returns into the warehouse: land, read, map, check, load.

Called by the `partnership_returns` DAG once per partnership, on the folder its source filled
(sources.py: the drop folder itself, files fetched by SFTP, or an SQL pull written as CSV). Each
file is loaded in one transaction (its rows, its quarantined rows, its history, the quarantined
rows of earlier returns it corrects, and its `return_files` record), so a failure part-way leaves
no trace of that file and the next run picks it up again. A file that cannot be read at all is
kept raw and recorded as `failed` with the reason; it never stops the partnership's other files.
What this returns is counts only: it goes to XCom and logs, where no case data may go.

Resubmissions: a valid row for a record that an earlier return had quarantined marks those
quarantine rows resolved (`resolved_by_file_id`, `resolved_at`). The case table holds the record
from the newest return (by the return's date); `record_history` keeps every version, with the
file (so who sent what, and when) it came from.
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from functools import lru_cache
from json.encoder import encode_basestring_ascii as _json_text  # what json.dumps uses for a str
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, and_, insert, select

from reviews import warehouse as wh
from reviews.audit import audit_now
from reviews.cleaning import DT_SUFFIX, RAW_SUFFIX, RETURN_DATE_COLUMN, business_columns, clean_table
from reviews.config import Config, Partnership
from reviews.freetext import redact_free_text, redaction_note
from reviews.landing import IncomingFile, discover, keep_raw
from reviews.mapping import MappingError, map_columns
from reviews.quality import CROSS_DATE_ORDER, FILE_COLUMN, KEY_COLUMN, RuleContext, validate, write_data_docs
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
    rows_resolved: int = 0  # quarantined rows of earlier returns this file corrected
    file_id: int | None = None
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
    rows_resolved: int = 0
    files_failed: int = 0
    files: list[FileOutcome] = field(default_factory=list)
    rule_counts: dict[str, int] = field(default_factory=dict)
    data_docs: list[str] = field(default_factory=list)  # Data Docs pages written for this run
    free_text_redactions: int = 0  # personal details redacted from text cells before loading

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
    redactions: Counter = field(default_factory=Counter)  # personal details redacted, by kind


def already_loaded(engine: Engine, partnership_code: str) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(wh.return_files.c.sha256).where(wh.return_files.c.partnership_code == partnership_code)
        )
        return {r[0] for r in rows}


def _read(prep: _Prepared, partnership: Partnership, cfg: Config, key: bytes, *, clean: bool = True) -> None:
    """Read, map and clean one landed file (`clean=False`: read and map only; _clean_all cleans)."""
    inc = prep.incoming
    if inc.refused or inc.name_error:
        prep.error = inc.refused or inc.name_error
        return
    try:
        if inc.kind == "csv":
            result = read_csv_return(prep.raw_path, inc.dataset, partnership.header_map(inc.dataset), limits=cfg.limits)
        else:
            result = read_xlsx_return(prep.raw_path, {d: partnership.header_map(d) for d in DATASETS}, inc.dataset,
                                      limits=cfg.limits)
        prep.notes.extend(result.notes)
        for dataset, table in result.tables.items():
            mapped, dropped, absent = map_columns(table, dataset, partnership)
            prep.dropped.update(dropped)
            required_absent = [c for c in absent if DATASETS[dataset].column(c).required]
            if required_absent:
                raise ReadError(f"the {dataset} table has no column for {', '.join(required_absent)}")
            if not clean:
                prep.tables[dataset] = mapped
                continue
            cleaned, found = redact_free_text(clean_table(mapped, dataset, partnership, cfg, key, inc.return_date), dataset)
            prep.tables[dataset] = cleaned
            prep.redactions.update(found)
        if prep.redactions:
            prep.notes.append(redaction_note(prep.redactions))
    except (ReadError, MappingError) as exc:
        prep.error = str(exc)
        prep.tables.clear()
    except Exception as exc:  # noqa: BLE001 - a file nobody can read must not stop the others
        _unreadable(prep, exc)


def _unreadable(prep: _Prepared, exc: Exception) -> None:
    # Only the kind of error: a message from a parser may quote the file's contents.
    inc = prep.incoming
    prep.error = f"the file could not be read ({type(exc).__name__})"
    prep.tables.clear()
    log.warning("%s: %s could not be read: %s", inc.partnership_code, inc.safe_name, type(exc).__name__)


def _clean_all(prepared: list[_Prepared], partnership: Partnership, cfg: Config, key: bytes) -> None:
    """Clean the mapped tables of every file read with `clean=False`: one clean_table (and one
    free-text screen) per dataset over all the files, instead of one per file.

    Both work cell by cell, so each file gets exactly the rows cleaning it alone gives (its return
    date is set per file after), without their fixed cost (some fifty pandas calls) per file: at
    national scale that cost was most of the reading time. Redaction counts are per file (its
    notes say them): when the batch screen finds anything, the files are screened one by one. If
    the batch cannot be cleaned, each file is cleaned on its own, so only the file at fault fails
    (all its tables dropped, as when _read cleans it).
    """
    for dataset in DATASET_ORDER:
        owners = [prep for prep in prepared if prep.error is None and dataset in prep.tables]
        if not owners:
            continue
        sizes = [len(prep.tables[dataset]) for prep in owners]
        try:
            batch = pd.concat([prep.tables[dataset] for prep in owners], ignore_index=True)
            cleaned = clean_table(batch, dataset, partnership, cfg, key, owners[0].incoming.return_date)
            if len(cleaned) != len(batch):
                raise ValueError("cleaning changed the number of rows")
            screened, found = redact_free_text(cleaned, dataset)
        except Exception:  # noqa: BLE001 - find the file at fault, one file at a time
            cleaned = None
        if cleaned is None:
            for prep in owners:
                try:
                    table, found = redact_free_text(clean_table(
                        prep.tables[dataset], dataset, partnership, cfg, key, prep.incoming.return_date), dataset)
                    prep.tables[dataset] = table
                    prep.redactions.update(found)
                except Exception as exc:  # noqa: BLE001 - as in _read
                    _unreadable(prep, exc)
            continue
        start = 0
        for prep, n in zip(owners, sizes):
            part = (cleaned if found else screened).iloc[start : start + n].reset_index(drop=True)
            if found:  # which file each redaction was in
                part, mine = redact_free_text(part, dataset)
                prep.redactions.update(mine)
            part[RETURN_DATE_COLUMN] = pd.Timestamp(prep.incoming.return_date)
            prep.tables[dataset] = part
            start += n
    for prep in prepared:
        if prep.error is None and prep.redactions:
            prep.notes.append(redaction_note(prep.redactions))


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


def _record_columns(table: pd.DataFrame, dataset: str, keep: list[bool] | None = None) -> dict[str, list]:
    """_record_values of every row of `table` (or of the rows `keep` marks) at once, as columns:
    name -> list of values."""
    ds = DATASETS[dataset]

    def kept(values: list) -> list:
        return values if keep is None else [v for v, k in zip(values, keep) if k]

    n = len(table) if keep is None else sum(keep)
    out: dict[str, list] = {}
    for col in business_columns(dataset):
        kind = ds.column(col).kind if col in ds.column_names else None
        source = col + DT_SUFFIX if kind == "date" else col
        if source not in table:
            out[col] = [None] * n
            continue
        series = table[source]
        blank = kept(series.isna().tolist())
        values = kept(series.dt.date.tolist() if kind == "date" else series.tolist())
        if kind == "age":
            values = [v if b else int(v) for v, b in zip(values, blank)]
        out[col] = [None if b else v for v, b in zip(values, blank)] if any(blank) else values
    return out


@lru_cache(maxsize=None)
def _quarantine_columns(dataset: str) -> frozenset[str]:
    """What a quarantined row's record needs of the cleaned table."""
    ds = DATASETS[dataset]
    raw = [c + RAW_SUFFIX for c in ds.of_kind("date")]
    return frozenset([KEY_COLUMN, ROW_COLUMN, ds.id_column, *business_columns(dataset), *raw])


def _json_items(name: str, values: list) -> list[str]:
    """'"name": value' as json.dumps(..., default=str) writes the pair, per value (each distinct
    value encoded once; text with the encoder json.dumps itself uses for it)."""
    prefix = json.dumps(name) + ": "
    done: dict = {}
    out = []
    for v in values:
        if type(v) is str:
            out.append(prefix + _json_text(v))
            continue
        key = (type(v), v)  # True == 1, but they are written differently
        try:
            text = done[key]
        except KeyError:
            text = done[key] = prefix + json.dumps(v, default=str)
        except TypeError:  # unhashable: encoded every time
            text = prefix + json.dumps(v, default=str)
        out.append(text)
    return out


def _values_json(columns: dict[str, list]) -> list[str]:
    """json.dumps(values, sort_keys=True, default=str) of each row given as columns: the exact text
    _row_hash hashes and record_history.values_json keeps."""
    items = [_json_items(name, columns[name]) for name in sorted(columns)]
    return ["{" + ", ".join(row) + "}" for row in zip(*items)]


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


def _resolve_quarantine(conn, inc: IncomingFile, file_id: int, dataset: str, record_ids: list, now: datetime) -> int:
    """Mark earlier quarantined rows of these records resolved by this file (returns dated no later)."""
    q, rf = wh.quarantine, wh.return_files
    earlier_files = select(rf.c.file_id).where(
        rf.c.partnership_code == inc.partnership_code,
        rf.c.file_id != file_id,
        rf.c.return_date <= inc.return_date,
    )
    resolved = 0
    ids = sorted({r for r in record_ids if r is not None})
    for i in range(0, len(ids), 500):
        res = conn.execute(
            q.update()
            .where(and_(
                q.c.partnership_code == inc.partnership_code,
                q.c.dataset == dataset,
                q.c.record_id.in_(ids[i : i + 500]),
                q.c.resolved_by_file_id.is_(None),
                q.c.file_id.in_(earlier_files),
            ))
            .values(resolved_by_file_id=file_id, resolved_at=now)
        )
        resolved += res.rowcount
    return resolved


def _load_file(
    engine: Engine,
    prep: _Prepared,
    failures: dict[str, dict[int, list[str]]],
    failed_rules: dict[str, dict[int, list[str]]],
    now: datetime,
    quarantined_ids: dict[str, set] | None = None,
) -> FileOutcome:
    """Load one file in one transaction: valid rows into the case table (upsert) and the history,
    bad rows into quarantine, earlier quarantined rows it corrects marked resolved, its record.

    Valid rows become stored values a column at a time (_record_columns and _values_json give what
    _record_values and _row_hash give row by row). The case table keeps the version from the
    newest return: the upsert does not replace a row that came from a later return.
    `quarantined_ids`: dataset -> ids of records that may have unresolved quarantined rows
    (ingest_partnership keeps it, adding each file's); corrections are looked for among them
    only. None: looked for among all of the file's valid rows.
    """
    inc = prep.incoming
    outcome = FileOutcome(inc.safe_name, "failed", error=prep.error)
    # Which rows are bad is known before anything is written, so the file's record is inserted
    # once with its final counts and status (not inserted, then updated at the end).
    bad_rows: dict[str, list[bool]] = {}
    for dataset in DATASET_ORDER:
        table = prep.tables.get(dataset)
        if table is not None:
            bad = failures.get(dataset, {})
            bad_rows[dataset] = [bool(bad.get(int(k))) for k in table[KEY_COLUMN].tolist()]
            outcome.rows_read += len(table)
            outcome.rows_quarantined += sum(bad_rows[dataset])
            outcome.rows_loaded = outcome.rows_read - outcome.rows_quarantined
    if prep.error is None:
        outcome.status = "loaded" if outcome.rows_quarantined == 0 else (
            "partial" if outcome.rows_loaded else "rejected")
        outcome.error = None
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
            "notes": "\n".join(prep.notes) or None,
            "rows_read": outcome.rows_read,
            "rows_loaded": outcome.rows_loaded,
            "rows_quarantined": outcome.rows_quarantined,
            "status": outcome.status,
            "error": outcome.error,
        }
        file_id = conn.execute(insert(wh.return_files).returning(wh.return_files.c.file_id), file_row).scalar_one()
        outcome.file_id = file_id
        for dataset in DATASET_ORDER:
            table = prep.tables.get(dataset)
            if table is None:
                continue
            ds = DATASETS[dataset]
            bad = failures.get(dataset, {})
            bad_rules = failed_rules.get(dataset, {})
            is_bad = bad_rows[dataset]
            quarantined = []
            if any(is_bad):
                # The bad rows as to_dict(orient="records") gives them, with only the columns
                # _raw_values and the quarantine record read (a DataFrame call per file is slow).
                wanted = [c for c in table.columns if c in _quarantine_columns(dataset)]
                at = [i for i, b in enumerate(is_bad) if b]
                picked = {c: table[c].tolist() for c in wanted}
                for i in at:
                    row = {c: picked[c][i] for c in wanted}
                    key = int(row[KEY_COLUMN])
                    quarantined.append({
                        "partnership_code": inc.partnership_code, "dataset": dataset, "file_id": file_id,
                        "file_name": inc.safe_name, "row_number": int(row[ROW_COLUMN]),
                        "record_id": row.get(ds.id_column), "failed_checks": "\n".join(bad[key]),
                        "failed_rules": "\n".join(bad_rules.get(key, [])),
                        "raw_values": _raw_values(row, dataset), "quarantined_at": now,
                    })
            good = [not b for b in is_bad] if quarantined else None
            values = _record_columns(table, dataset, good)
            source_rows = [int(r) for r in table[ROW_COLUMN].tolist()]
            if good is not None:
                source_rows = [r for r, ok in zip(source_rows, good) if ok]
            texts = _values_json(values)
            digests = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
            record_ids = values[ds.id_column]
            n = len(texts)
            history = wh.ColumnRows({
                "partnership_code": inc.partnership_code, "dataset": dataset, "record_id": record_ids,
                "file_id": file_id, "return_date": inc.return_date, "row_hash": digests,
                "values_json": texts, "loaded_at": now,
            }, n)
            loads = wh.ColumnRows({
                "partnership_code": inc.partnership_code, **values, "return_date": inc.return_date,
                "source_file_id": file_id, "source_row": source_rows, "row_hash": digests, "loaded_at": now,
            }, n)
            wh.upsert(conn, wh.CASE_TABLES[dataset], loads, ["partnership_code", ds.id_column], keep_newer="return_date")
            wh.insert_rows(conn, wh.record_history, history)
            wh.insert_rows(conn, wh.quarantine, quarantined)
            if history and inc.return_date is not None:
                candidates = record_ids if quarantined_ids is None else [
                    r for r in record_ids if r in quarantined_ids.get(dataset, ())]
                if candidates:
                    outcome.rows_resolved += _resolve_quarantine(conn, inc, file_id, dataset, candidates, now)
            if quarantined_ids is not None and quarantined:
                quarantined_ids.setdefault(dataset, set()).update(q["record_id"] for q in quarantined)
    return outcome


def _unresolved_quarantine(engine: Engine, partnership_code: str) -> dict[str, set]:
    """dataset -> ids of the partnership's records with quarantined rows not yet resolved."""
    q = wh.quarantine.c
    out: dict[str, set] = {}
    with engine.connect() as conn:
        for dataset, record_id in conn.execute(
            select(q.dataset, q.record_id).where(q.partnership_code == partnership_code, q.resolved_by_file_id.is_(None))
        ):
            out.setdefault(dataset, set()).add(record_id)
    return out


def ingest_partnership(
    engine: Engine,
    cfg: Config,
    partnership_code: str,
    inbox: Path,
    raw_root: Path,
    key: bytes,
    as_of: date,
    clock: Callable[[], datetime] = audit_now,
    *,
    folder: Path | None = None,
    docs_dir: Path | None = None,
) -> IngestSummary:
    """Load every new return of one partnership dated on or before `as_of`.

    `folder`: where its files are (default `inbox/{code}`; sources.gather says for SFTP and SQL).
    `docs_dir`: where to write a GX Data Docs page per dataset validated (none when not given).
    """
    partnership = cfg.partnership(partnership_code)
    wh.ensure_schema(engine)
    summary = IngestSummary(partnership_code, as_of.isoformat())
    found = discover(Path(folder) if folder is not None else Path(inbox) / partnership_code, partnership_code,
                     max_bytes=cfg.limits.max_file_bytes)
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
        _read(prep, partnership, cfg, key, clean=False)
        prepared.append(prep)
    _clean_all(prepared, partnership, cfg, key)
    summary.free_text_redactions += sum(sum(p.redactions.values()) for p in prepared if p.error is None)
    summary.files_new = len(prepared)

    # Validate each dataset once over all new files (fast), then load file by file. Datasets go in
    # load order, so the records a later dataset refers to are known (warehouse or valid here).
    failures: dict[str, dict[int, list[str]]] = {}
    failed_rules: dict[str, dict[int, list[str]]] = {}
    known_ids, dates = _known_records(engine, partnership_code)
    stamp = clock()
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
        context = RuleContext(as_of=as_of, known_ids=known_ids, dates=dates)
        result = validate(batch, dataset, cfg, context)
        failures[dataset] = result.failures
        failed_rules[dataset] = result.failed_rules
        _remember_valid(batch, dataset, result.failures, known_ids, dates)
        for rule, n in result.rule_counts.items():
            if n:
                summary.rule_counts[rule] = summary.rule_counts.get(rule, 0) + n
        if docs_dir is not None:
            page = write_data_docs(result, Path(docs_dir) / f"{as_of.isoformat()}_{stamp:%Y%m%dT%H%M%S}" / f"{dataset}.html")
            if page is not None:
                summary.data_docs.append(str(page))

    now = clock()
    quarantined_ids = _unresolved_quarantine(engine, partnership_code) if prepared else {}
    for prep in prepared:
        outcome = _load_file(engine, prep, failures, failed_rules, now, quarantined_ids)
        summary.files.append(outcome)
        summary.rows_read += outcome.rows_read
        summary.rows_loaded += outcome.rows_loaded
        summary.rows_quarantined += outcome.rows_quarantined
        summary.rows_resolved += outcome.rows_resolved
        summary.files_failed += outcome.status == "failed"
        log.info(
            "%s: %s %s (read %d, loaded %d, quarantined %d)%s",
            partnership_code, outcome.file_name, outcome.status, outcome.rows_read, outcome.rows_loaded,
            outcome.rows_quarantined, f": {outcome.error}" if outcome.error else "",
        )
    return summary


def _known_records(engine: Engine, partnership_code: str) -> tuple[dict[str, set[str]], dict[str, dict[str, _Dated]]]:
    """Record ids already in the warehouse for the datasets others refer to, and the dates the
    cross-dataset rules compare with (the current state: the newest return's values)."""
    referenced = {ref.dataset for ds in DATASETS.values() for ref in ds.references}
    known: dict[str, set[str]] = {}
    dates: dict[str, dict[str, _Dated]] = {}
    with engine.connect() as conn:
        for dataset in referenced:
            table = wh.CASE_TABLES[dataset]
            id_col = DATASETS[dataset].id_column
            known[dataset] = set(conn.execute(
                select(table.c[id_col]).where(table.c.partnership_code == partnership_code)).scalars())
        for _ours_ds, _ours, _ref, their_ds, theirs in CROSS_DATE_ORDER:
            table = wh.CASE_TABLES[their_ds]
            id_col = DATASETS[their_ds].id_column
            lookup = dates.setdefault(their_ds, {}).setdefault(theirs, _Dated())
            for rid, value, returned in conn.execute(
                select(table.c[id_col], table.c[theirs], table.c.return_date)
                .where(table.c.partnership_code == partnership_code)
            ):
                lookup.offer(rid, returned, value)
    return known, dates


class _Dated(dict):
    """record id -> date (what the rules read), keeping the value of the newest return."""

    def __init__(self):
        super().__init__()
        self.return_dates: dict[str, date] = {}

    def offer(self, record_id, return_date: date, value: date | None) -> None:
        if record_id not in self.return_dates or self.return_dates[record_id] <= return_date:
            self.return_dates[record_id] = return_date
            self[record_id] = value


def _remember_valid(batch: pd.DataFrame, dataset: str, bad: dict[int, list[str]],
                    known: dict[str, set[str]], dates: dict[str, dict]) -> None:
    """Valid rows of this batch become known to the datasets checked after it."""
    if dataset not in known and dataset not in dates:
        return
    id_col = DATASETS[dataset].id_column
    valid = batch[~batch[KEY_COLUMN].isin(list(bad))]
    if dataset in known:
        known[dataset].update(v for v in valid[id_col] if _value(v) is not None)
    for col, lookup in dates.get(dataset, {}).items():
        for rid, ret, value in zip(valid[id_col], valid[RETURN_DATE_COLUMN], valid[col + DT_SUFFIX]):
            if _value(rid) is not None:
                lookup.offer(rid, ret.date(), None if pd.isna(value) else value.date())
