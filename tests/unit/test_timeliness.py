"""Statutory timeliness: hand-built cases for every status and stage, judged as of a fixed day."""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, insert, select

from reviews.core import warehouse
from reviews.core.config import ConfigError, load_config
from reviews.timeliness.compute import OUTPUT_COLUMNS, STAGES, STATUSES, compute_timeliness, to_records
from reviews.core.working_days import add_working_days, working_days_between

D = date
AS_OF = D(2024, 6, 21)  # a Friday; with 3 at-risk working days the at-risk window ends Wed 26 June


@pytest.fixture(scope="module")
def cfg():
    """The project's config with one at-risk window, 3 working days, for every stage (the
    per-stage windows of config/reviews.yaml have their own tests below)."""
    return replace(load_config(), at_risk_working_days=3)


def with_stage(cfg, stage, rule_set=None, **changes):
    """A copy of the config with one stage rule changed (in every rule set, or the one named)."""
    rule_sets = tuple(
        replace(rs, stages={**rs.stages, stage: replace(rs.stages[stage], **changes)})
        if rule_set in (None, rs.name)
        else rs
        for rs in cfg.rule_sets
    )
    return replace(cfg, rule_sets=rule_sets)


def notif(nid, aware, notified=None, code="knowsley"):
    return dict(
        partnership_code=code, notification_id=nid, child_key="k" * 64, incident_date=None,
        aware_date=aware, notified_date=notified, incident_type="death",
    )


def rapid(nid, completed, code="knowsley", rid=None):
    return dict(partnership_code=code, rapid_review_id=rid or f"RR-{nid}-{completed}", notification_id=nid,
                completed_date=completed, outcome="lcspr")


def review(rid, decision=None, completed=None, sent=None, published=None, review_type="lcspr", code="knowsley"):
    return dict(
        partnership_code=code, review_id=rid, notification_id=None, review_type=review_type,
        decision_date=decision, completed_date=completed, final_report_sent_date=sent,
        published_date=published, status="in_progress",
    )


def run(cfg, notes=(), rapids=(), reviews=(), as_of=AS_OF):
    return compute_timeliness(pd.DataFrame(list(notes)), pd.DataFrame(list(rapids)), pd.DataFrame(list(reviews)),
                              cfg, as_of)


def row(frame, stage, record_id, code="knowsley"):
    """One output row as the warehouse gets it (dates as `date`, ints, None for blanks)."""
    hit = [r for r in to_records(frame)
           if (r["stage"], r["record_id"], r["partnership_code"]) == (stage, record_id, code)]
    assert len(hit) == 1, f"expected one {stage} row for {record_id}, got {len(hit)}"
    return hit[0]


def has_row(frame, stage, record_id):
    return bool(((frame.stage == stage) & (frame.record_id == record_id)).any())


# --- notification stage: every status -------------------------------------------------------------


def test_notification_met_on_the_due_day_over_easter(cfg):
    # Aware Monday 25 March 2024; Good Friday and Easter Monday skipped: day 5 is Wednesday 3 April.
    r = row(run(cfg, [notif("N1", D(2024, 3, 25), D(2024, 4, 3))]), "notification", "N1")
    assert (r["start_date"], r["due_date"], r["completed_date"]) == (D(2024, 3, 25), D(2024, 4, 3), D(2024, 4, 3))
    assert r["status"] == "met" and r["working_days_taken"] == 5 and r["reason"] is None


def test_notification_late_one_day_after(cfg):
    r = row(run(cfg, [notif("N1", D(2024, 3, 25), D(2024, 4, 4))]), "notification", "N1")
    assert r["status"] == "late" and r["working_days_taken"] == 6


def test_notification_due_date_from_maundy_thursday(cfg):
    r = row(run(cfg, [notif("N1", D(2024, 3, 28))]), "notification", "N1")
    assert r["due_date"] == D(2024, 4, 8)


def test_notification_aware_on_a_saturday_counts_from_monday(cfg):
    r = row(run(cfg, [notif("N1", D(2024, 4, 6), D(2024, 4, 15))]), "notification", "N1")
    assert r["start_date"] == D(2024, 4, 6)  # the recorded date, not day 0
    assert r["due_date"] == D(2024, 4, 15) and r["status"] == "met" and r["working_days_taken"] == 5


