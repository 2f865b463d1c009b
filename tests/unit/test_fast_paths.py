"""The national-scale fast paths (issue 8) give exactly what the straightforward code gave.

Not timings (those are `make bench`): the same tables, rows, texts and hashes.
"""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pytest
import sqlalchemy as sa

from reviews.core import warehouse as wh

NOW = datetime(2026, 1, 1, 6, 0, tzinfo=timezone.utc)
TEXTS = ["plain", "tab\there", "new\nline", "back\\slash", "cr\rx", "quote \" and ' ", "Café ünïcode ✓", "", None,
         "\\N", "line one\r\nline two"]


def _case_rows(n: int, offset: int, return_date: date, file_id: int) -> list[dict]:
    rows = []
    for i in range(n):
        k = offset + i
        rows.append({
            "partnership_code": "la_001" if k % 3 else "la_002", "notification_id": f"LA-N-{k:05d}",
            "child_key": f"{k:032x}", "incident_date": date(2020, 1, 1) + timedelta(days=k % 400),
            "aware_date": date(2020, 2, 1) + timedelta(days=k % 300), "notified_date": None if k % 4 == 0 else date(2020, 3, 1),
            "incident_type": ("death", "serious_harm", "other")[k % 3], "age_years": None if k % 7 == 0 else k % 18,
            "sex": TEXTS[k % len(TEXTS)], "ethnicity": TEXTS[(k + 3) % len(TEXTS)], "disability": "Y",
            "looked_after": "N", "cp_plan": "unknown", "cin_plan": "N", "known_to_csc": "Y",
            "return_date": return_date, "source_file_id": file_id, "source_row": i + 2, "row_hash": f"{k:064x}",
            "loaded_at": NOW + timedelta(seconds=file_id),
        })
    return rows


def _snapshot(engine, table) -> list[tuple]:
    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(sa.select(table)))


def _reference_upsert(conn, table, rows, keys, keep_newer):
    """What ingest did before ON CONFLICT: read the current rows, drop the rows an existing newer
    row wins over, delete-then-insert the rest."""
    current = wh.existing_keys(conn, table, keys, {})
    kept = [r for r in rows if (c := current.get(tuple(r[k] for k in keys))) is None or c[keep_newer] <= r[keep_newer]]
    if kept:
        wh._delete_then_insert(conn, table, kept, keys)


def test_upsert_gives_the_tables_delete_then_insert_gave(two_engines):
    fast, slow = two_engines
    keys = ["partnership_code", "notification_id"]
    batches = [  # overlapping keys, returns out of date order, rows given as dicts and as columns
        _case_rows(300, 0, date(2024, 4, 10), 1),
        _case_rows(300, 150, date(2024, 7, 10), 2),
        _case_rows(200, 100, date(2024, 1, 10), 3),  # older than what is there: must not replace it
        _case_rows(100, 250, date(2024, 7, 10), 4),  # same return date: replaces
    ]
    for i, rows in enumerate(batches):
        given = rows if i % 2 == 0 else wh.ColumnRows({k: [r[k] for r in rows] for k in rows[0]}, len(rows))
        with fast.begin() as conn:
            wh.upsert(conn, wh.notifications, given, keys, keep_newer="return_date")
        with slow.begin() as conn:
            _reference_upsert(conn, wh.notifications, rows, keys, "return_date")
    assert _snapshot(fast, wh.notifications) == _snapshot(slow, wh.notifications)
    assert len(_snapshot(fast, wh.notifications)) == 450


def test_upsert_without_keep_newer_replaces_and_refuses_duplicate_keys(two_engines):
    fast, slow = two_engines
    keys = ["partnership_code", "case_id"]
    rows = [{"partnership_code": "la_001", "case_id": f"C{i}", "reason": TEXTS[i % len(TEXTS)] or "x",
             "placed_by": "analyst", "placed_at": NOW} for i in range(20)]
    again = [{**r, "reason": "changed", "placed_at": NOW + timedelta(hours=1)} for r in rows[5:15]]
    for engine, upsert in ((fast, wh.upsert), (slow, wh._delete_then_insert)):
        for batch in (rows, again):
            with engine.begin() as conn:
                upsert(conn, wh.legal_holds, batch, keys)
    assert _snapshot(fast, wh.legal_holds) == _snapshot(slow, wh.legal_holds)
    with pytest.raises(ValueError, match="same key"), fast.begin() as conn:
        wh.upsert(conn, wh.legal_holds, rows[:2] + rows[:1], keys)


