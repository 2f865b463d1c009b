"""The load's fast paths give what the straightforward code gave (no timings: those are `make bench`).

- `_keyed_batch`: one concat and two columns set once, against a copy of each file's table with
  its own row keys and file position, concatenated (what ingest_partnership did);
- `_remember_valid`: dates taken a column at a time, against the loop over every row;
- `_insert_file_records`: every file's `return_files` row in one insert, ids read back, against one
  INSERT ... RETURNING per file, on SQLite and PostgreSQL (the same rows, the same ids).
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from reviews.returns import ingest
from reviews.core import warehouse as wh
from reviews.returns.cleaning import DT_SUFFIX, RETURN_DATE_COLUMN
from reviews.returns.landing import IncomingFile
from reviews.returns.quality import KEY_COLUMN
from reviews.core.template import DATASET_ORDER

NOW = datetime(2026, 1, 1, 6, 0, tzinfo=timezone.utc)


def _prep(i: int, tables: dict, return_date: date | None = date(2024, 3, 31), **kw) -> ingest._Prepared:
    inc = IncomingFile("la_001", Path(f"/in/f{i}.csv"), f"f{i}.csv", f"{i:064x}", 100 + i, None, return_date, "csv",
                       None)
    return ingest._Prepared(inc, Path(f"/raw/la_001/f{i}.csv"), tables=tables, **kw)


def _reference_batch(prepared, dataset, first_key):
    """What ingest_partnership did (the naive baseline still does it): each file's table copied,
    given its keys and file, concatenated."""
    from reviews_dev.bench.national_bench import naive_keyed_tables

    keyed = naive_keyed_tables(prepared, dataset, first_key)
    return pd.concat(list(keyed.values()), ignore_index=True) if keyed else None


def _table(n: int, seed: int, columns=("notification_id", "sex", "incident_date")) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = {}
    for c in columns:
        if c.endswith("_date"):
            out[c] = pd.to_datetime(pd.Series(rng.integers(0, 900, n)), unit="D", origin="2020-01-01")
        else:
            out[c] = pd.Series([None if k % 5 == 0 else f"v{k}\t{seed}" for k in rng.integers(0, 50, n)], dtype=object)
    return pd.DataFrame(out)


@pytest.mark.parametrize("layout", ["same columns", "one file lacks a column", "one file", "empty table"])
def test_keyed_batch_is_the_concat_of_keyed_copies(layout):
    tables = [_table(7, 1), _table(3, 2), _table(5, 3)]
    if layout == "one file lacks a column":
        tables[1] = tables[1].drop(columns=["sex"]).assign(extra="x")
    elif layout == "one file":
        tables = tables[:1]
    elif layout == "empty table":
        tables[1] = tables[1].iloc[0:0]
    # a failed file (no tables) and a file without this dataset between the others
    prepared = [_prep(0, {"notifications": tables[0]}), _prep(1, {}), _prep(2, {"learning": _table(2, 9)})]
    prepared += [_prep(3 + i, {"notifications": t}) for i, t in enumerate(tables[1:])]
    before = [p.tables["notifications"].copy() for p in prepared if "notifications" in p.tables]
    got = ingest._keyed_batch(prepared, "notifications", 40)
    pd.testing.assert_frame_equal(got, _reference_batch(prepared, "notifications", 40))
    assert got[KEY_COLUMN].tolist() == list(range(40, 40 + sum(len(t) for t in tables)))
    after = [p.tables["notifications"] for p in prepared if "notifications" in p.tables]
    for a, b in zip(before, after):  # the files' own tables are left as they were
        pd.testing.assert_frame_equal(a, b)
    assert ingest._keyed_batch(prepared, "practice_reviews", 0) is None


def _reference_remember(batch, dataset, bad, known, dates):
    """_remember_valid as it was: a Timestamp per cell, a check per row."""
    id_col = ingest.DATASETS[dataset].id_column
    valid = batch[~batch[KEY_COLUMN].isin(list(bad))]
    if dataset in known:
        known[dataset].update(v for v in valid[id_col] if ingest._value(v) is not None)
    for col, lookup in dates.get(dataset, {}).items():
        for rid, ret, value in zip(valid[id_col], valid[RETURN_DATE_COLUMN], valid[col + DT_SUFFIX]):
            if ingest._value(rid) is not None:
                lookup.offer(rid, ret.date(), None if pd.isna(value) else value.date())


def _lookups(dataset_dates: list[str]):
    dated = {}
    for col in dataset_dates:
        lookup = ingest._Dated()
        lookup.offer("N-1", date(2024, 1, 1), date(2019, 5, 5))  # already known, from an earlier return
        lookup.offer("N-9", date(2030, 1, 1), None)  # a newer return than any here: kept
        dated[col] = lookup
    return dated


@pytest.mark.parametrize("with_blanks", [True, False])
def test_remember_valid_keeps_what_the_row_loop_kept(with_blanks):
    ids = ["N-1", "N-2", None, "N-1", np.nan, "N-3", "N-2", "", "N-9", "N-4", "N-1", "N-3"]
    n = len(ids)
    returned = pd.to_datetime(["2024-03-31", "2024-03-31", "2024-03-31", "2024-06-30", "2024-06-30", "2024-06-30",
                               "2024-03-31", "2024-06-30", "2024-06-30", "2023-12-31", "2024-06-30", "2024-01-01"])
    when = pd.to_datetime(["2020-01-01", None, "2020-01-03", "2020-02-01", "2020-01-05", None, "2020-01-07",
                           "2020-01-08", "2020-01-09", "2020-01-10", "2020-03-01", "2020-01-12"])
    if not with_blanks:
        ids = [f"N-{i % 4}" for i in range(n)]
        when = when.fillna(pd.Timestamp("2021-01-01"))
    batch = pd.DataFrame({"notification_id": pd.Series(ids, dtype=object), RETURN_DATE_COLUMN: returned,
                          "aware_date" + DT_SUFFIX: when, "notified_date" + DT_SUFFIX: when[::-1].to_numpy(),
                          KEY_COLUMN: np.arange(100, 100 + n)})
    bad = {101: ["a failed check"], 104: [], 110: ["another"]}  # a key with no checks still counts as bad here
    results = []
    for remember in (ingest._remember_valid, _reference_remember):
        known = {"notifications": {"N-0"}, "rapid_reviews": {"R-1"}}
        dates = {"notifications": _lookups(["aware_date", "notified_date"])}
        remember(batch, "notifications", bad, known, dates)
        remember(batch, "learning", bad, known, dates)  # nobody refers to it: nothing to do
        results.append((known, {c: (dict(v), v.return_dates) for c, v in dates["notifications"].items()}))
    assert results[0] == results[1]
    if with_blanks:  # N-1: the newest valid row (row 10 is bad); N-9: an earlier run's newer return
        aware = results[0][1]["aware_date"][0]
        assert aware["N-1"] == date(2020, 2, 1) and aware["N-9"] is None and "N-2" in aware


def _file_rows(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(wh.return_files).order_by(wh.return_files.c.file_id))]


def _prepared_files() -> tuple[list[ingest._Prepared], list[ingest.FileOutcome]]:
    texts = ["plain", "tab\there", "new\nline\r\n", "back\\slash \\N", "Café ✓", ""]
    prepared, outcomes = [], []
    for i in range(7):
        tables = {d: pd.DataFrame() for d in DATASET_ORDER[: i % 4]}
        prep = _prep(i, tables, return_date=None if i == 5 else date(2024, 1 + i, 1),
                     dropped={texts[i % 6], "x"} if i % 2 else set(), notes=[texts[(i + 1) % 6], texts[i % 6]][: i % 3])
        prepared.append(prep)
        outcomes.append(ingest.FileOutcome(prep.incoming.safe_name, ("loaded", "partial", "rejected", "failed")[i % 4],
                                           rows_read=i * 10, rows_loaded=i * 7, rows_quarantined=i * 3, rows_flagged=i,
                                           error=texts[i % 6] + " error" if i % 4 == 3 else None))
    return prepared, outcomes


def test_file_records_in_one_insert_get_the_ids_and_rows_of_one_insert_each(two_engines):
    fast, slow = two_engines
    prepared, outcomes = _prepared_files()
    other = [_prep(90 + i, {}) for i in range(2)]  # files already there (ids to continue from)
    for engine in (fast, slow):
        with engine.begin() as conn:
            for prep in other:
                conn.execute(sa.insert(wh.return_files), {
                    "partnership_code": "la_002", "file_name": "old", "sha256": prep.incoming.sha256, "size_bytes": 1,
                    "received_at": NOW, "raw_path": "r", "status": "loaded"})
    with fast.begin() as conn:
        got = ingest._insert_file_records(conn, prepared, outcomes, NOW)
    with slow.begin() as conn:
        expected = [_reference_file_record(conn, prep, outcome, NOW) for prep, outcome in zip(prepared, outcomes)]
    assert got == expected == list(range(3, 3 + len(prepared)))
    assert _file_rows(fast) == _file_rows(slow)


def _reference_file_record(conn, prep, outcome, now) -> int:
    """One file's row, inserted on its own (as _load_files did per file)."""
    inc = prep.incoming
    return conn.execute(sa.insert(wh.return_files).returning(wh.return_files.c.file_id), {
        "partnership_code": inc.partnership_code, "file_name": inc.safe_name, "sha256": inc.sha256,
        "size_bytes": inc.size_bytes, "return_date": inc.return_date, "received_at": now,
        "raw_path": str(prep.raw_path), "datasets": ",".join(d for d in DATASET_ORDER if d in prep.tables) or None,
        "dropped_columns": ", ".join(sorted(prep.dropped)) or None, "notes": "\n".join(prep.notes) or None,
        "rows_read": outcome.rows_read, "rows_loaded": outcome.rows_loaded,
        "rows_quarantined": outcome.rows_quarantined, "rows_flagged": outcome.rows_flagged,
        "status": outcome.status, "error": outcome.error,
    }).scalar_one()


