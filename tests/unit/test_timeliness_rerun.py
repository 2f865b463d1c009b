"""A timeliness rerun whose inputs have not changed keeps the partition; any change judges again.

`timeliness.run.run_timeliness` stores, per as-of date, a digest of what the judgement read (every case
value it uses, the config, the rules' code). These tests change each of those in turn and check
that the partition is judged again, and that an unchanged rerun is not (its stamp stays).
"""
from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from reviews.core import warehouse as wh
from reviews.timeliness.run import run_timeliness

AS_OF = date(2024, 6, 28)
LOADED = datetime(2024, 7, 1, 6, 0, tzinfo=timezone.utc)


def _notifications(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        aware = date(2024, 3, 1) + timedelta(days=i)
        rows.append({
            "partnership_code": ("knowsley", "sefton")[i % 2], "notification_id": f"N-{i:04d}",
            "child_key": f"{i:032x}", "incident_date": aware - timedelta(days=2), "aware_date": aware,
            "notified_date": aware + timedelta(days=i % 9) if i % 5 else None, "incident_type": "serious_harm",
            "age_years": i % 18, "sex": "female", "ethnicity": "white", "disability": "N", "looked_after": "N",
            "cp_plan": "N", "cin_plan": "N", "known_to_csc": "Y", "return_date": date(2024, 7, 1),
            "source_file_id": 1, "source_row": i + 2, "row_hash": f"{i:064x}", "loaded_at": LOADED,
        })
    return rows


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'w.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = wh.make_engine(url)
    wh.ensure_schema(engine)
    with engine.begin() as conn:
        wh.upsert(conn, wh.notifications, _notifications(40), ["partnership_code", "notification_id"])
    yield engine
    engine.dispose()


def _state(engine) -> tuple[list, datetime | None]:
    with engine.connect() as conn:
        rows = sorted(tuple(r) for r in conn.execute(sa.select(wh.timeliness)))
        stamp = conn.execute(sa.select(wh.timeliness_runs.c.judged_at)
                             .where(wh.timeliness_runs.c.as_of_date == AS_OF)).scalar_one_or_none()
    return rows, stamp


def test_unchanged_rerun_keeps_the_partition_and_gives_the_same_counts(engine, cfg):
    first = run_timeliness(engine, cfg, AS_OF)
    rows, stamp = _state(engine)
    assert rows and stamp is not None
    again = run_timeliness(engine, cfg, AS_OF)
    assert again == first and list(again) == list(first)
    assert _state(engine) == (rows, stamp)  # not judged again: the stamp of the first judgement stays


def test_a_changed_case_value_is_judged_again(engine, cfg):
    run_timeliness(engine, cfg, AS_OF)
    rows, stamp = _state(engine)
    # A date changed behind the pipeline's back (no new loaded_at, no new row hash): still seen.
    with engine.begin() as conn:
        conn.execute(wh.notifications.update().where(wh.notifications.c.notification_id == "N-0001")
                     .values(notified_date=date(2024, 5, 30)))
    run_timeliness(engine, cfg, AS_OF)
    new_rows, new_stamp = _state(engine)
    assert new_stamp != stamp
    changed = {r for r in new_rows} ^ {r for r in rows}
    assert changed and all("N-0001" in r for r in changed)


def test_a_lost_partition_or_other_config_is_judged_again(engine, cfg):
    counts = run_timeliness(engine, cfg, AS_OF)
    rows, _ = _state(engine)
    with engine.begin() as conn:
        conn.execute(wh.timeliness.delete().where(wh.timeliness.c.record_id == "N-0002"))
    assert run_timeliness(engine, cfg, AS_OF) == counts
    assert _state(engine)[0] == rows  # the missing rows are back
    _, stamp = _state(engine)
    other = dataclasses.replace(cfg, at_risk_working_days={**cfg.at_risk_working_days, "lcspr_completion": 40})
    run_timeliness(engine, other, AS_OF)
    assert _state(engine)[1] != stamp
    _, stamp = _state(engine)
    run_timeliness(engine, dataclasses.replace(other, at_risk_working_days=3), AS_OF)  # one window for all
    assert _state(engine)[1] != stamp
    # A second as-of date is its own partition with its own record.
    run_timeliness(engine, cfg, AS_OF + timedelta(days=3))
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(wh.timeliness_runs)).scalar_one() == 2