def test_insert_rows_stores_what_an_insert_stores(two_engines):
    fast, slow = two_engines
    rows = [{"partnership_code": "la_001", "dataset": "notifications", "record_id": f"R{i}", "file_id": i,
             "return_date": date(2024, 1, 1) + timedelta(days=i), "row_hash": f"{i:064x}",
             "values_json": json.dumps({"t": TEXTS[i % len(TEXTS)]}), "loaded_at": NOW} for i in range(40)]
    columns = wh.ColumnRows({"partnership_code": "la_001", "dataset": "notifications",
                             "record_id": [r["record_id"] for r in rows], "file_id": [r["file_id"] for r in rows],
                             "return_date": [r["return_date"] for r in rows], "row_hash": [r["row_hash"] for r in rows],
                             "values_json": [r["values_json"] for r in rows], "loaded_at": NOW}, len(rows))
    with fast.begin() as conn:
        wh.insert_rows(conn, wh.record_history, columns)
    with slow.begin() as conn:
        conn.execute(sa.insert(wh.record_history), rows)
    assert _snapshot(fast, wh.record_history) == _snapshot(slow, wh.record_history)
    quarantined = [{"partnership_code": "la_001", "dataset": "learning", "file_id": 1, "file_name": "learning.csv",
                    "row_number": i + 2, "record_id": None if i == 3 else f"F{i}", "failed_checks": f"check {t}",
                    "failed_rules": None, "raw_values": json.dumps({"v": t}, ensure_ascii=False), "quarantined_at": NOW}
                   for i, t in enumerate(TEXTS)]
    with fast.begin() as conn:
        wh.insert_rows(conn, wh.quarantine, quarantined)
    with slow.begin() as conn:
        conn.execute(sa.insert(wh.quarantine), quarantined)
    assert _snapshot(fast, wh.quarantine) == _snapshot(slow, wh.quarantine)


def test_stored_values_json_and_hash_by_columns_equal_the_row_by_row_ones(cfg):
    from reviews.returns.cleaning import clean_table
    from reviews.returns.ingest import _json_texts, _record_columns, _record_values, _row_hash
    from reviews.privacy.pseudonymise import check_key
    from reviews.returns.readers import EXTRA_COLUMN, ROW_COLUMN
    from reviews.core.template import DATASETS

    key = check_key("unit-test-key-for-fast-paths")
    for dataset, rows in {
        "notifications": [
            {"notification_id": "N-1", "child_ref": "C-1", "incident_date": "01/05/2024", "aware_date": "2024-05-02",
             "notified_date": "", "incident_type": "Serious Harm", "age_years": "7.0", "ethnicity": "Café \"x\"\ty"},
            {"notification_id": "N-2", "child_ref": "", "incident_date": "31/02/2024", "aware_date": "12/05/2024",
             "notified_date": "10/05/2024", "incident_type": "x", "age_years": "", "ethnicity": "✓ \\ line\nbreak"},
        ],
        "learning": [
            {"finding_id": "F-1", "review_id": "R-1", "theme": "info sharing", "finding": "Text with 'quotes' é",
             "action_due_date": "01/01/2027", "action_status": "open"},
            {"finding_id": "F-2", "review_id": "R-1", "theme": "", "finding": "", "action_completed_date": "n/a"},
        ],
    }.items():
        cols = DATASETS[dataset].column_names
        raw = pd.DataFrame([{c: str(r.get(c, "")) for c in cols} for r in rows], dtype=object)
        raw[ROW_COLUMN] = range(2, len(rows) + 2)
        raw[EXTRA_COLUMN] = 0
        table = clean_table(raw, dataset, cfg.partnership("knowsley"), cfg, key, date(2024, 7, 10))
        by_column = _record_columns(table, dataset)
        texts = _json_texts(table, dataset)
        for i, row in enumerate(table.to_dict(orient="records")):
            values = _record_values(row, dataset)
            assert {k: v[i] for k, v in by_column.items()} == values
            assert texts[i] == json.dumps(values, default=str, sort_keys=True)
            assert __import__("hashlib").sha256(texts[i].encode()).hexdigest() == _row_hash(values)


def test_json_and_raw_texts_by_columns_equal_the_row_by_row_ones(cfg):
    """_json_texts (factorized columns, text columns as object or string dtype) and
    _raw_values_columns give what json.dumps of _record_values and _raw_values give, row by row."""
    from reviews.returns.cleaning import clean_table
    from reviews.returns.ingest import _json_texts, _quarantine_columns, _raw_values, _raw_values_columns, _record_values
    from reviews.privacy.pseudonymise import check_key
    from reviews.returns.readers import EXTRA_COLUMN, ROW_COLUMN
    from reviews.core.template import DATASETS

    key = check_key("unit-test-key-for-fast-paths")
    for dataset in ("notifications", "learning"):
        cols = DATASETS[dataset].column_names
        rows = [{c: (TEXTS[(i + j) % len(TEXTS)] or "") for j, c in enumerate(cols)} for i in range(40)]
        for i, r in enumerate(rows):
            for c in DATASETS[dataset].of_kind("date"):
                r[c] = ("01/05/2024", "", "31/02/2024", "2024-05-02")[i % 4]
            for c in DATASETS[dataset].of_kind("age"):
                r[c] = ("7", "", "12.0")[i % 3]
        raw = pd.DataFrame(rows, dtype=object)
        raw[ROW_COLUMN] = range(2, len(rows) + 2)
        raw[EXTRA_COLUMN] = 0
        table = clean_table(raw, dataset, cfg.partnership("knowsley"), cfg, key, date(2024, 7, 10))
        for variant in (table, table.astype({c: "string" for c in table.columns if table[c].dtype == object})):
            assert _json_texts(variant, dataset) == [json.dumps(_record_values(r, dataset), default=str, sort_keys=True)
                                                     for r in variant.to_dict(orient="records")]
        records = table.to_dict(orient="records")
        picked = {c: table[c].tolist() for c in table.columns if c in _quarantine_columns(dataset)}
        assert _raw_values_columns(picked, dataset, len(table)) == [_raw_values(r, dataset) for r in records]