@pytest.mark.parametrize(
    "aware, due, status",
    [
        (D(2024, 6, 20), D(2024, 6, 27), "open_on_track"),  # 4 working days left: Fri, Mon, Tue, Wed
        (D(2024, 6, 19), D(2024, 6, 26), "open_at_risk"),  # 3 working days left
        (D(2024, 6, 14), D(2024, 6, 21), "open_at_risk"),  # due today
        (D(2024, 6, 13), D(2024, 6, 20), "open_overdue"),  # due yesterday
        (D(2024, 6, 10), D(2024, 6, 17), "open_overdue"),
    ],
)
def test_notification_open_statuses(cfg, aware, due, status):
    r = row(run(cfg, [notif("N1", aware)]), "notification", "N1")
    assert (r["due_date"], r["status"]) == (due, status)
    assert r["completed_date"] is None and r["working_days_taken"] is None and r["reason"] is None


def test_at_risk_is_working_days_from_as_of_to_due(cfg):
    """Cross-check the at-risk window against the brief's wording for a run of aware dates."""
    notes = [notif(f"N{i}", AS_OF - timedelta(days=i)) for i in range(0, 12)]
    frame = run(cfg, notes)
    open_rows = [r for r in to_records(frame) if r["status"].startswith("open_")]
    assert len(open_rows) >= 12
    for r in open_rows:
        if r["due_date"] < AS_OF:
            expected = "open_overdue"
        elif working_days_between(AS_OF, r["due_date"]) <= cfg.at_risk_working_days:
            expected = "open_at_risk"
        else:
            expected = "open_on_track"
        assert r["status"] == expected, r


def test_notification_unknown_when_aware_date_missing(cfg):
    frame = run(cfg, [notif("N1", None, D(2024, 4, 2))])
    for stage in ("notification", "rapid_review"):
        r = row(frame, stage, "N1")
        assert r["status"] == "unknown" and r["reason"] == "aware_date is missing"
        assert r["start_date"] is None and r["due_date"] is None and r["working_days_taken"] is None


def test_notification_unknown_when_notified_before_aware(cfg):
    r = row(run(cfg, [notif("N1", D(2024, 5, 7), D(2024, 5, 3))]), "notification", "N1")
    assert r["status"] == "unknown"
    assert r["reason"] == "notified_date 2024-05-03 is before aware_date 2024-05-07"
    assert r["working_days_taken"] is None


def test_start_before_the_calendar_is_unknown_not_miscounted(cfg):
    r = row(run(cfg, [notif("N1", D(2009, 6, 1), D(2009, 6, 3))]), "notification", "N1")
    assert r["status"] == "unknown"
    assert r["reason"] == "aware_date 2009-06-01 is before the working-day calendar starts (2010-01-01)"


# --- as_of, never the wall clock -----------------------------------------------------------------------


def test_completed_after_as_of_counts_as_open(cfg):
    frame = run(cfg, [notif("N1", D(2024, 6, 10), D(2024, 6, 24))], [rapid("N1", D(2024, 6, 25))])
    for stage in ("notification", "rapid_review"):
        r = row(frame, stage, "N1")
        assert r["completed_date"] is None and r["working_days_taken"] is None
    assert row(frame, "notification", "N1")["status"] == "open_overdue"
    assert row(frame, "rapid_review", "N1")["status"] == "open_on_track"  # due 1 July
    later = run(cfg, [notif("N1", D(2024, 6, 10), D(2024, 6, 24))], as_of=D(2024, 6, 24))
    assert row(later, "notification", "N1")["status"] == "late"


def test_case_starting_after_as_of_is_left_out(cfg):
    frame = run(cfg, [notif("N1", D(2024, 6, 24)), notif("N2", D(2024, 6, 21))],
                reviews=[review("R1", decision=D(2024, 7, 1)), review("R2", sent=D(2024, 7, 1))])
    assert not has_row(frame, "notification", "N1") and not has_row(frame, "rapid_review", "N1")
    assert has_row(frame, "notification", "N2")  # starting on as_of itself counts
    assert not has_row(frame, "lcspr_completion", "R1") and not has_row(frame, "publication_notice", "R2")


