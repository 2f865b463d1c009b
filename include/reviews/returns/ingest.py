"""Gather one partnership's new returns into the warehouse: land, read, map, check, load.

Called by the `partnership_returns` DAG once per partnership, on the folder its source filled
(sources.py: the drop folder itself, files fetched by SFTP, or an SQL pull written as CSV). All
the run's new files are loaded in one transaction (their rows, quarantined rows, history, the
quarantined rows of earlier returns they correct, and their `return_files` records; see
_load_files), so a failure part-way leaves no trace of any of them, no partial file, and the next
run picks them all up again (a file counts as loaded only once its `return_files` row is
committed). One statement per table for the run instead of several per file is what keeps the
load fast at national scale; the tables end exactly as loading the files one by one in order
leaves them (the naive baseline in reviews_dev.bench.national_bench does that; tests/unit/test_fast_paths.py
compares the two). A file that cannot be read at all is kept raw and recorded as `failed`
with the reason; it never stops the partnership's other files. Nor does a file that cannot be
checksummed or copied (a permission or I/O error: recorded as `failed` with the kind of error),
nor one whose rows the warehouse refuses: when the run's transaction fails on a data error
(a value PostgreSQL refuses, a constraint), the files are loaded again one by one, each in its
own transaction, and only the file at fault is recorded as `failed`, with the kind of error,
its SQLSTATE and the table, never a value (_load_isolated). A failure that is not about the
data (the warehouse unreachable, the connection lost) still fails the task, so Airflow retries.
What this returns is counts only: it goes to XCom and logs, where no case data may go.

Severities (config `quality.severity`, quality.py): a row that broke a `reject` rule is
quarantined; a row that broke only `flag` rules is loaded, each unusable cell of it stored blank
(blank_flagged) and each flag kept in `row_flags` with the cell's original text quoted safely.

Resubmissions: a loaded row (valid or flagged) for a record that an earlier return had
quarantined marks those quarantine rows resolved (`resolved_by_file_id`, `resolved_at`), and
the record's earlier flags superseded (`row_flags.superseded_by_file_id`). The case table holds the record
from the newest return (by the return's date); `record_history` keeps every version, with the
file (so who sent what, and when) it came from.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from functools import lru_cache
from json.encoder import encode_basestring as _json_text_unicode  # ... and with ensure_ascii=False
from json.encoder import encode_basestring_ascii as _json_text  # what json.dumps uses for a str
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine, and_, select

from reviews.core import warehouse as wh
from reviews.core.audit import audit_now
from reviews.returns.cleaning import DT_SUFFIX, RAW_SUFFIX, RETURN_DATE_COLUMN, business_columns, clean_table
from reviews.core.config import Config, Partnership
from reviews.privacy.ingest_redaction import redact_free_text, redaction_note
from reviews.core.gc_pause import gc_paused
from reviews.returns.landing import NOT_COPIED, IncomingFile, discover, error_kind, keep_raw, unread_digest
from reviews.returns.mapping import MappingError, map_columns
from reviews.returns.quality import (CROSS_DATE_ORDER, FILE_COLUMN, KEY_COLUMN, Flag, RuleContext, blanked_column,
                                     quarantine_record, rule_columns, validate, write_data_docs)
from reviews.returns.readers import ROW_COLUMN, ReadError, read_csv_return, read_xlsx_return
from reviews.core.template import DATASET_ORDER, DATASETS

log = logging.getLogger(__name__)


@dataclass
class FileOutcome:
    file_name: str
    status: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_resolved: int = 0  # quarantined rows of earlier returns this file corrected
    rows_flagged: int = 0  # loaded rows with at least one `flag` rule broken (counted within rows_loaded)
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
    rows_flagged: int = 0  # loaded rows with at least one `flag` rule broken (within rows_loaded)
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


def _landed(inc: IncomingFile, raw_root: Path) -> _Prepared:
    """The file with its raw copy kept; a file that cannot be copied (an I/O or permission error,
    or changed while copied) is not read and is recorded as failed with the kind of error. It is
    recorded under a stand-in checksum, not its own: a later run copies it again (and loads it,
    once it can), while the failure is recorded once."""
    try:
        return _Prepared(inc, keep_raw(inc, raw_root))
    except OSError as exc:
        why = error_kind(exc, "copying the file")
        log.warning("%s: %s could not be kept (%s)", inc.partnership_code, inc.safe_name, why)
        stand_in = unread_digest(inc.safe_name, inc.size_bytes, 0, f"{why}|{inc.sha256}")
        refused = f"{why}: it was not kept or read"
        return _Prepared(dataclasses.replace(inc, sha256=stand_in, refused=refused), Path(NOT_COPIED))


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
        source = cleaned if found else screened
        returned = [prep.incoming.return_date for prep in owners]
        dated = None not in returned
        if dated:  # each file's return date, set once over the batch (a column per file is slow)
            stamps = np.array([pd.Timestamp(d).to_datetime64() for d in returned])
            source = source.assign(**{RETURN_DATE_COLUMN: np.repeat(stamps, sizes)})
        start = 0
        for prep, n in zip(owners, sizes):
            part = source.iloc[start : start + n].reset_index(drop=True)
            if found:  # which file each redaction was in
                part, mine = redact_free_text(part, dataset)
                prep.redactions.update(mine)
            if not dated:
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


def _encoded_each(values: list, text: Callable[[str], str], other: Callable[[object], str]) -> list[str]:
    """text(v) for each str, other(v) for anything else, each distinct other value encoded once."""
    done: dict = {}
    out = []
    for v in values:
        if type(v) is str:
            out.append(text(v))
            continue
        key = (type(v), v)  # True == 1, but they are written differently
        try:
            encoded = done[key]
        except KeyError:
            encoded = done[key] = other(v)
        except TypeError:  # unhashable: encoded every time
            encoded = other(v)
        out.append(encoded)
    return out


def _json_values(values: list) -> list[str]:
    """json.dumps(value, default=str) of each value (text with the encoder json.dumps itself uses)."""
    return _encoded_each(values, _json_text, lambda v: json.dumps(v, default=str))


def _json_texts(table: pd.DataFrame, dataset: str) -> list[str]:
    """json.dumps(_record_values(row, dataset), sort_keys=True, default=str) of each row (the text
    _row_hash hashes and record_history.values_json keeps), without a Python value per cell: each
    column's distinct values are encoded once (pd.factorize), each row is one % format."""
    names = sorted(business_columns(dataset))
    layout = "{" + ", ".join(json.dumps(name).replace("%", "%%") + ": %s" for name in names) + "}"
    columns = [_json_column(table, dataset, name) for name in names]
    if not columns:
        return [layout] * len(table)
    return [layout % row for row in zip(*columns)]