@pytest.mark.postgres
def test_ensure_schema_does_not_wait_for_another_tasks_open_load(postgres_url):
    """Concurrent ingest tasks each call ensure_schema: with every index there, it must not take
    a lock that waits for another task's open load (CREATE INDEX IF NOT EXISTS did), and a
    dropped index is still made again."""
    import sqlalchemy as sa

    from reviews.core import warehouse as wh

    engine = wh.make_engine(postgres_url)
    wh.ensure_schema(engine)
    loading = engine.connect()
    tx = loading.begin()
    loading.execute(sa.text("insert into quarantine (partnership_code, dataset, file_id, file_name, row_number, "
                            "failed_checks, raw_values, quarantined_at) values ('x', 'notifications', 1, 'f', 2, "
                            "'c', '{}', now())"))
    try:
        other = wh.make_engine(postgres_url)

        @sa.event.listens_for(other, "connect")
        def _no_waiting(dbapi_conn, _record):
            with dbapi_conn.cursor() as cur:
                cur.execute("set lock_timeout = '2s'")

        wh.ensure_schema(other)  # raised "canceling statement due to lock timeout" before
        other.dispose()
    finally:
        tx.rollback()
        loading.close()
    with engine.begin() as conn:
        conn.execute(sa.text("drop index ix_quarantine_record"))
    wh.ensure_schema(engine)
    with engine.connect() as conn:
        assert "ix_quarantine_record" in {ix["name"] for ix in sa.inspect(conn).get_indexes("quarantine")}
    engine.dispose()


@pytest.mark.postgres
def test_a_warehouse_made_with_a_32_bit_size_column_is_widened(postgres_url):
    """return_files.size_bytes became 64-bit (a file of several GB is recorded with its size):
    ensure_schema widens the column of a PostgreSQL warehouse made before, once."""
    import sqlalchemy as sa

    engine = wh.make_engine(postgres_url)
    wh.ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE return_files ALTER COLUMN size_bytes TYPE integer"))
    wh.ensure_schema(engine)
    with engine.connect() as conn:
        kind = conn.execute(sa.text("SELECT data_type FROM information_schema.columns "
                                    "WHERE table_name = 'return_files' AND column_name = 'size_bytes'")).scalar_one()
    engine.dispose()
    assert kind == "bigint"