def test_as_of_is_recorded_and_a_datetime_means_its_date(cfg):
    frame = run(cfg, [notif("N1", D(2024, 6, 10))])
    assert {r["as_of_date"] for r in to_records(frame)} == {AS_OF}
    pd.testing.assert_frame_equal(frame, run(cfg, [notif("N1", D(2024, 6, 10))], as_of=datetime(2024, 6, 21, 23, 59)))


# --- rapid review stage ---------------------------------------------------------------------------------


def test_rapid_review_met_on_day_15_using_the_earliest_rapid_review(cfg):
    frame = run(
        cfg,
        [notif("N1", D(2024, 3, 25), D(2024, 3, 27))],
        [rapid("N1", D(2024, 4, 30)), rapid("N1", D(2024, 4, 17)), rapid("N1", None),
         rapid("N1", D(2024, 4, 2), code="sefton")],  # another partnership's N1 is not this case
    )
    r = row(frame, "rapid_review", "N1")
    assert (r["due_date"], r["completed_date"], r["status"], r["working_days_taken"]) == (
        D(2024, 4, 17), D(2024, 4, 17), "met", 15)


def test_rapid_review_missing_is_simply_open(cfg):
    r = row(run(cfg, [notif("N1", D(2024, 6, 3), D(2024, 6, 5))]), "rapid_review", "N1")
    assert r["due_date"] == D(2024, 6, 24) and r["status"] == "open_at_risk" and r["completed_date"] is None


def test_rapid_review_before_awareness_is_unknown(cfg):
    r = row(run(cfg, [notif("N1", D(2024, 3, 25))], [rapid("N1", D(2024, 3, 20))]), "rapid_review", "N1")
    assert r["status"] == "unknown"
    assert r["reason"] == "rapid review completed_date 2024-03-20 is before aware_date 2024-03-25"


def test_rapid_review_clock_can_start_on_notified_date(cfg):
    notes = [notif("N1", D(2024, 3, 25), D(2024, 4, 3)), notif("N2", D(2024, 3, 25), None)]
    rapids = [rapid("N1", D(2024, 4, 24))]
    default = row(run(cfg, notes, rapids), "rapid_review", "N1")
    assert (default["start_date"], default["due_date"], default["status"]) == (D(2024, 3, 25), D(2024, 4, 17), "late")

    option = with_stage(cfg, "rapid_review", start="notified_date")
    frame = run(option, notes, rapids)
    r = row(frame, "rapid_review", "N1")
    assert (r["start_date"], r["due_date"], r["status"], r["working_days_taken"]) == (
        D(2024, 4, 3), D(2024, 4, 24), "met", 15)
    assert row(frame, "rapid_review", "N2")["reason"] == "notified_date is missing"
    assert row(frame, "notification", "N1")["start_date"] == D(2024, 3, 25)  # other stages unchanged


def test_a_start_column_outside_the_template_is_a_config_error(cfg):
    with pytest.raises(ConfigError, match="rapid_review: start must be"):
        run(with_stage(cfg, "rapid_review", start="published_date"), [notif("N1", D(2024, 3, 25))])


# --- LCSPR completion: calendar months ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "decision, completed, due, status",
    [
        (D(2023, 8, 31), D(2024, 2, 29), D(2024, 2, 29), "met"),  # leap year month end
        (D(2023, 8, 31), D(2024, 3, 1), D(2024, 2, 29), "late"),
        (D(2022, 8, 31), D(2023, 2, 28), D(2023, 2, 28), "met"),
        (D(2022, 8, 31), D(2023, 3, 1), D(2023, 2, 28), "late"),
        (D(2023, 12, 26), None, D(2024, 6, 26), "open_at_risk"),
        (D(2024, 1, 31), None, D(2024, 7, 31), "open_on_track"),
        (D(2023, 11, 30), None, D(2024, 5, 30), "open_overdue"),
    ],
)
def test_lcspr_completion_six_calendar_months(cfg, decision, completed, due, status):
    r = row(run(cfg, reviews=[review("R1", decision, completed)]), "lcspr_completion", "R1")
    assert (r["start_date"], r["due_date"], r["status"]) == (decision, due, status)
    assert r["working_days_taken"] is None  # calendar-month stage


