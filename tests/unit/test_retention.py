"""Retention: expired cases are anonymised or deleted, held cases kept, reruns change nothing."""
from __future__ import annotations

import dataclasses
from datetime import date, datetime, timezone

import sqlalchemy as sa

from reviews.core import warehouse as wh
from reviews.core.config import RetentionRule
from reviews.admin.retention import apply_retention, case_last_dates, cutoff_date, lift_legal_hold, place_legal_hold

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
AS_OF = date(2021, 1, 1)  # cut-off 1 January 2011 with keep_years 10


def _lineage(**row):
    return {"partnership_code": "knowsley", "return_date": date(2012, 1, 1), "source_file_id": 1, "source_row": 2,
            "row_hash": "x" * 64, "loaded_at": NOW, **row}


def _warehouse(tmp_path):
    engine = wh.make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    wh.ensure_schema(engine)
    note = lambda nid, aware: _lineage(notification_id=nid, child_key=f"key-{nid}", incident_date=aware,  # noqa: E731
                                       aware_date=aware, notified_date=aware, incident_type="death")
    with engine.begin() as conn:
        conn.execute(sa.insert(wh.notifications), [note("N1", date(2010, 1, 5)), note("N2", date(2010, 1, 5)),
                                                   note("N3", date(2010, 1, 5))])
        conn.execute(sa.insert(wh.rapid_reviews), [_lineage(rapid_review_id="RR1", notification_id="N1",
                                                            completed_date=date(2010, 2, 1))])
        conn.execute(sa.insert(wh.practice_reviews), [
            _lineage(review_id="R2", notification_id="N2", review_type="lcspr", decision_date=date(2010, 3, 1), status="published"),
            _lineage(review_id="R4", notification_id=None, review_type="single_agency", decision_date=date(2009, 3, 1), status="completed"),
        ])
        conn.execute(sa.insert(wh.learning), [
            _lineage(finding_id="F2", review_id="R2", theme="neglect", finding="kept", recommendation=None,
                     action_completed_date=date(2012, 5, 1)),
            _lineage(finding_id="F4", review_id="R4", theme="neglect", finding="old text", recommendation="old rec",
                     action_completed_date=None),
        ])
        conn.execute(sa.insert(wh.record_history), [{"partnership_code": "knowsley", "dataset": "notifications",
                     "record_id": "N1", "file_id": 1, "return_date": date(2010, 2, 1), "row_hash": "y" * 64,
                     "values_json": '{"child_key": "key-N1"}', "loaded_at": NOW}])
    return engine


def _rows(engine, sql):
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(sql)).mappings()]


def test_cutoff_handles_leap_days():
    assert cutoff_date(date(2024, 2, 29), 10) == date(2014, 2, 28)
    assert cutoff_date(AS_OF, 10) == date(2011, 1, 1)


def test_a_case_lasts_until_its_latest_date_anywhere(tmp_path, cfg):
    engine = _warehouse(tmp_path)
    with engine.connect() as conn:
        import pandas as pd

        tables = {n: pd.read_sql(sa.select(t), conn) for n, t in wh.CASE_TABLES.items()}
    last = case_last_dates(tables)
    assert last["N1"] == pd.Timestamp("2010-02-01")  # the rapid review
    assert last["N2"] == pd.Timestamp("2012-05-01")  # the learning action of its LCSPR
    assert last["R4"] == pd.Timestamp("2009-03-01")  # a review with no notification is its own case


def test_anonymise_keeps_held_cases_and_reruns_change_nothing(tmp_path, cfg):
    engine = _warehouse(tmp_path)
    place_legal_hold(engine, "knowsley", "N3", "inquest pending", "business unit")
    done = {r["dataset"]: r for r in apply_retention(engine, cfg, AS_OF) if r["partnership_code"] == "knowsley"}
    assert done["notifications"]["records"] == 1 and done["notifications"]["held"] == 1
    keys = {r["notification_id"]: r["child_key"] for r in _rows(engine, "select notification_id, child_key from notifications")}
    assert keys == {"N1": "anonymised", "N2": "key-N2", "N3": "key-N3"}
    learning = {r["finding_id"]: (r["finding"], r["recommendation"]) for r in _rows(engine, "select * from learning")}
    assert learning == {"F2": ("kept", None), "F4": (None, None)}
    assert _rows(engine, "select values_json from record_history") == [{"values_json": '{"retention": "anonymised"}'}]
    again = apply_retention(engine, cfg, AS_OF)
    assert sum(r["records"] for r in again) == 0
    assert len(_rows(engine, "select * from retention_log")) == 2 * 5 * len(cfg.partnerships)


def test_delete_removes_expired_cases_and_a_lifted_hold_releases(tmp_path, cfg):
    engine = _warehouse(tmp_path)
    place_legal_hold(engine, "knowsley", "N3", "inquest pending", "business unit")
    cfg = dataclasses.replace(cfg, retention=RetentionRule(10, "delete"))
    apply_retention(engine, cfg, AS_OF)
    assert {r["notification_id"] for r in _rows(engine, "select notification_id from notifications")} == {"N2", "N3"}
    assert {r["review_id"] for r in _rows(engine, "select review_id from practice_reviews")} == {"R2"}
    assert lift_legal_hold(engine, "knowsley", "N3") == 1
    apply_retention(engine, cfg, AS_OF)
    assert {r["notification_id"] for r in _rows(engine, "select notification_id from notifications")} == {"N2"}
