"""`make bench` keeps working: the registry finds the timeliness benchmark, which runs small.

No timing is asserted here (a benchmark is not a test); only that it runs, prints its three
figures and targets, and that the per-row and vectorised rows agree on its sample.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from reviews.core.config import load_config
from reviews.timeliness.compute import compute_timeliness
from reviews_dev.bench import discover, main
from reviews_dev.bench.timeliness_bench import AS_OF, LOCAL_AUTHORITIES, synthetic_tables


def test_the_timeliness_benchmark_is_registered():
    assert "timeliness" in discover()


def test_synthetic_tables_are_warehouse_shaped_and_in_key_order():
    t = synthetic_tables(20_000, seed=5)
    assert (len(t.notifications), len(t.rapid_reviews), len(t.practice_reviews)) == (10_000, 8_000, 2_000)
    assert t.notifications["partnership_code"].nunique() == LOCAL_AUTHORITIES
    years = t.notifications["aware_date"].dt.year
    assert years.min() == 2015 and years.max() == 2028
    for frame, key in ((t.notifications, "notification_id"), (t.practice_reviews, "review_id")):
        keys = list(zip(frame["partnership_code"], frame[key]))
        assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert t.rapid_reviews["notification_id"].isin(set(t.notifications["notification_id"])).all()
    assert np.issubdtype(t.notifications["aware_date"].dtype, np.datetime64)
    again = synthetic_tables(20_000, seed=5)
    assert again.notifications.equals(t.notifications)  # seeded
    assert again.flags.equals(t.flags)


def test_synthetic_flags_name_loaded_rows_whose_cell_is_blank():
    """The bench's flags are what ingest writes: a current row_flags row per flagged cell, the cell blank."""
    t = synthetic_tables(50_000, seed=5)
    assert 30 <= len(t.flags) <= 120 and set(t.flags["dataset"]) == {"notifications", "rapid_reviews",
                                                                      "practice_reviews"}
    for dataset, id_column in (("notifications", "notification_id"), ("rapid_reviews", "rapid_review_id"),
                               ("practice_reviews", "review_id")):
        frame = getattr(t, dataset).set_index(["partnership_code", id_column])
        mine = t.flags[t.flags["dataset"] == dataset]
        for code, record_id, column in zip(mine["partnership_code"], mine["record_id"], mine["columns"]):
            if column in frame.columns:
                assert pd.isna(frame.loc[(code, record_id), column]), (dataset, record_id, column)
    result = compute_timeliness(t.notifications, t.rapid_reviews, t.practice_reviews, load_config(), AS_OF,
                                flags=t.flags)
    flagged = result["reason"].str.endswith("judged unknown until corrected", na=False)
    assert flagged.sum() > 10 and (result["status"][flagged] == "unknown").all()


def test_bench_runs_small_and_prints_figures_targets_and_summary(capsys):
    code = main(["--only", "timeliness", "--timeliness-rows", "6000", "--timeliness-sample", "1500", "--repeat", "1"])
    out = capsys.readouterr().out
    assert code == 0
    for text in ("(a) compute_timeliness", "(b) per-row reference", "extrapolated linearly", "(c) bare numpy",
                 "ratios:", "bench summary:"):
        assert text in out, text
    assert "identical rows on the sample: yes" in out
    assert "flagged cells" in out and "unknown because a cell they read was flagged:" in out
    assert "at-risk windows (working days): notification 2, rapid_review 3, lcspr_completion 20" in out
    assert re.search(r"rows identical on the sample\s+yes\s+PASS", out)
    assert out.count("PASS") + out.count("FAIL") >= 4