def test_lcspr_stage_is_lcspr_reviews_only(cfg):
    frame = run(cfg, reviews=[review("R1", D(2024, 1, 5)), review("R2", D(2024, 1, 5), review_type="single_agency")])
    assert has_row(frame, "lcspr_completion", "R1") and not has_row(frame, "lcspr_completion", "R2")


def test_lcspr_unknown_cases(cfg):
    frame = run(cfg, reviews=[review("R1", None), review("R2", D(2024, 2, 1), D(2024, 1, 15))])
    assert row(frame, "lcspr_completion", "R1")["reason"] == "decision_date is missing"
    r2 = row(frame, "lcspr_completion", "R2")
    assert r2["status"] == "unknown" and r2["reason"] == "completed_date 2024-01-15 is before decision_date 2024-02-01"


# --- publication notice -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sent, published, due, status, notice",
    [
        (D(2024, 3, 1), D(2024, 3, 12), D(2024, 3, 1), "met", 7),  # Fri -> Tue: exactly 7 working days
        (D(2024, 3, 4), D(2024, 3, 12), D(2024, 3, 1), "late", 6),
        (D(2024, 3, 7), D(2024, 3, 16), D(2024, 3, 7), "met", 7),  # Saturday publication = Monday's
        (D(2024, 3, 22), D(2024, 4, 5), D(2024, 3, 25), "met", 8),  # notice across Easter 2024
        (D(2024, 3, 26), D(2024, 4, 5), D(2024, 3, 25), "late", 6),
    ],
)
def test_publication_notice_judged_once_published(cfg, sent, published, due, status, notice):
    r = row(run(cfg, reviews=[review("R1", D(2023, 6, 1), sent=sent, published=published)]), "publication_notice", "R1")
    assert (r["start_date"], r["due_date"], r["completed_date"]) == (sent, due, sent)
    assert (r["status"], r["working_days_taken"], r["reason"]) == (status, notice, None)


def test_publication_notice_not_applicable_until_published(cfg):
    frame = run(cfg, reviews=[
        review("R1", D(2023, 6, 1), sent=D(2024, 6, 1)),
        review("R2", D(2023, 6, 1), sent=D(2024, 6, 3), published=D(2024, 7, 1)),  # published after as_of
    ])
    for rid in ("R1", "R2"):
        r = row(frame, "publication_notice", rid)
        assert (r["status"], r["reason"], r["due_date"], r["working_days_taken"]) == (
            "not_applicable", "not yet published", None, None)


def test_publication_notice_unknown_cases(cfg):
    frame = run(cfg, reviews=[
        review("R1", D(2023, 6, 1), published=D(2024, 3, 12)),
        review("R2", D(2023, 6, 1), sent=D(2024, 3, 14), published=D(2024, 3, 12)),
    ])
    assert row(frame, "publication_notice", "R1")["reason"] == "final_report_sent_date is missing"
    r2 = row(frame, "publication_notice", "R2")
    assert r2["status"] == "unknown"
    assert r2["reason"] == "final_report_sent_date 2024-03-14 is after published_date 2024-03-12"


def test_publication_notice_left_out_when_nothing_has_happened(cfg):
    frame = run(cfg, reviews=[review("R1", D(2024, 1, 5)),
                              review("R2", D(2024, 1, 5), published=D(2024, 7, 1))])
    assert not has_row(frame, "publication_notice", "R1") and not has_row(frame, "publication_notice", "R2")


def test_publication_notice_days_come_from_config(cfg):
    ten = with_stage(cfg, "publication_notice", working_days_before_publication=10)
    r = row(run(ten, reviews=[review("R1", D(2023, 6, 1), sent=D(2024, 3, 1), published=D(2024, 3, 12))]),
            "publication_notice", "R1")
    assert (r["due_date"], r["status"]) == (D(2024, 2, 27), "late")


