"""compute_timeliness with the current row_flags: a stage that reads a flagged cell is `unknown`
with the flag's words, never judged on a guess; and the rapid-review join (merge or hash) agrees."""
from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd
import pytest

from reviews.core.config import load_config
from reviews.timeliness import compute as C
from reviews.timeliness.compute import FLAG_INPUT_COLUMNS, compute_timeliness, to_records

D = date
AS_OF = D(2024, 6, 21)
SUFFIX = "judged unknown until corrected"


@pytest.fixture(scope="module")
def cfg():
    return load_config()


def notif(nid, aware, notified=None, code="knowsley"):
    return {"partnership_code": code, "notification_id": nid, "incident_date": None, "aware_date": aware,
            "notified_date": notified}


def rapid(rid, nid, completed, code="knowsley"):
    return {"partnership_code": code, "rapid_review_id": rid, "notification_id": nid, "completed_date": completed}


def review(rid, decision, completed=None, sent=None, published=None, review_type="lcspr"):
    return {"partnership_code": "knowsley", "review_id": rid, "review_type": review_type, "decision_date": decision,
            "completed_date": completed, "final_report_sent_date": sent, "published_date": published}


def flag(dataset, record_id, columns, row=14, code="knowsley", file="knowsley_2024-06-10.csv"):
    return {"partnership_code": code, "dataset": dataset, "record_id": record_id, "columns": columns,
            "file_name": file, "row_number": row, "message": f"{columns.split(',')[0]} 'n/a' is not a date"}


def judged(cfg, notes=(), rapids=(), reviews=(), flags=()):
    rows = to_records(compute_timeliness(pd.DataFrame(list(notes)), pd.DataFrame(list(rapids)),
                                         pd.DataFrame(list(reviews)), cfg, AS_OF,
                                         flags=pd.DataFrame(list(flags), columns=list(FLAG_INPUT_COLUMNS))))
    return {(r["stage"], r["record_id"]): r for r in rows}


def test_a_flagged_rapid_review_completion_is_unknown_not_overdue(cfg):
    notes = [notif("N1", D(2024, 3, 1), D(2024, 3, 5))]
    rapids = [rapid("RR1", "N1", None)]  # the October row said 'n/a': loaded blank, flagged
    plain = judged(cfg, notes, rapids)
    assert plain[("rapid_review", "N1")]["status"] == "open_overdue"  # what a guess would say
    got = judged(cfg, notes, rapids, flags=[flag("rapid_reviews", "RR1", "completed_date")])
    r = got[("rapid_review", "N1")]
    assert (r["status"], r["working_days_taken"]) == ("unknown", None)
    assert r["reason"] == f"return knowsley_2024-06-10.csv row 14: completed_date 'n/a' is not a date; {SUFFIX}"
    assert r["due_date"] == plain[("rapid_review", "N1")]["due_date"]  # still shown, to help the correction
    assert got[("notification", "N1")] == plain[("notification", "N1")]  # it does not read rapid reviews


def test_a_flag_on_a_column_the_stage_does_not_read_changes_nothing(cfg):
    notes, reviews = [notif("N1", D(2024, 3, 1), D(2024, 3, 5))], [review("R1", D(2024, 1, 10))]
    plain = judged(cfg, notes, reviews=reviews)
    flags = [flag("notifications", "N1", "age_years"), flag("practice_reviews", "R1", "author"),
             flag("notifications", "N1", "incident_date"),  # the start is aware_date
             flag("notifications", "N1", "notified_date", code="wirral")]  # another partnership's N1
    assert judged(cfg, notes, reviews=reviews, flags=flags) == plain


def test_every_flag_a_stage_reads_is_in_its_reason(cfg):
    got = judged(cfg, [notif("N1", None, D(2024, 3, 5))],
                 flags=[flag("notifications", "N1", "notified_date", row=9, file="b.csv"),
                        flag("notifications", "N1", "aware_date", row=3, file="a.csv")])
    assert got[("notification", "N1")]["reason"] == (
        f"return a.csv row 3: aware_date 'n/a' is not a date; return b.csv row 9: notified_date 'n/a' is not a "
        f"date; {SUFFIX}")
    assert got[("rapid_review", "N1")]["reason"] == f"return a.csv row 3: aware_date 'n/a' is not a date; {SUFFIX}"


def test_the_start_column_read_follows_the_rule_set(cfg):
    from_notified = replace(cfg, rule_sets=tuple(
        replace(rs, stages={**rs.stages, "rapid_review": replace(rs.stages["rapid_review"], start="notified_date")})
        for rs in cfg.rule_sets))
    notes, flags = [notif("N1", D(2024, 3, 1), D(2024, 3, 5))], [flag("notifications", "N1", "notified_date")]
    assert judged(cfg, notes, flags=flags)[("rapid_review", "N1")]["status"] != "unknown"
    assert judged(from_notified, notes, flags=flags)[("rapid_review", "N1")]["status"] == "unknown"