def test_copy_stores_what_an_insert_stores_for_tricky_values(two_engines):
    """insert_rows (binary COPY on PostgreSQL) against an INSERT of the same rows: every character
    COPY's text format had to escape, `\\N` and `\\.`, unicode, long text, JSON text, blanks,
    int4's limits, dates at the ends of the calendar, a datetime for a date (its own date) and
    datetimes in other zones. A value of another type than its column's (a bool for an integer, a
    naive datetime, a str for a date) goes through INSERT; a NUL byte is refused either way."""
    from zoneinfo import ZoneInfo

    fast, slow = two_engines
    texts = [*TEXTS, "\\.", "end\\", "\\\\N", "tab\tnew\nline\\", "emoji 😀 ß", "\x01\x7f\u2028\u0085", "long " * 2000]
    stamps = [datetime(2024, 3, 31, 0, 30, tzinfo=ZoneInfo("Europe/London")), NOW,
              datetime(1, 1, 1, tzinfo=timezone.utc), datetime(2024, 7, 1, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5)))]
    quarantined = [{"partnership_code": "la_001", "dataset": "learning", "file_id": (2**31 - 1, -2**31, 0, i)[i % 4],
                    "file_name": (t or "x")[:200], "row_number": i + 2, "record_id": t if t is None else t[:100],
                    "failed_checks": t or "", "failed_rules": None if i % 2 else t,
                    "raw_values": json.dumps({"v": t, "n": i}, ensure_ascii=False), "quarantined_at": stamps[i % 4]}
                   for i, t in enumerate(texts)]
    days = [date.min, date.max, date(2024, 2, 29), None]
    history = wh.ColumnRows({"partnership_code": "la_001", "dataset": "notifications",
                             "record_id": [f"R{i}" for i in range(8)], "file_id": list(range(8)),
                             "return_date": [days[i % 3] for i in range(8)], "row_hash": "h",
                             "values_json": [json.dumps({"d": str(days[i % 4])}) for i in range(8)],
                             "loaded_at": stamps[3]}, 8)
    cases = [{**row, "incident_date": None if i % 2 else date(2020, 1, 1), "aware_date": days[i % 4],
              "age_years": None if i % 3 == 0 else i} for i, row in enumerate(_case_rows(12, 0, date(2024, 1, 1), 1))]
    given_as_datetime = [{**r, "aware_date": stamps[3]} for r in cases[:1]]  # stored as 2024-07-01, not the session's day
    if fast.dialect.name == "postgresql":
        for table, rows in ((wh.quarantine, quarantined), (wh.record_history, history), (wh.notifications, cases)):
            assert wh._copy_columns(table, rows) is not None  # these do go through COPY
    with fast.begin() as conn:
        wh.insert_rows(conn, wh.quarantine, quarantined)
        wh.insert_rows(conn, wh.record_history, history)
        wh.insert_rows(conn, wh.notifications, cases[1:] + given_as_datetime)
    with slow.begin() as conn:
        conn.execute(sa.insert(wh.quarantine), quarantined)
        conn.execute(sa.insert(wh.record_history), history.records())
        conn.execute(sa.insert(wh.notifications), cases[1:] + [{**cases[0], "aware_date": date(2024, 7, 1)}])
    for table in (wh.quarantine, wh.record_history, wh.notifications):
        assert _snapshot(fast, table) == _snapshot(slow, table), table.name
    assert len(_snapshot(fast, wh.quarantine)) == len(texts)

    # Not of its column's type: INSERT binds it (the same rows end up stored either way).
    odd = [{**quarantined[0], "row_number": 900}, {**quarantined[1], "row_number": True},
           {**quarantined[2], "row_number": 901, "quarantined_at": datetime(2024, 1, 1, 12)}]
    assert wh._copy_columns(wh.quarantine, odd) is None
    assert wh._copy_columns(wh.quarantine, [{**odd[0], "file_id": 2**31}]) is None  # binary COPY would wrap it
    assert wh._copy_columns(wh.record_history, wh.ColumnRows({**history.columns, "return_date": "2024-01-01"}, 8)) is None
    for engine, insert in ((fast, wh.insert_rows), (slow, lambda conn, t, rows: conn.execute(sa.insert(t), rows))):
        with engine.begin() as conn:
            insert(conn, wh.quarantine, odd)
    assert _snapshot(fast, wh.quarantine) == _snapshot(slow, wh.quarantine)
    if fast.dialect.name == "postgresql":  # PostgreSQL text cannot hold NUL: refused, nothing stored
        for engine, insert in ((fast, wh.insert_rows), (slow, lambda conn, t, rows: conn.execute(sa.insert(t), rows))):
            with pytest.raises(Exception, match="0x00"), engine.begin() as conn:
                insert(conn, wh.quarantine, [{**odd[0], "row_number": 902, "raw_values": "a\x00b"}])
        assert _snapshot(fast, wh.quarantine) == _snapshot(slow, wh.quarantine)