# --- rule sets ---------------------------------------------------------------------------------------------


def test_rule_set_is_recorded_and_switches_on_15_december_2023(cfg):
    frame = run(cfg, [notif("N1", D(2023, 12, 14)), notif("N2", D(2023, 12, 15))],
                reviews=[review("R1", D(2023, 12, 14)), review("R2", D(2023, 12, 15))])
    assert row(frame, "notification", "N1")["rule_set"] == "working_together_2018"
    assert row(frame, "rapid_review", "N1")["rule_set"] == "working_together_2018"
    assert row(frame, "notification", "N2")["rule_set"] == "working_together_2023"
    assert row(frame, "lcspr_completion", "R1")["rule_set"] == "working_together_2018"
    assert row(frame, "lcspr_completion", "R2")["rule_set"] == "working_together_2023"


def test_each_case_uses_the_numbers_of_its_own_rule_set(cfg):
    longer = with_stage(cfg, "notification", rule_set="working_together_2023", working_days=10)
    frame = run(longer, [notif("N1", D(2023, 12, 14)), notif("N2", D(2023, 12, 15))])
    assert row(frame, "notification", "N1")["due_date"] == D(2023, 12, 21)  # 5 working days
    # 10 working days from Fri 15 Dec 2023: Christmas, Boxing Day and New Year's Day skipped.
    assert row(frame, "notification", "N2")["due_date"] == D(2024, 1, 3)


def test_rule_set_matches_config_rule_set_for(cfg):
    days = [D(2018, 1, 1) + timedelta(days=37 * i) for i in range(70)]
    frame = run(cfg, [notif(f"N{i}", d) for i, d in enumerate(days)], as_of=D(2025, 3, 31))
    got = dict(zip(frame[frame.stage == "notification"].record_id, frame[frame.stage == "notification"].rule_set))
    assert got == {f"N{i}": cfg.rule_set_for(d).name for i, d in enumerate(days)}


def test_case_with_no_dates_is_named_with_the_rule_set_on_as_of(cfg):
    frame = run(cfg, [notif("N1", None)], as_of=D(2023, 12, 1))
    assert row(frame, "notification", "N1")["rule_set"] == "working_together_2018"


# --- the output as the warehouse wants it ------------------------------------------------------------------


def _mixed_case(cfg):
    notes = [notif("N1", D(2024, 3, 25), D(2024, 4, 3)), notif("N2", D(2024, 6, 19)),
             notif("N3", None), notif("N4", D(2024, 5, 7), D(2024, 5, 3)), notif("N1", D(2024, 6, 3), code="wirral")]
    rapids = [rapid("N1", D(2024, 4, 17)), rapid("N1", D(2024, 6, 10), code="wirral")]
    reviews = [review("R1", D(2023, 8, 31), D(2024, 3, 1), D(2024, 3, 4), D(2024, 3, 12)),
               review("R2", D(2024, 1, 31), sent=D(2024, 6, 1)), review("R3", None, published=D(2024, 5, 1))]
    return notes, rapids, reviews


def test_every_status_comes_out_of_one_mixed_run(cfg):
    frame = run(cfg, *_mixed_case(cfg))
    assert set(frame.status) == set(STATUSES)


def test_columns_and_types_are_ready_for_the_warehouse(cfg):
    frame = run(cfg, *_mixed_case(cfg))
    assert list(frame.columns) == [c.name for c in warehouse.timeliness.columns] == list(OUTPUT_COLUMNS)
    # The frame keeps numpy types (fast at national scale) ...
    for c in ("as_of_date", "start_date", "due_date", "completed_date"):
        assert frame[c].dtype.kind == "M", c
    assert str(frame["working_days_taken"].dtype) == "Int64"
    for c in ("partnership_code", "stage", "status", "rule_set"):
        assert isinstance(frame[c].dtype, pd.CategoricalDtype), c
    assert list(frame["stage"].cat.categories) == ["notification", "rapid_review", "lcspr_completion",
                                                   "publication_notice"]
    assert list(frame["status"].cat.categories) == list(STATUSES)
    # ... and to_records gives what the warehouse takes.
    for r in to_records(frame):
        for c in ("as_of_date", "start_date", "due_date", "completed_date"):
            assert r[c] is None or type(r[c]) is date, (c, r[c])
        assert r["working_days_taken"] is None or type(r["working_days_taken"]) is int
        for c in ("partnership_code", "stage", "record_id", "status", "rule_set"):
            assert type(r[c]) is str
        assert r["reason"] is None or type(r["reason"]) is str


