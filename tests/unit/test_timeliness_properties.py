"""Property: the vectorised computation and the per-row reference give the same rows.

Random small warehouses (dates 2015-2028, blanks and contradictions included), random as-of
days and random timescales; `to_records(compute_timeliness(...))` must equal
`compute_timeliness_reference(...)` row for row: every date, status, count, rule set and reason.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import date

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reviews.core.config import load_config
from reviews.timeliness.compute import compute_timeliness, to_records
from reviews_dev.timeliness_reference import compute_timeliness_reference

CFG = load_config()
CODES = ("knowsley", "sefton", "wirral")
REVIEW_TYPES = ("lcspr", "local_multi_agency", "single_agency", "national")

day = st.dates(min_value=date(2015, 1, 1), max_value=date(2028, 12, 31))
maybe_day = st.one_of(st.none(), day, day)  # blank about a third of the time


@st.composite
def warehouses(draw):
    notes = draw(st.lists(st.tuples(st.sampled_from(CODES), maybe_day, maybe_day, maybe_day), max_size=8))
    notifications = [
        {"partnership_code": code, "notification_id": f"N{i}", "incident_date": incident, "aware_date": aware,
         "notified_date": notified}
        for i, (code, incident, aware, notified) in enumerate(notes)
    ]
    rapid = []
    if notifications:
        for j, (which, done) in enumerate(draw(st.lists(
                st.tuples(st.integers(0, len(notifications) - 1), maybe_day), max_size=8))):
            n = notifications[which]
            code = n["partnership_code"] if j % 4 else draw(st.sampled_from(CODES))  # sometimes no such case
            rapid.append({"partnership_code": code, "notification_id": n["notification_id"], "completed_date": done})
    reviews = [
        {"partnership_code": code, "review_id": f"R{i}", "review_type": kind, "decision_date": decision,
         "completed_date": completed, "final_report_sent_date": sent, "published_date": published}
        for i, (code, kind, decision, completed, sent, published) in enumerate(draw(st.lists(
            st.tuples(st.sampled_from(CODES), st.sampled_from(REVIEW_TYPES), maybe_day, maybe_day, maybe_day,
                      maybe_day), max_size=6)))
    ]
    return notifications, rapid, reviews


@st.composite
def configs(draw):
    """The project's rule sets with random timescales, clock starts and at-risk window."""
    rule_sets = []
    for rs in CFG.rule_sets:
        stages = dict(rs.stages)
        stages["notification"] = replace(stages["notification"], working_days=draw(st.integers(1, 20)))
        stages["rapid_review"] = replace(stages["rapid_review"], working_days=draw(st.integers(1, 30)),
                                         start=draw(st.sampled_from(("aware_date", "notified_date", "incident_date"))))
        stages["lcspr_completion"] = replace(stages["lcspr_completion"], calendar_months=draw(st.integers(1, 18)))
        stages["publication_notice"] = replace(stages["publication_notice"],
                                               working_days_before_publication=draw(st.integers(1, 15)))
        rule_sets.append(replace(rs, stages=stages))
    return replace(CFG, rule_sets=tuple(rule_sets), at_risk_working_days=draw(st.integers(0, 6)))


def frames(notifications, rapid, reviews):
    return (pd.DataFrame(notifications, columns=["partnership_code", "notification_id", "incident_date", "aware_date",
                                                 "notified_date"]),
            pd.DataFrame(rapid, columns=["partnership_code", "notification_id", "completed_date"]),
            pd.DataFrame(reviews, columns=["partnership_code", "review_id", "review_type", "decision_date",
                                           "completed_date", "final_report_sent_date", "published_date"]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(warehouses(), day)
def test_vectorised_and_per_row_agree_with_the_project_config(tables, as_of):
    f = frames(*tables)
    assert to_records(compute_timeliness(*f, CFG, as_of)) == compute_timeliness_reference(*f, CFG, as_of)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(warehouses(), day, configs())
def test_vectorised_and_per_row_agree_whatever_the_timescales(tables, as_of, cfg):
    f = frames(*tables)
    assert to_records(compute_timeliness(*f, cfg, as_of)) == compute_timeliness_reference(*f, cfg, as_of)