def _json_column(table: pd.DataFrame, dataset: str, name: str) -> list[str]:
    """The JSON text of one column's stored values (what _record_columns gives, json.dumps'd)."""
    ds = DATASETS[dataset]
    kind = ds.column(name).kind if name in ds.column_names else None
    source = name + DT_SUFFIX if kind == "date" else name
    if source not in table:
        return ["null"] * len(table)
    series = table[source]
    if kind == "date":  # json.dumps(d, default=str) of a date d is '"' + d.isoformat() + '"'
        encode = _json_dates
    elif kind == "age":
        encode = lambda values: [str(int(v)) for v in values]  # noqa: E731 - json.dumps of an int
    elif isinstance(series.dtype, pd.StringDtype) or (
            series.dtype == object and pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty")):
        # Text only: equal values are the same text (factorize would merge 1 and True).
        encode = lambda values: list(map(_json_text, values))  # noqa: E731
    else:
        return _json_values(_record_columns(table[[source]], dataset)[name])
    codes, uniques = pd.factorize(series)  # a missing value gets -1: "null", the last text
    texts = np.array([*encode(uniques), "null"], dtype=object)
    return texts[codes].tolist()


def _json_dates(values) -> list[str]:
    """The JSON text of each timestamp's date (as .dt.date, then json.dumps(..., default=str))."""
    dates = values.date if isinstance(values, pd.DatetimeIndex) else [v.date() for v in values]
    return ['"%s"' % d.isoformat() for d in dates]


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


def _replace_earlier(conn, table, marker: str, values: dict, inc: IncomingFile, file_id: int, dataset: str,
                     record_ids: list) -> int:
    """Mark the rows of `table` (quarantine or row_flags) for these records, from this
    partnership's earlier files (returns dated no later) and not yet marked, as replaced by this
    file: `marker` is the column that says so, `values` what is written."""
    rf = wh.return_files
    earlier_files = select(rf.c.file_id).where(
        rf.c.partnership_code == inc.partnership_code,
        rf.c.file_id != file_id,
        rf.c.return_date <= inc.return_date,
    )
    done = 0
    ids = sorted({r for r in record_ids if r is not None})
    for i in range(0, len(ids), 500):
        res = conn.execute(
            table.update()
            .where(and_(
                table.c.partnership_code == inc.partnership_code,
                table.c.dataset == dataset,
                table.c.record_id.in_(ids[i : i + 500]),
                table.c[marker].is_(None),
                table.c.file_id.in_(earlier_files),
            ))
            .values(**values)
        )
        done += res.rowcount
    return done


def _resolve_quarantine(conn, inc: IncomingFile, file_id: int, dataset: str, record_ids: list, now: datetime) -> int:
    """Mark earlier quarantined rows of these records resolved by this file (returns dated no later)."""
    return _replace_earlier(conn, wh.quarantine, "resolved_by_file_id",
                            {"resolved_by_file_id": file_id, "resolved_at": now}, inc, file_id, dataset, record_ids)


@dataclass
class _Batch:
    """One dataset's rows of every file of the run, in file order (as a file-by-file load meets them)."""

    dataset: str
    frame: pd.DataFrame
    files: np.ndarray  # per row: the position of its file in the run
    bad: np.ndarray  # per row: quarantined


def _keyed_batch(prepared: list[_Prepared], dataset: str, first_key: int) -> pd.DataFrame | None:
    """One dataset's rows of every file in file order, each with its row key (KEY_COLUMN, numbered
    from `first_key`) and its file's position (FILE_COLUMN): what validation and the load read.

    One concat, then the two columns set once over it: the frame that concatenating a copy of
    each file's table with its own two columns gives, without a copy and two column sets per file.
    Tables whose columns differ are keyed one by one first, as concat orders differing columns
    by where they first appear (so the two columns stay where they were)."""
    owners = [(i, prep.tables[dataset]) for i, prep in enumerate(prepared) if dataset in prep.tables]
    if not owners:
        return None
    tables = [t for _i, t in owners]
    sizes = [len(t) for t in tables]
    starts = np.cumsum([first_key, *sizes]).tolist()
    if any(not t.columns.equals(tables[0].columns) for t in tables[1:]):
        return pd.concat([t.assign(**{KEY_COLUMN: range(a, a + len(t)), FILE_COLUMN: i})
                          for (i, t), a in zip(owners, starts)], ignore_index=True)
    batch = pd.concat(tables, ignore_index=True)
    batch[KEY_COLUMN] = np.arange(first_key, starts[-1], dtype=np.int64)
    batch[FILE_COLUMN] = np.repeat(np.array([i for i, _t in owners], dtype=np.int64), sizes)
    return batch


def _batches(frames: dict[str, pd.DataFrame], failures: dict[str, dict[int, list[str]]]) -> list[_Batch]:
    """The load's view of each dataset's validated frame (see _keyed_batch): its rows' files, and
    which rows are quarantined."""
    out = []
    for dataset in DATASET_ORDER:
        frame = frames.get(dataset)
        if frame is None:
            continue
        files = frame[FILE_COLUMN].to_numpy(dtype=np.int64)
        bad_keys = [k for k, checks in failures.get(dataset, {}).items() if checks]
        bad = frame[KEY_COLUMN].isin(bad_keys).to_numpy(dtype=bool) if bad_keys else np.zeros(len(frame), dtype=bool)
        out.append(_Batch(dataset, frame, files, bad))
    return out


def _load_files(
    engine: Engine,
    prepared: list[_Prepared],
    failures: dict[str, dict[int, list[str]]],
    failed_rules: dict[str, dict[int, list[str]]],
    now: datetime,
    frames: dict[str, pd.DataFrame],
    flags: dict[str, dict[int, list[Flag]]] | None = None,
) -> list[FileOutcome]:
    """Load every new file of the run in one transaction: the tables end exactly as loading them
    one by one in order leaves them (the same ids too), with one statement per
    table for the run instead of several per file.

    Each case table gets, per record, the row of the newest return (the last file of that date),
    upserted once; the file records are inserted in one statement, in order (their ids); history and
    quarantine rows go in one insert each, in the order the files would have put them. Which
    quarantined rows each file corrects is worked out here, in file order (_resolve_quarantine's
    rule): this run's own rows are inserted already resolved, earlier runs' rows are updated.
    `frames`: each dataset's rows of every file, as validated (_keyed_batch), flagged cells blank.
    `flags`: dataset -> row key -> the `flag` rules each loaded row broke: one row_flags row each;
    which earlier flags each file supersedes is worked out like the quarantined rows it corrects.
    """
    if not prepared:
        return []
    flags = flags or {}
    code = prepared[0].incoming.partnership_code
    batches = _batches(frames, failures)
    outcomes = [FileOutcome(prep.incoming.safe_name, "failed", error=prep.error) for prep in prepared]
    for b in batches:
        read = np.bincount(b.files, minlength=len(prepared))
        bad = np.bincount(b.files, weights=b.bad, minlength=len(prepared))
        flagged = np.bincount(b.files, weights=_flagged(b, flags), minlength=len(prepared))
        for outcome, n, q, fl in zip(outcomes, read.tolist(), bad.tolist(), flagged.tolist()):
            outcome.rows_read += n
            outcome.rows_quarantined += int(q)
            outcome.rows_flagged += int(fl)
    for prep, outcome in zip(prepared, outcomes):
        outcome.rows_loaded = outcome.rows_read - outcome.rows_quarantined
        if prep.error is None:
            outcome.status = "loaded" if outcome.rows_quarantined == 0 else (
                "partial" if outcome.rows_loaded else "rejected")
            outcome.error = None
    at = "return_files"  # the table being written: named when the warehouse refuses something
    try:
        with engine.begin() as conn:
            pending = _pending_quarantine(conn, code)
            pending_flags = _pending_flags(conn, code)
            file_ids = _insert_file_records(conn, prepared, outcomes, now)
            for outcome, file_id in zip(outcomes, file_ids):
                outcome.file_id = file_id
            quarantined: list[tuple] = []  # (file position, dataset rank, row, quarantine row)
            history: list[tuple] = []  # (file position, dataset rank, start, end, dataset, its columns)
            earlier: dict[int, list] = {}  # file_id -> quarantine_ids of earlier runs it resolves
            flagged_rows: list[tuple] = []  # (file position, dataset rank, row, rule order, row_flags row)
            superseding: dict[int, list] = {}  # file_id -> flag_ids of earlier runs it supersedes
            for b in batches:
                rank = DATASET_ORDER.index(b.dataset)
                mine = _quarantine_rows(b, prepared, file_ids, failures, failed_rules, now)
                quarantined += [(f, rank, i, row) for f, i, row in mine]
                my_flags = _flag_rows(b, prepared, file_ids, flags.get(b.dataset) or {}, now)
                flagged_rows += [(f, rank, i, n, row) for n, (f, i, row) in enumerate(my_flags)]
                at = wh.CASE_TABLES[b.dataset].name
                valid = _load_valid(conn, b, prepared, file_ids, now)
                if valid is None:
                    continue
                files, ids, columns = valid
                bounds = np.flatnonzero(np.diff(files)) + 1
                starts, ends = [0, *bounds.tolist()], [*bounds.tolist(), len(files)]
                history += [(files[a], rank, a, z, b.dataset, columns) for a, z in zip(starts, ends)]
                _resolve_in_order(b.dataset, prepared, outcomes, pending, mine, files, ids, starts, ends, earlier, now)
                _resolve_in_order(b.dataset, prepared, outcomes, pending_flags, my_flags, files, ids, starts, ends,
                                  superseding, now, mark="superseded_by_file_id", stamp=None, count=False)
            quarantined.sort(key=lambda q: q[:3])
            at = wh.quarantine.name
            wh.insert_rows(conn, wh.quarantine, [q[3] for q in quarantined])
            flagged_rows.sort(key=lambda q: q[:4])
            at = wh.row_flags.name
            wh.insert_rows(conn, wh.row_flags, [q[4] for q in flagged_rows])
            for file_id, ids in superseding.items():
                for i in range(0, len(ids), 500):
                    conn.execute(wh.row_flags.update().where(wh.row_flags.c.flag_id.in_(ids[i : i + 500]))
                                 .values(superseded_by_file_id=file_id))
            history.sort(key=lambda h: h[:2])
            at = wh.record_history.name
            wh.insert_rows(conn, wh.record_history, _history_rows(code, history, now))
            q = wh.quarantine.c
            at = wh.quarantine.name
            for file_id, ids in earlier.items():
                for i in range(0, len(ids), 500):
                    conn.execute(wh.quarantine.update().where(q.quarantine_id.in_(ids[i : i + 500]))
                                 .values(resolved_by_file_id=file_id, resolved_at=now))
    except Exception as exc:  # noqa: BLE001 - reduced to its kind: a database error's text may quote a cell
        raise LoadError(_error_words(exc, at), data_problem=_data_problem(exc)) from None
    return outcomes


class LoadError(RuntimeError):
    """The warehouse refused a load. The message names the kind of error, its SQLSTATE and the
    table, never a value (a database's error text can quote the cell it refused). `data_problem`:
    the data was refused (a value, a constraint), as opposed to the warehouse failing (the
    connection lost, a lock): only the first is worth loading the files one by one."""

    def __init__(self, message: str, *, data_problem: bool):
        super().__init__(message)
        self.data_problem = data_problem


def _driver_error(exc: BaseException) -> BaseException:
    """The database driver's own exception (SQLAlchemy wraps it as .orig; COPY raises it bare)."""
    return getattr(exc, "orig", None) or exc


def _error_words(exc: BaseException, table: str) -> str:
    """'StringDataRightTruncation, SQLSTATE 22001, table notifications': the kind of error, its
    SQLSTATE (PostgreSQL) and the table being written, never the error's own text."""
    orig = _driver_error(exc)
    words = [type(orig).__name__]
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if isinstance(state, str) and state.isalnum() and len(state) == 5:
        words.append(f"SQLSTATE {state}")
    words.append(f"table {table}")
    return ", ".join(words)


def _data_problem(exc: BaseException) -> bool:
    """Whether the warehouse refused the data (a value out of range or too long, a NUL byte, a
    constraint, two rows with one key) rather than failing itself (OperationalError: the
    connection lost, a lock; InterfaceError; anything else, a fault in this code)."""
    import sqlalchemy.exc as sa_exc

    if isinstance(exc, sa_exc.DBAPIError):
        return isinstance(exc, (sa_exc.DataError, sa_exc.IntegrityError)) and not exc.connection_invalidated
    if isinstance(exc, ValueError):  # upsert's two rows with one key; psycopg's NUL in text (a DataError)
        return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover - SQLite-only installs
        return False
    return isinstance(exc, (psycopg.DataError, psycopg.IntegrityError))


def _load_isolated(engine: Engine, prepared: list[_Prepared], failures: dict[str, dict[int, list[str]]],
                   failed_rules: dict[str, dict[int, list[str]]], now: datetime,
                   frames: dict[str, pd.DataFrame], flags: dict[str, dict[int, list[Flag]]] | None = None,
                   ) -> list[FileOutcome]:
    """_load_files over the run's files; when the warehouse refuses their data, each file again in
    its own transaction, in order (which leaves the tables as the run's one transaction would), so
    that only the file at fault fails: it is recorded `failed` with the kind of error, its SQLSTATE
    and the table (no value), and the others load. Any other failure is raised (as LoadError, its
    text reduced likewise): the task fails and Airflow retries it."""
    try:
        return _load_files(engine, prepared, failures, failed_rules, now, frames, flags)
    except LoadError as exc:
        if not exc.data_problem or len(prepared) < 2:
            if not exc.data_problem:
                raise
            return [_record_refused(engine, prepared[0], str(exc), now)]
        log.warning("%s: the warehouse refused the run's %d new files loaded together (%s): loading them one by one",
                    prepared[0].incoming.partnership_code, len(prepared), exc)
    outcomes: list[FileOutcome] = []
    for i, prep in enumerate(prepared):
        own = {dataset: _file_rows(frame, i) for dataset, frame in frames.items()}
        own = {dataset: frame for dataset, frame in own.items() if len(frame)}
        try:
            outcomes += _load_files(engine, [prep], failures, failed_rules, now, own, flags)
        except LoadError as exc:
            if not exc.data_problem:
                raise
            outcomes.append(_record_refused(engine, prep, str(exc), now))
    return outcomes


def _file_rows(frame: pd.DataFrame, position: int) -> pd.DataFrame:
    """The rows of one file (its position in the run) of a validated batch, as a run of that file
    alone would have them (file position 0; row keys kept, so validation's verdicts still apply)."""
    mine = frame[frame[FILE_COLUMN].to_numpy() == position].reset_index(drop=True)
    mine[FILE_COLUMN] = 0
    return mine


def _record_refused(engine: Engine, prep: _Prepared, why: str, now: datetime) -> FileOutcome:
    """Record a file whose rows the warehouse refused as failed (its return_files row only)."""
    inc = prep.incoming
    log.warning("%s: %s: the warehouse refused %s (%s); nothing of it was loaded",
                inc.partnership_code, inc.safe_name, "its record" if prep.error else "its rows", why)
    # A file that failed already (no rows) keeps its own reason: only its record was refused.
    error = prep.error or f"the warehouse refused the file's rows ({why}): nothing of it was loaded"
    failed = _Prepared(inc, prep.raw_path, dropped=prep.dropped, notes=prep.notes, error=error)
    [outcome] = _load_files(engine, [failed], {}, {}, now, {})
    return outcome


def _insert_file_records(conn, prepared: list[_Prepared], outcomes: list[FileOutcome], now: datetime) -> list[int]:
    """The files' return_files rows (with their final counts and status); their file_ids. The
    files are one partnership's (as everything _load_files does assumes).

    One insert for all, in file order (COPY on PostgreSQL, where the serial column numbers rows
    in the order they come; executemany on SQLite): the ids inserting them one by one gives. The
    ids are then read back by checksum (unique per partnership), not one round trip per file."""
    incs = [prep.incoming for prep in prepared]
    wh.insert_rows(conn, wh.return_files, wh.ColumnRows({
        "partnership_code": incs[0].partnership_code,
        "file_name": [inc.safe_name for inc in incs],
        "sha256": [inc.sha256 for inc in incs],
        "size_bytes": [inc.size_bytes for inc in incs],
        "return_date": [inc.return_date for inc in incs],
        "received_at": now,
        "raw_path": [str(prep.raw_path) for prep in prepared],
        "datasets": [",".join(d for d in DATASET_ORDER if d in prep.tables) or None for prep in prepared],
        "dropped_columns": [", ".join(sorted(prep.dropped)) or None for prep in prepared],
        "notes": ["\n".join(prep.notes) or None for prep in prepared],
        "rows_read": [o.rows_read for o in outcomes],
        "rows_loaded": [o.rows_loaded for o in outcomes],
        "rows_quarantined": [o.rows_quarantined for o in outcomes],
        "rows_flagged": [o.rows_flagged for o in outcomes],
        "status": [o.status for o in outcomes],
        "error": [o.error for o in outcomes],
    }, len(prepared)))
    rf = wh.return_files.c
    shas = [inc.sha256 for inc in incs]
    ids: dict[str, int] = {}
    for i in range(0, len(shas), 500):
        ids.update(conn.execute(select(rf.sha256, rf.file_id).where(
            rf.partnership_code == incs[0].partnership_code, rf.sha256.in_(shas[i : i + 500]))).all())
    return [ids[sha] for sha in shas]


def _quarantine_rows(b: _Batch, prepared: list[_Prepared], file_ids: list[int],
                     failures: dict, failed_rules: dict, now: datetime) -> list[tuple[int, int, dict]]:
    """(file position, row, quarantine row) of each bad row of the batch, not yet resolved."""
    at = np.flatnonzero(b.bad)
    if not at.size:
        return []
    dataset, ds = b.dataset, DATASETS[b.dataset]
    bad, bad_rules = failures.get(dataset, {}), failed_rules.get(dataset, {})
    # The bad rows as to_dict(orient="records") gives them, with only the columns _raw_values and
    # the quarantine record read.
    wanted = [c for c in b.frame.columns if c in _quarantine_columns(dataset)]
    picked = {c: b.frame[c].take(at).tolist() for c in wanted}
    raw = _raw_values_columns(picked, dataset, len(at))
    record_ids = picked.get(ds.id_column, [None] * len(at))
    out = []
    for j, (i, f) in enumerate(zip(at.tolist(), b.files[at].tolist())):
        key = int(picked[KEY_COLUMN][j])
        inc = prepared[f].incoming
        # An id that broke the identifier rule is withheld ("withheld: row N"), here and in raw_values.
        record_id, raw_values = quarantine_record(dataset, bad_rules.get(key, []), record_ids[j], raw[j],
                                                  int(picked[ROW_COLUMN][j]))
        out.append((f, i, {
            "partnership_code": inc.partnership_code, "dataset": dataset, "file_id": file_ids[f],
            "file_name": inc.safe_name, "row_number": int(picked[ROW_COLUMN][j]),
            "record_id": record_id, "failed_checks": "\n".join(bad[key]),
            "failed_rules": "\n".join(bad_rules.get(key, [])),
            "raw_values": raw_values, "quarantined_at": now,
            "resolved_by_file_id": None, "resolved_at": None,
        }))
    return out


def _raw_values_columns(picked: dict[str, list], dataset: str, n: int) -> list[str]:
    """_raw_values of each of `n` rows given as columns (name -> values), a column at a time."""
    ds = DATASETS[dataset]
    names = business_columns(dataset)
    layout = "{" + ", ".join(json.dumps(c, ensure_ascii=False).replace("%", "%%") + ": %s" for c in names) + "}"
    columns = []
    for col in names:
        source = col + RAW_SUFFIX if col in ds.column_names and ds.column(col).kind == "date" else col
        values = picked.get(source)
        columns.append(["null"] * n if values is None else _raw_json(values))
    return [layout % row for row in zip(*columns)]


def _raw_json(values: list) -> list[str]:
    """json.dumps(_value(v), default=str, ensure_ascii=False) of each value, as _raw_values writes it."""
    return _encoded_each(values, _json_text_unicode, lambda v: json.dumps(_value(v), default=str, ensure_ascii=False))


def _load_valid(conn, b: _Batch, prepared: list[_Prepared], file_ids: list[int], now: datetime):
    """Upsert the batch's valid rows into the case table, the newest return's row per record.

    Returns (file position per valid row, record ids, history columns), or None: no valid rows.
    A record twice in one file is refused as the per-file upsert refused it (ValueError).
    """
    good = np.flatnonzero(~b.bad)
    if not good.size:
        return None
    dataset, id_column = b.dataset, DATASETS[b.dataset].id_column
    valid = b.frame.take(good)
    files = b.files[good]
    texts = _json_texts(valid, dataset)
    digests = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
    ids = valid[id_column].tolist()
    if valid[id_column].isna().any():
        ids = [None if _value(v) is None else v for v in ids]
    positions = files.tolist()
    if len(set(zip(positions, ids))) != len(ids):
        raise ValueError(f"upsert into {dataset}: two rows have the same key (partnership_code, {id_column})")
    dates = [prep.incoming.return_date for prep in prepared]
    newest: dict = {}  # record id -> (return date, row): the row the per-file upserts would leave
    for i, (rid, f) in enumerate(zip(ids, positions)):
        current = newest.get(rid)
        if current is None or current[0] <= dates[f]:
            newest[rid] = (dates[f], i)
    rows = sorted(i for _d, i in newest.values())
    winners = valid.take(rows)
    source_rows = [int(r) for r in winners[ROW_COLUMN].tolist()]
    loads = wh.ColumnRows({
        "partnership_code": prepared[0].incoming.partnership_code, **_record_columns(winners, dataset),
        "return_date": [dates[positions[i]] for i in rows],
        "source_file_id": [file_ids[positions[i]] for i in rows], "source_row": source_rows,
        "row_hash": [digests[i] for i in rows], "loaded_at": now,
    }, len(rows))
    wh.upsert(conn, wh.CASE_TABLES[dataset], loads, ["partnership_code", id_column], keep_newer="return_date")
    return files, ids, {"record_id": ids, "row_hash": digests, "values_json": texts,
                        "file_id": [file_ids[f] for f in positions], "return_date": [dates[f] for f in positions]}


def _resolve_in_order(dataset: str, prepared: list[_Prepared], outcomes: list[FileOutcome],
                      pending: dict[str, dict], mine: list[tuple[int, int, dict]], files: np.ndarray, ids: list,
                      starts: list[int], ends: list[int], earlier: dict[int, list], now: datetime, *,
                      mark: str = "resolved_by_file_id", stamp: str | None = "resolved_at", count: bool = True) -> None:
    """Which quarantined rows each file of the batch corrects, file by file in order: the
    unresolved rows of its loaded records from files dated no later than it (not its own), those
    of earlier runs (`pending`) and those of the files before it in this run (`mine`).
    The same for row_flags (`mark` superseded_by_file_id, no `stamp`, not counted as resolved)."""
    waiting = pending.setdefault(dataset, {})  # record id -> [(return date, quarantine_id or row)]
    by_file: dict[int, list[dict]] = {}
    for f, _i, row in mine:
        by_file.setdefault(f, []).append(row)
    valid_at = {int(files[a]): (a, z) for a, z in zip(starts, ends)}
    for f in sorted(set(valid_at) | set(by_file)):
        prep, outcome = prepared[f], outcomes[f]
        day = prep.incoming.return_date
        if f in valid_at and day is not None and waiting:
            a, z = valid_at[f]
            for rid in ids[a:z]:
                rows = waiting.get(rid) if rid is not None else None
                if not rows:
                    continue
                kept = []
                for when, row in rows:
                    if when is None or when > day:
                        kept.append((when, row))
                    elif isinstance(row, dict):
                        row[mark] = outcome.file_id
                        if stamp:
                            row[stamp] = now
                        outcome.rows_resolved += count
                    else:
                        earlier.setdefault(outcome.file_id, []).append(row)
                        outcome.rows_resolved += count
                waiting[rid] = kept
        for row in by_file.get(f, ()):
            if row["record_id"] is not None:
                waiting.setdefault(row["record_id"], []).append((day, row))


def _history_rows(code: str, parts: list[tuple], now: datetime) -> wh.ColumnRows:
    """record_history rows of the run, in the order of `parts` (slices of each batch's columns)."""
    out: dict[str, list] = {"dataset": [], "record_id": [], "file_id": [], "return_date": [], "row_hash": [],
                            "values_json": []}
    for _f, _rank, a, z, dataset, columns in parts:
        out["dataset"] += [dataset] * (z - a)
        for name in ("record_id", "file_id", "return_date", "row_hash", "values_json"):
            out[name] += columns[name][a:z]
    n = len(out["dataset"])
    return wh.ColumnRows({"partnership_code": code, **out, "loaded_at": now}, n)


def _pending_quarantine(conn, partnership_code: str) -> dict[str, dict]:
    """dataset -> record id -> [(return date of its file, quarantine_id)]: the partnership's
    quarantined rows not yet resolved, that a later file could correct."""
    q, rf = wh.quarantine.c, wh.return_files.c
    out: dict[str, dict] = {}
    for dataset, record_id, quarantine_id, day in conn.execute(
        select(q.dataset, q.record_id, q.quarantine_id, rf.return_date)
        .join_from(wh.quarantine, wh.return_files, rf.file_id == q.file_id)
        .where(q.partnership_code == partnership_code, q.resolved_by_file_id.is_(None), q.record_id.is_not(None),
               rf.partnership_code == partnership_code)
        .order_by(q.quarantine_id)
    ):
        out.setdefault(dataset, {}).setdefault(record_id, []).append((day, quarantine_id))
    return out


def _pending_flags(conn, partnership_code: str) -> dict[str, dict]:
    """dataset -> record id -> [(return date of its file, flag_id)]: the partnership's current
    flags (not superseded), that a later file's row for the record supersedes."""
    fl, rf = wh.row_flags.c, wh.return_files.c
    out: dict[str, dict] = {}
    for dataset, record_id, flag_id, day in conn.execute(
        select(fl.dataset, fl.record_id, fl.flag_id, rf.return_date)
        .join_from(wh.row_flags, wh.return_files, rf.file_id == fl.file_id)
        .where(fl.partnership_code == partnership_code, fl.superseded_by_file_id.is_(None),
               rf.partnership_code == partnership_code)
        .order_by(fl.flag_id)
    ):
        out.setdefault(dataset, {}).setdefault(record_id, []).append((day, flag_id))
    return out


def _supersede_flags(conn, inc: IncomingFile, file_id: int, dataset: str, record_ids: list) -> int:
    """Mark earlier current flags of these records superseded by this file (returns dated no
    later): _resolve_quarantine's rule, for row_flags (the file-by-file baseline uses it)."""
    return _replace_earlier(conn, wh.row_flags, "superseded_by_file_id", {"superseded_by_file_id": file_id},
                            inc, file_id, dataset, record_ids)


def blank_flagged(frame: pd.DataFrame, dataset: str, flags: dict[int, list[Flag]]) -> pd.DataFrame:
    """Store blank, in `frame` itself (which has KEY_COLUMN), each cell a flag says cannot be used
    as sent (quality.blanked_column: a date that is not one or after the period, a code, an age,
    an over-long text, an unapproved author). A date's parsed companion (DT_SUFFIX) is what is
    stored, so it is blanked too; its raw text (RAW_SUFFIX) stays, for messages. Returns `frame`."""
    by_column: dict[str, list[int]] = {}
    for key, found in flags.items():
        for flag in found:
            col = blanked_column(flag.rule_id)
            if col is not None:
                by_column.setdefault(col, []).append(key)
    ds = DATASETS[dataset]
    for col, keys in by_column.items():
        if col not in frame.columns:
            continue
        mask = frame[KEY_COLUMN].isin(keys).to_numpy()
        if ds.column(col).kind == "date" and col + DT_SUFFIX in frame.columns:
            frame.loc[mask, col + DT_SUFFIX] = pd.NaT
        if frame[col].dtype != object:
            frame[col] = frame[col].astype(object)
        frame.loc[mask, col] = None
    return frame


def _flagged(b: _Batch, flags: dict[str, dict[int, list[Flag]]]) -> np.ndarray:
    """Per row of the batch: loaded with at least one flag (1.0) or not (0.0)."""
    mine = flags.get(b.dataset) or {}
    if not mine:
        return np.zeros(len(b.frame))
    return (b.frame[KEY_COLUMN].isin(list(mine)).to_numpy() & ~b.bad).astype(float)


def _flag_rows(b: _Batch, prepared: list[_Prepared], file_ids: list[int], flags: dict[int, list[Flag]],
               now: datetime) -> list[tuple[int, int, dict]]:
    """(file position, row, row_flags row) of each flag of the batch's loaded rows, in row then rule
    order. The record id is the row's id: a flagged row has a valid one (a blank, withheld or
    repeated id rejects the row)."""
    if not flags:
        return []
    at = np.flatnonzero(b.frame[KEY_COLUMN].isin(list(flags)).to_numpy() & ~b.bad)
    if not at.size:
        return []
    ds = DATASETS[b.dataset]
    keys = b.frame[KEY_COLUMN].take(at).tolist()
    ids = b.frame[ds.id_column].take(at).tolist()
    numbers = b.frame[ROW_COLUMN].take(at).tolist()
    out = []
    for i, key, record_id, number, f in zip(at.tolist(), keys, ids, numbers, b.files[at].tolist()):
        inc = prepared[f].incoming
        for flag in flags[int(key)]:
            out.append((f, i, {
                "partnership_code": inc.partnership_code, "dataset": b.dataset, "record_id": record_id,
                "file_id": file_ids[f], "file_name": inc.safe_name, "row_number": int(number),
                "rule_id": flag.rule_id, "columns": ",".join(rule_columns(flag.rule_id)),
                "blanked": int(blanked_column(flag.rule_id) is not None),
                "original_text": flag.original_text, "message": flag.message, "flagged_at": now,
                "superseded_by_file_id": None,
            }))
    return out


@gc_paused()  # millions of short-lived objects: see reviews.core.gc_pause
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
        prep = _landed(inc, raw_root)
        if prep.incoming.sha256 in seen or prep.incoming.sha256 in batch_hashes:
            summary.files_skipped_already_loaded += 1  # could not be copied, and that is recorded already
            continue
        batch_hashes.add(prep.incoming.sha256)
        _read(prep, partnership, cfg, key, clean=False)
        prepared.append(prep)
    _clean_all(prepared, partnership, cfg, key)
    summary.free_text_redactions += sum(sum(p.redactions.values()) for p in prepared if p.error is None)
    summary.files_new = len(prepared)

    # Validate each dataset once over all new files (fast), then load file by file. Datasets go in
    # load order, so the records a later dataset refers to are known (warehouse or valid here).
    failures: dict[str, dict[int, list[str]]] = {}  # rows to quarantine (a `reject` rule broken)
    failed_rules: dict[str, dict[int, list[str]]] = {}
    flags: dict[str, dict[int, list[Flag]]] = {}  # rows loaded with `flag` rules broken
    known_ids, dates = _known_records(engine, partnership_code)
    stamp = clock()
    next_key = 0
    frames: dict[str, pd.DataFrame] = {}  # dataset -> its rows of every file, as validated
    for dataset in DATASET_ORDER:
        batch = _keyed_batch(prepared, dataset, next_key)
        if batch is None:
            continue
        next_key += len(batch)
        frames[dataset] = batch
        context = RuleContext(as_of=as_of, known_ids=known_ids, dates=dates)
        result = validate(batch, dataset, cfg, context)
        failures[dataset], failed_rules[dataset] = result.rejections()
        flags[dataset] = result.flags
        blank_flagged(batch, dataset, result.flags)  # before later datasets' cross-dataset rules read it
        _remember_valid(batch, dataset, failures[dataset], known_ids, dates)
        for rule, n in result.rule_counts.items():
            if n:
                summary.rule_counts[rule] = summary.rule_counts.get(rule, 0) + n
        if docs_dir is not None:
            page = write_data_docs(result, Path(docs_dir) / f"{as_of.isoformat()}_{stamp:%Y%m%dT%H%M%S}" / f"{dataset}.html")
            if page is not None:
                summary.data_docs.append(str(page))

    now = clock()
    for outcome in _load_isolated(engine, prepared, failures, failed_rules, now, frames, flags):
        summary.files.append(outcome)
        summary.rows_read += outcome.rows_read
        summary.rows_loaded += outcome.rows_loaded
        summary.rows_flagged += outcome.rows_flagged
        summary.rows_quarantined += outcome.rows_quarantined
        summary.rows_resolved += outcome.rows_resolved
        summary.files_failed += outcome.status == "failed"
        log.info(
            "%s: %s %s (read %d, loaded %d, quarantined %d)%s%s",
            partnership_code, outcome.file_name, outcome.status, outcome.rows_read, outcome.rows_loaded,
            outcome.rows_quarantined, f", {outcome.rows_flagged} loaded row(s) flagged" if outcome.rows_flagged else "",
            f": {outcome.error}" if outcome.error else "",
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
    valid = valid[valid[id_col].notna().to_numpy()]  # a row without its id is known to nobody
    ids = valid[id_col].tolist()
    if dataset in known:
        known[dataset].update(ids)
    looked_up = dates.get(dataset, {})
    if not looked_up:
        return
    returned = valid[RETURN_DATE_COLUMN].dt.date.tolist()  # dates a column at a time, not a Timestamp per cell
    for col, lookup in looked_up.items():
        series = valid[col + DT_SUFFIX]
        values = series.dt.date.tolist()
        if series.hasnans:
            values = [None if blank else v for v, blank in zip(values, series.isna().tolist())]
        for rid, ret, value in zip(ids, returned, values):
            lookup.offer(rid, ret, value)