@pytest.mark.slow  # two small national loads twice over: about 3 s on SQLite
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_ingest_gives_the_tables_the_row_by_row_load_gave(backend, tmp_path):
    """A small national inbox (faults included) loaded twice (two runs, the second correcting the
    first's quarantined rows): the pipeline and the benchmark's naive baseline end with identical
    tables, row for row."""
    from reviews_dev.bench.national_bench import FIXED_NOW, KEY, naive_ingest_partnership, national_config, table_digest
    from reviews.returns.ingest import ingest_partnership
    from reviews_dev.synthetic import generate_returns

    cfg = national_config(3)
    inbox = tmp_path / "inbox"
    generate_returns(inbox, cfg, start=date(2023, 1, 1), end=date(2024, 12, 31), seed=11, inflate=20,
                     partnerships=list(cfg.partnerships)[:2])
    if backend == "sqlite":
        urls = [f"sqlite:///{tmp_path / 'naive.db'}", f"sqlite:///{tmp_path / 'fast.db'}"]
    else:
        from tests.conftest import _postgres_database

        names = [f"reviews_test_fast_ingest_{name}" for name in ("naive", "fast")]
        urls = [_postgres_database(name) for name in names]
    naive, fast = (wh.make_engine(u) for u in urls)
    raw = tmp_path / "raw"
    for as_of in (date(2024, 3, 31), date(2024, 12, 31)):
        for code in list(cfg.partnerships)[:2]:
            naive_ingest_partnership(naive, cfg, code, inbox, raw, KEY, as_of, lambda: FIXED_NOW)
            ingest_partnership(fast, cfg, code, inbox, raw, KEY, as_of, lambda: FIXED_NOW)
    with fast.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(wh.quarantine)).scalar_one() > 0
        assert conn.execute(sa.select(sa.func.count()).select_from(wh.quarantine)
                            .where(wh.quarantine.c.resolved_by_file_id.is_not(None))).scalar_one() > 0
    assert table_digest(fast) == table_digest(naive)
    naive.dispose()
    fast.dispose()
    if backend != "sqlite":
        from tests.conftest import _drop_postgres_database

        for name in names:
            _drop_postgres_database(name)


def test_timeliness_counts_and_rows_are_what_the_row_by_row_version_gave(cfg, tmp_path):
    from reviews.timeliness.run import run_timeliness
    from reviews.timeliness.compute import compute_timeliness, to_records

    engine = wh.make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    wh.ensure_schema(engine)
    rows = _case_rows(60, 0, date(2024, 4, 10), 1)
    for r in rows:
        r["partnership_code"] = "knowsley" if r["partnership_code"] == "la_001" else "sefton"
    with engine.begin() as conn:
        wh.upsert(conn, wh.notifications, rows, ["partnership_code", "notification_id"])
    counts = run_timeliness(engine, cfg, date(2020, 6, 30))
    with engine.connect() as conn:
        frames = {n: pd.read_sql(sa.select(wh.CASE_TABLES[n]), conn) for n in ("notifications", "rapid_reviews", "practice_reviews")}
        stored = sorted(tuple(r) for r in conn.execute(sa.select(wh.timeliness)))
    expected = to_records(compute_timeliness(frames["notifications"], frames["rapid_reviews"],
                                             frames["practice_reviews"], cfg, date(2020, 6, 30)))
    by_hand: dict = {}
    for r in expected:
        by_hand.setdefault(r["stage"], {}).setdefault(r["status"], 0)
        by_hand[r["stage"]][r["status"]] += 1
    assert counts == by_hand and list(counts) == list(by_hand)
    assert stored == sorted(tuple(r[c.name] for c in wh.timeliness.columns) for r in expected)
