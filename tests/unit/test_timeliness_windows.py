"""Per-stage at-risk windows (issue 16, item 4): config `timeliness.at_risk_working_days` is one
number for every stage or one per stage, `Config.at_risk_days(stage)` answers, and statuses, alerts
and bulletins use each stage's own window."""
from __future__ import annotations

from dataclasses import replace
from datetime import date

import pandas as pd
import pytest
import yaml

from reviews.core.config import DEFAULT_CONFIG, ConfigError, load_config
from reviews.core.working_days import add_working_days
from reviews.timeliness.alerts import alert_message
from reviews.timeliness.compute import at_risk_words, compute_timeliness, to_records

D = date
AS_OF = D(2024, 6, 21)  # a Friday


def write(tmp_path, windows) -> str:
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["timeliness"]["at_risk_working_days"] = windows
    path = tmp_path / "reviews.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def test_the_project_ships_a_window_per_stage():
    cfg = load_config()
    assert {s: cfg.at_risk_days(s) for s in ("notification", "rapid_review", "lcspr_completion",
                                            "publication_notice")} == {
        "notification": 2, "rapid_review": 3, "lcspr_completion": 20, "publication_notice": 5}


@pytest.mark.parametrize("windows, expected", [
    (4, {"notification": 4, "rapid_review": 4, "lcspr_completion": 4, "publication_notice": 4}),
    ("0", {"notification": 0, "rapid_review": 0, "lcspr_completion": 0, "publication_notice": 0}),
    ({"lcspr_completion": 25}, {"notification": 3, "rapid_review": 3, "lcspr_completion": 25, "publication_notice": 3}),
    ({"default": 5, "notification": 1}, {"notification": 1, "rapid_review": 5, "lcspr_completion": 5,
                                         "publication_notice": 5}),
    (None, {"notification": 3, "rapid_review": 3, "lcspr_completion": 3, "publication_notice": 3}),
])
def test_one_number_or_a_mapping_with_a_default(tmp_path, windows, expected):
    cfg = load_config(write(tmp_path, windows))
    assert {s: cfg.at_risk_days(s) for s in expected} == expected


@pytest.mark.parametrize("windows, key, message", [
    ({"notificaton": 2}, "timeliness.at_risk_working_days.notificaton", "unknown stage (stages: notification, "
     "rapid_review, lcspr_completion, publication_notice, or default)"),
    ({"rapid_review": -1}, "timeliness.at_risk_working_days.rapid_review",
     "must be a whole number of working days, 0 or more, not -1"),
    ({"lcspr_completion": 2.5}, "timeliness.at_risk_working_days.lcspr_completion",
     "must be a whole number of working days, 0 or more, not 2.5"),
    ({"default": "soon"}, "timeliness.at_risk_working_days.default",
     "must be a whole number of working days, not 'soon'"),
    (True, "timeliness.at_risk_working_days", "must be a number, not True"),
    ([2, 3], "timeliness.at_risk_working_days", "must be a whole number of working days, not [2, 3]"),
])
def test_errors_name_the_key(tmp_path, windows, key, message):
    path = write(tmp_path, windows)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: {key}: {message}"


def test_asking_for_an_unknown_stage_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match=r"timeliness.at_risk_working_days: unknown stage 'lcspr'"):
        load_config().at_risk_days("lcspr")


def test_the_windows_are_part_of_the_configs_repr_in_stage_order():
    """The timeliness and bulletin digests hash repr(cfg): the same windows always read the same."""
    cfg = load_config()
    a = replace(cfg, at_risk_working_days={"lcspr_completion": 20, "notification": 2})
    b = replace(cfg, at_risk_working_days={"notification": 2, "lcspr_completion": 20})
    assert repr(a) == repr(b) and repr(a) != repr(cfg)


def _notes(*aware_days):
    return pd.DataFrame([{"partnership_code": "knowsley", "notification_id": f"N{i}", "incident_date": None,
                          "aware_date": d, "notified_date": None} for i, d in enumerate(aware_days)])


def test_each_stage_is_at_risk_within_its_own_window():
    cfg = replace(load_config(), at_risk_working_days={"notification": 2, "rapid_review": 3, "lcspr_completion": 20})
    # Aware Wednesday 19 June: notification due Wednesday 26 June, 3 working days after as_of (Fri 21)
    # -> outside the notification's 2, on track; rapid review due 10 July, 13 working days -> on track.
    # Aware Monday 3 June: rapid review due Monday 24 June, 1 working day -> at risk (window 3).
    reviews = pd.DataFrame([
        {"partnership_code": "knowsley", "review_id": "R1", "review_type": "lcspr", "decision_date": D(2024, 1, 10),
         "completed_date": None, "final_report_sent_date": None, "published_date": None},  # due 10 July: 13 days
        {"partnership_code": "knowsley", "review_id": "R2", "review_type": "lcspr", "decision_date": D(2023, 12, 1),
         "completed_date": None, "final_report_sent_date": None, "published_date": None},  # due 1 June: overdue
        {"partnership_code": "knowsley", "review_id": "R3", "review_type": "lcspr", "decision_date": D(2024, 2, 1),
         "completed_date": None, "final_report_sent_date": None, "published_date": None},  # due 1 August: 29 days
    ])
    rows = to_records(compute_timeliness(_notes(D(2024, 6, 19), D(2024, 6, 3)), pd.DataFrame(), reviews, cfg, AS_OF))
    got = {(r["stage"], r["record_id"]): (r["due_date"], r["status"]) for r in rows}
    assert got[("notification", "N0")] == (D(2024, 6, 26), "open_on_track")
    assert got[("rapid_review", "N0")] == (D(2024, 7, 10), "open_on_track")
    assert got[("rapid_review", "N1")] == (D(2024, 6, 24), "open_at_risk")
    assert got[("lcspr_completion", "R1")] == (D(2024, 7, 10), "open_at_risk")  # 13 working days, window 20
    assert got[("lcspr_completion", "R2")][1] == "open_overdue"
    assert got[("lcspr_completion", "R3")] == (D(2024, 8, 1), "open_on_track")
    # the window's edge: due exactly k working days after as_of is at risk (N0's notification: 3)
    assert add_working_days(AS_OF, 3) == D(2024, 6, 26)
    edge = replace(cfg, at_risk_working_days={"notification": 3})
    rows = to_records(compute_timeliness(_notes(D(2024, 6, 19)), pd.DataFrame(), pd.DataFrame(), edge, AS_OF))
    assert {r["stage"]: r["status"] for r in rows}["notification"] == "open_at_risk"


def test_alerts_and_bulletins_say_each_stages_window():
    cfg = load_config()
    assert at_risk_words(cfg) == "notification to the Panel 2, rapid review 3, LCSPR completion 20 working days"
    assert at_risk_words(replace(cfg, at_risk_working_days=1)) == "1 working day"
    rows = [{"partnership_code": "knowsley", "stage": "notification", "record_id": "KNO-N-0001",
             "status": "open_at_risk", "due_date": D(2024, 6, 25), "working_days_left": 2},
            {"partnership_code": "sefton", "stage": "lcspr_completion", "record_id": "SEF-R-001",
             "status": "open_at_risk", "due_date": D(2024, 7, 10), "working_days_left": 13}]
    text = alert_message(rows, cfg, AS_OF, cfg.business_unit_email).text
    assert "- 1 notification to the Panel is at risk (due within 2 working days)." in text
    assert "- 1 LCSPR completion is at risk (due within 20 working days)." in text
    assert "window (notification to the Panel 2, LCSPR completion 20 working days), soonest first" \
        in alert_message(rows, cfg, AS_OF, cfg.business_unit_email).html