def test_rows_come_by_stage_then_partnership_then_record_id(cfg):
    frame = run(cfg, *_mixed_case(cfg))
    keys = [(STAGES.index(r["stage"]), r["partnership_code"], r["record_id"]) for r in to_records(frame)]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


def test_rows_insert_into_the_warehouse_table(cfg):
    rows = to_records(run(cfg, *_mixed_case(cfg)))
    engine = create_engine("sqlite://")
    warehouse.ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(insert(warehouse.timeliness), rows)
        back = [dict(r) for r in conn.execute(select(warehouse.timeliness)).mappings()]
    key = lambda r: (r["partnership_code"], r["stage"], r["record_id"])  # noqa: E731
    assert sorted(back, key=key) == sorted(rows, key=key)


def test_running_twice_or_shuffled_gives_identical_frames(cfg):
    notes, rapids, reviews = _mixed_case(cfg)
    first = run(cfg, notes, rapids, reviews)
    pd.testing.assert_frame_equal(first, run(cfg, notes, rapids, reviews))
    pd.testing.assert_frame_equal(first, run(cfg, notes[::-1], rapids[::-1], reviews[::-1]))


def test_date_inputs_may_be_strings_dates_or_blank(cfg):
    as_dates = run(cfg, [notif("N1", D(2024, 3, 25), D(2024, 4, 3)), notif("N2", D(2024, 6, 19), None)])
    as_text = run(cfg, [notif("N1", "2024-03-25", pd.Timestamp("2024-04-03")), notif("N2", "2024-06-19", "")])
    as_nat = run(cfg, [notif("N1", np.datetime64("2024-03-25"), "2024-04-03"), notif("N2", D(2024, 6, 19), pd.NaT)])
    pd.testing.assert_frame_equal(as_dates, as_text)
    pd.testing.assert_frame_equal(as_dates, as_nat)


def test_dates_not_in_iso_form_are_refused_naming_the_column(cfg):
    with pytest.raises(ValueError, match="notifications.aware_date"):
        run(cfg, [notif("N1", "25/03/2024")])


def test_empty_tables_give_an_empty_frame_with_the_columns(cfg):
    frame = run(cfg)
    assert frame.empty and list(frame.columns) == list(OUTPUT_COLUMNS)


def test_duplicate_case_ids_are_refused(cfg):
    with pytest.raises(ValueError, match="N1"):
        run(cfg, [notif("N1", D(2024, 3, 25)), notif("N1", D(2024, 3, 26))])


def test_blank_keys_are_refused(cfg):
    with pytest.raises(ValueError, match="notification_id is blank"):
        run(cfg, [notif(None, D(2024, 3, 25))])
    with pytest.raises(ValueError, match="rapid_reviews: partnership_code is blank"):
        run(cfg, [notif("N1", D(2024, 3, 25))], [rapid("N1", D(2024, 4, 1), code=None)])


def test_missing_input_columns_are_named(cfg):
    frame = pd.DataFrame([{"partnership_code": "knowsley", "notification_id": "N1"}])
    with pytest.raises(ValueError, match="aware_date"):
        compute_timeliness(frame, pd.DataFrame(), pd.DataFrame(), cfg, AS_OF)


def test_due_dates_match_the_working_day_calendar(cfg):
    """Every working-day due date is day n of its clock (a guard on the stage wiring)."""
    notes = [notif(f"N{i}", D(2021, 12, 1) + timedelta(days=3 * i)) for i in range(60)]
    frame = run(cfg, notes)
    for r in to_records(frame):
        n = {"notification": 5, "rapid_review": 15}[r["stage"]]
        assert r["due_date"] == add_working_days(r["start_date"], n)