def test_lcspr_and_publication_stages(cfg):
    reviews = [review("R1", D(2023, 6, 1)),  # completed_date flagged blank: would be overdue
               review("R2", D(2023, 6, 1), D(2023, 11, 1), sent=None, published=None),  # both publication dates flagged
               review("R3", D(2023, 6, 1), D(2023, 11, 1), D(2023, 11, 20), D(2023, 12, 1), review_type="national")]
    flags = [flag("practice_reviews", "R1", "completed_date"), flag("practice_reviews", "R2", "final_report_sent_date"),
             flag("practice_reviews", "R3", "published_date")]
    plain = judged(cfg, reviews=reviews)
    assert plain[("lcspr_completion", "R1")]["status"] == "open_overdue" and ("publication_notice", "R2") not in plain
    got = judged(cfg, reviews=reviews, flags=flags)
    assert got[("lcspr_completion", "R1")]["status"] == "unknown"
    assert got[("lcspr_completion", "R2")] == plain[("lcspr_completion", "R2")]  # it reads neither date
    r2 = got[("publication_notice", "R2")]  # judged now, instead of disappearing
    assert (r2["status"], r2["start_date"], r2["due_date"]) == ("unknown", None, None)
    assert r2["reason"].startswith("return knowsley_2024-06-10.csv row 14: final_report_sent_date")
    assert got[("publication_notice", "R3")]["status"] == "unknown"


def test_flags_need_their_columns_and_rapid_review_ids(cfg):
    with pytest.raises(ValueError, match="row_flags: missing column"):
        compute_timeliness(pd.DataFrame([notif("N1", D(2024, 3, 1))]), pd.DataFrame(), pd.DataFrame(), cfg, AS_OF,
                           flags=pd.DataFrame([{"partnership_code": "knowsley", "record_id": "N1"}]))
    without_ids = pd.DataFrame([{"partnership_code": "knowsley", "notification_id": "N1", "completed_date": None}])
    with pytest.raises(ValueError, match="rapid_review_id is needed"):
        compute_timeliness(pd.DataFrame([notif("N1", D(2024, 3, 1))]), without_ids, pd.DataFrame(), cfg, AS_OF,
                           flags=pd.DataFrame([flag("rapid_reviews", "RR1", "completed_date")]))


def test_flags_are_found_whatever_the_row_order(cfg):
    notes = [notif(f"N{i}", D(2024, 3, 1 + i % 20), D(2024, 3, 4 + i % 20), code=("knowsley", "wirral")[i % 2])
             for i in range(40)]
    rapids = [rapid(f"RR{i}", f"N{i}", None, code=("knowsley", "wirral")[i % 2]) for i in range(40)]
    flags = [flag("rapid_reviews", f"RR{i}", "completed_date", code=("knowsley", "wirral")[i % 2]) for i in (3, 18, 31)]
    ordered = judged(cfg, notes, rapids, flags=flags)
    assert judged(cfg, notes[::-1], rapids[::-1], flags=flags[::-1]) == ordered
    assert {k for k, r in ordered.items() if r["status"] == "unknown"} == {
        ("rapid_review", "N3"), ("rapid_review", "N18"), ("rapid_review", "N31")}


def test_the_merge_join_and_the_hash_join_agree():
    from reviews_dev.bench.timeliness_bench import synthetic_tables

    t = synthetic_tables(30_000, seed=7)
    names, tables = C._code_tables({
        "notifications": C._read(t.notifications, "notifications", C.NOTIFICATION_COLUMNS),
        "rapid_reviews": C._read(t.rapid_reviews, "rapid_reviews", C.RAPID_REVIEW_COLUMNS)})
    notes, rapids = tables["notifications"], tables["rapid_reviews"]
    merged = C._merged_matches(notes, rapids)
    assert merged is not None and (merged >= 0).mean() > 0.99  # in order: merged, nearly all found
    assert np.array_equal(merged, C._hashed_matches(notes, rapids))
    shuffled = rapids.take(np.random.default_rng(1).permutation(len(rapids)))
    assert C._merged_matches(notes, shuffled) is None  # not in order: the caller hashes
    blank = rapids.take(np.arange(len(rapids)))
    blank.cols["notification_id"] = blank.cols["notification_id"].copy()
    blank.cols["notification_id"][0] = ""
    assert C._merged_matches(notes, blank) is None  # a blank: hashing refuses it, naming it
    with pytest.raises(ValueError, match="rapid_reviews: notification_id is blank in 1 row"):
        C._earliest_rapid_review(notes, blank)