def _flag(record_id: str, columns: str, *, file_id: int = 2, superseded_by: int | None = None) -> dict:
    return {"partnership_code": "knowsley", "dataset": "notifications", "record_id": record_id, "file_id": file_id,
            "file_name": "knowsley_2024-07-01.csv", "row_number": 7, "rule_id": f"date:{columns}",
            "columns": columns, "blanked": 1, "original_text": "'n/a'",
            "message": f"{columns} 'n/a' is not a date (day/month/year or YYYY-MM-DD)",
            "flagged_at": LOADED, "superseded_by_file_id": superseded_by}


def test_a_new_flag_judges_again_and_the_stage_becomes_unknown(engine, cfg):
    run_timeliness(engine, cfg, AS_OF)
    rows, stamp = _state(engine)
    # N-0004 (knowsley) was notified on a known day; a later return's flag says the cell was unreadable.
    with engine.begin() as conn:
        conn.execute(sa.insert(wh.row_flags), [_flag("N-0004", "notified_date"),
                                               _flag("N-0006", "notified_date", file_id=1, superseded_by=2)])
    counts = run_timeliness(engine, cfg, AS_OF)
    new_rows, new_stamp = _state(engine)
    assert new_stamp != stamp
    by_key = {(r.stage, r.record_id): r for r in _rows(engine)}
    flagged = by_key[("notification", "N-0004")]
    assert flagged.status == "unknown" and flagged.working_days_taken is None
    assert flagged.reason == ("return knowsley_2024-07-01.csv row 7: notified_date 'n/a' is not a date "
                              "(day/month/year or YYYY-MM-DD); judged unknown until corrected")
    assert by_key[("rapid_review", "N-0004")].status != "unknown"  # its clock does not read notified_date
    assert by_key[("notification", "N-0006")].status in ("met", "late")  # a superseded flag no longer counts
    assert counts["notification"]["unknown"] == sum(
        1 for (stage, _), r in by_key.items() if stage == "notification" and r.status == "unknown")
    # unchanged flags: kept; the flag superseded by a corrected return: judged again, no longer unknown
    assert run_timeliness(engine, cfg, AS_OF) == counts and _state(engine)[1] == new_stamp
    with engine.begin() as conn:
        conn.execute(wh.row_flags.update().where(wh.row_flags.c.record_id == "N-0004").values(superseded_by_file_id=3))
    run_timeliness(engine, cfg, AS_OF)
    assert {(r.stage, r.record_id): r.status for r in _rows(engine)}[("notification", "N-0004")] == (
        next(r for r in rows if r[1] == "notification" and r[2] == "N-0004")[8])


def _rows(engine) -> list:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(wh.timeliness).where(wh.timeliness.c.as_of_date == AS_OF)))


def test_insert_frame_stores_what_insert_rows_stores(engine):
    """The column-wise COPY text of a frame (PostgreSQL) against the rows insert_rows binds."""
    import pandas as pd

    from reviews.timeliness.compute import to_records

    texts = ["plain", "tab\there", "new\nline", "back\\slash", "cr\rx", "\\N", "", None, "Café ✓"]
    n = len(texts)
    frame = pd.DataFrame({
        "partnership_code": pd.Categorical(["knowsley", "sefton", None] * 3, categories=["knowsley", "sefton"]),
        "stage": pd.Categorical(["notification"] * n),
        "record_id": [f"R-{i}\t{t}" if t else f"R-{i}" for i, t in enumerate(texts)],
        "as_of_date": pd.to_datetime([AS_OF] * n),
        "start_date": pd.to_datetime([date(2024, 1, i + 1) if i % 3 else None for i in range(n)]),
        "due_date": pd.Series([None] * n, dtype="datetime64[s]"),
        "completed_date": pd.to_datetime([date(2023, 12, 31)] * n),
        "working_days_taken": pd.array([i if i % 2 else None for i in range(n)], dtype="Int64"),
        "status": pd.Categorical(["met", "late", "open_on_track"] * 3),
        "rule_set": pd.Categorical([None, "working_together_2023", "working_together_2018"] * 3),
        "reason": texts,
    })
    frame = frame[frame["partnership_code"].notna()]
    with engine.begin() as conn:
        wh.insert_frame(conn, wh.timeliness, frame)
    with engine.connect() as conn:
        got = sorted(tuple(r) for r in conn.execute(sa.select(wh.timeliness)))
    with engine.begin() as conn:
        conn.execute(wh.timeliness.delete())
        wh.insert_rows(conn, wh.timeliness, to_records(frame))
    with engine.connect() as conn:
        expected = sorted(tuple(r) for r in conn.execute(sa.select(wh.timeliness)))
    assert got == expected and len(got) == len(frame)
