"""Statutory timeliness at national scale (issue 4, "Speed").

Three figures, measured in one run on the same synthetic tables:
  (a) `compute_timeliness` over the whole table (fastest of --repeat rounds);
  (b) the straightforward per-row implementation (`reviews_dev.timeliness_reference`: one case at a
      time, working days counted day by day with the `holidays` package) on a sample, checked
      to give identical rows, its time extrapolated linearly to the whole table;
  (c) the bare numpy business-day calls on the same arrays with the same calendar: one
      np.busday_offset per working-day due date and one np.busday_count per "working days
      taken", nothing else (no reading, checking, joining or building rows), timed in rounds
      alternating with (a) so both see the same machine load.
Targets: (a) under 2 s; (b) at least 50 times (a); (a) within 3 times (c); (b) identical rows.

The tables are what `timeliness.run.run_timeliness` hands over: warehouse columns, dates as
datetime64, rows in key order (it reads ORDER BY partnership_code, id), and the current row_flags
(issue 16: about one case row in 700 has a cell a return got wrong, loaded blank and flagged; the
stage reading it is `unknown` with the flag's words). They are synthetic: 152 local authorities
with invented codes, cases spread over 2015-2028, seeded. Half the rows are notifications, 40%
rapid reviews, 10% practice reviews, with blanks and contradictions at realistic rates so every
status and reason is exercised. The at-risk windows are the project's (config/reviews.yaml, one
per stage).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from reviews_dev.bench import Target, benchmark, best_of, interleaved, say
from reviews.core.config import load_config
from reviews.timeliness.compute import FLAG_INPUT_COLUMNS, OPEN_STAGES, compute_timeliness, to_records
from reviews_dev.timeliness_reference import compute_timeliness_reference
from reviews.core.working_days import calendar

LOCAL_AUTHORITIES = 152  # English local authorities with children's services
FIRST_DAY = date(2015, 1, 1)
AS_OF = date(2028, 12, 29)  # a Friday: the last cases are still open, some at risk
TARGET_SECONDS = 2.0
TARGET_SPEEDUP = 50.0
TARGET_NUMPY_RATIO = 3.0
NAT = np.datetime64("NaT", "D")
FLAG_SHARE = 1 / 700  # case rows with a flagged cell (the cell is blank in the table)


def local_authorities(n: int = LOCAL_AUTHORITIES) -> list[tuple[str, str]]:
    """(partnership code, name) of n invented local authorities, in code order."""
    return [(f"la_{i:03d}", f"Local Authority {i:03d}") for i in range(1, n + 1)]


@dataclass
class Tables:
    notifications: pd.DataFrame
    rapid_reviews: pd.DataFrame
    practice_reviews: pd.DataFrame
    flags: pd.DataFrame  # the current row_flags (FLAG_INPUT_COLUMNS)

    @property
    def rows(self) -> int:
        return len(self.notifications) + len(self.rapid_reviews) + len(self.practice_reviews)

    def describe(self) -> str:
        return (f"{self.rows:,} case rows ({len(self.notifications):,} notifications, "
                f"{len(self.rapid_reviews):,} rapid reviews, {len(self.practice_reviews):,} practice reviews), "
                f"{len(self.flags):,} flagged cells")


def _days(rng: np.random.Generator, low: int, high: int, n: int) -> np.ndarray:
    return rng.integers(low, high, n).astype("timedelta64[D]")


def _blank(values: np.ndarray, rng: np.random.Generator, share: float) -> np.ndarray:
    out = values.copy()
    out[rng.random(len(out)) < share] = NAT
    return out


def _ids(la: np.ndarray, kind: str, width: int) -> np.ndarray:
    """'LA001-N-000001'-style ids, numbered in row order within each local authority."""
    n = len(la)
    first_of_la = np.r_[0, np.flatnonzero(la[1:] != la[:-1]) + 1]
    start = np.repeat(first_of_la, np.diff(np.r_[first_of_la, n]))
    number = np.arange(n) - start + 1
    prefix = np.strings.add(np.strings.add("LA", np.strings.zfill(la.astype(str), 3)), f"-{kind}-")
    return np.strings.add(prefix, np.strings.zfill(number.astype(str), width)).astype(object)


def _codes(la: np.ndarray) -> np.ndarray:
    return np.array([code for code, _ in local_authorities()], dtype=object)[la - 1]


def _date_column(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[s]")


def synthetic_tables(rows: int = 1_000_000, seed: int = 2024, first: date = FIRST_DAY, last: date = AS_OF) -> Tables:
    """Warehouse-shaped case tables of `rows` rows in all, in key order (vectorised; seconds)."""
    rng = np.random.default_rng(seed)
    n_notes, n_rapid = rows // 2, rows * 2 // 5
    n_reviews = rows - n_notes - n_rapid
    weight = rng.lognormal(0.0, 0.6, LOCAL_AUTHORITIES)
    weight /= weight.sum()
    begin, span = np.datetime64(first, "D"), (last - first).days + 1

    # Notifications: ids in date order within each authority, as a register gives them.
    la = rng.choice(np.arange(1, LOCAL_AUTHORITIES + 1), n_notes, p=weight)
    aware = begin + _days(rng, 0, span, n_notes)
    order = np.lexsort((aware, la))
    la, aware = la[order], aware[order]
    notified = aware + _days(rng, 0, 10, n_notes)
    backwards = rng.random(n_notes) < 0.003  # a contradictory return: notified before aware
    notified[backwards] = aware[backwards] - _days(rng, 1, 5, int(backwards.sum()))
    notifications = pd.DataFrame({
        "partnership_code": _codes(la),
        "notification_id": _ids(la, "N", 6),
        "incident_date": _date_column(aware - _days(rng, 0, 8, n_notes)),
        "aware_date": _date_column(_blank(aware, rng, 0.005)),
        "notified_date": _date_column(_blank(notified, rng, 0.02)),
    })

    # Rapid reviews: most notifications have one (a few two), numbered in notification order.
    which = np.sort(rng.choice(n_notes, n_rapid, replace=n_rapid > n_notes))
    rapid_la = la[which]
    rapid_reviews = pd.DataFrame({
        "partnership_code": _codes(rapid_la),
        "rapid_review_id": _ids(rapid_la, "RR", 6),
        "notification_id": notifications["notification_id"].to_numpy(dtype=object)[which],
        "completed_date": _date_column(_blank(aware[which] + _days(rng, 3, 40, n_rapid), rng, 0.03)),
    })

    # Practice reviews: LCSPRs and local reviews, numbered in decision order.
    review_la = rng.choice(np.arange(1, LOCAL_AUTHORITIES + 1), n_reviews, p=weight)
    decision = begin + _days(rng, 0, span, n_reviews)
    order = np.lexsort((decision, review_la))
    review_la, decision = review_la[order], decision[order]
    completed = _blank(decision + _days(rng, 100, 330, n_reviews), rng, 0.15)
    sent = _blank(completed + _days(rng, 3, 60, n_reviews), rng, 0.2)
    published = _blank(sent + _days(rng, 1, 30, n_reviews), rng, 0.25)
    lost = rng.random(n_reviews) < 0.01  # published, but the sending date was never recorded
    published[lost & np.isnat(published)] = (decision + 300)[lost & np.isnat(published)]
    sent[lost] = NAT
    practice_reviews = pd.DataFrame({
        "partnership_code": _codes(review_la),
        "review_id": _ids(review_la, "R", 5),
        "review_type": rng.choice(["lcspr", "local_multi_agency", "single_agency", "national"], n_reviews,
                                  p=[0.6, 0.25, 0.13, 0.02]).astype(object),
        "decision_date": _date_column(decision),
        "completed_date": _date_column(completed),
        "final_report_sent_date": _date_column(sent),
        "published_date": _date_column(published),
    })
    tables = Tables(notifications, rapid_reviews, practice_reviews, pd.DataFrame(columns=list(FLAG_INPUT_COLUMNS)))
    tables.flags = _flag_cells(tables, rng)
    return tables


# (dataset, id column, a column ingest may flag): dates the stages read, and a few they do not
FLAGGED_CELLS = (
    ("notifications", "notification_id", ("notified_date", "aware_date", "incident_date", "age_years")),
    ("rapid_reviews", "rapid_review_id", ("completed_date", "panel_response_date")),
    ("practice_reviews", "review_id", ("completed_date", "published_date", "final_report_sent_date", "author")),
)


def _flag_cells(tables: Tables, rng: np.random.Generator) -> pd.DataFrame:
    """Flag about FLAG_SHARE of the case rows: one cell each, blanked in the table as ingest does."""
    out = []
    for dataset, id_column, columns in FLAGGED_CELLS:
        frame = getattr(tables, dataset)
        rows = np.flatnonzero(rng.random(len(frame)) < FLAG_SHARE)
        column = rng.choice(np.array(columns, dtype=object), len(rows))
        for c in set(column) & set(frame.columns):
            frame.iloc[rows[column == c], frame.columns.get_loc(c)] = pd.NaT
        codes = frame["partnership_code"].to_numpy(dtype=object)[rows]
        out.append(pd.DataFrame({
            "partnership_code": codes, "dataset": dataset,
            "record_id": frame[id_column].to_numpy(dtype=object)[rows], "columns": column,
            "file_name": np.strings.add(codes.astype(str), "_2028-10-10.csv").astype(object),
            "row_number": rng.integers(2, 400, len(rows)),
            "message": np.strings.add(column.astype(str), " 'n/a' is not a date (day/month/year or YYYY-MM-DD)").astype(object),
        }))
    return pd.concat(out, ignore_index=True)[list(FLAG_INPUT_COLUMNS)]


def sample_of(tables: Tables, rows: int, seed: int) -> Tables:
    """About `rows` rows: a random share of notifications (with all their rapid reviews) and of
    practice reviews, so every case in the sample is whole. Key order is kept."""
    rng = np.random.default_rng(seed + 1)
    share = min(1.0, rows / tables.rows)
    notes = tables.notifications[rng.random(len(tables.notifications)) < share]
    keys = pd.MultiIndex.from_frame(notes[["partnership_code", "notification_id"]])
    rapid_keys = pd.MultiIndex.from_frame(tables.rapid_reviews[["partnership_code", "notification_id"]])
    rapid = tables.rapid_reviews[rapid_keys.isin(keys)]
    reviews = tables.practice_reviews[rng.random(len(tables.practice_reviews)) < share]
    kept = {(dataset, p, r) for dataset, frame, id_column in (
        ("notifications", notes, "notification_id"), ("rapid_reviews", rapid, "rapid_review_id"),
        ("practice_reviews", reviews, "review_id")) for p, r in zip(frame["partnership_code"], frame[id_column])}
    flags = tables.flags[[k in kept for k in zip(tables.flags["dataset"], tables.flags["partnership_code"],
                                                 tables.flags["record_id"])]]
    return Tables(*(t.reset_index(drop=True) for t in (notes, rapid, reviews, flags)))


def _bare_numpy_arrays(tables: Tables, result: pd.DataFrame) -> tuple[list, list]:
    """The inputs of the business-day calls behind `result`, taken from it (outside any timer):
    (start, n) for each due date and (start, end) for each working-days-taken figure."""
    cfg = load_config()
    number = {(rs.name, stage): getattr(rs.stages[stage], attr) for rs in cfg.rule_sets
              for stage, attr in (("notification", "working_days"), ("rapid_review", "working_days"),
                                  ("publication_notice", "working_days_before_publication"))}
    offsets, counts = [], []

    def days(series: pd.Series) -> np.ndarray:
        return series.to_numpy().astype("datetime64[D]")

    for stage in ("notification", "rapid_review"):
        rows = result[(result["stage"] == stage) & result["due_date"].notna()]
        n = np.array([number[(str(r), stage)] for r in rows["rule_set"]], dtype=np.int64)
        offsets.append((days(rows["start_date"]), n, days(rows["due_date"])))
        taken = rows[rows["working_days_taken"].notna()]
        counts.append((days(taken["start_date"]), days(taken["completed_date"]),
                       taken["working_days_taken"].to_numpy(dtype=np.int64)))
    rows = result[(result["stage"] == "publication_notice") & result["due_date"].notna()]
    published = rows[["partnership_code", "record_id"]].astype(str).merge(
        tables.practice_reviews[["partnership_code", "review_id", "published_date"]].astype(
            {"partnership_code": str, "review_id": str}),
        left_on=["partnership_code", "record_id"], right_on=["partnership_code", "review_id"], how="left")
    n = np.array([-number[(str(r), "publication_notice")] for r in rows["rule_set"]], dtype=np.int64)
    offsets.append((days(published["published_date"]), n, days(rows["due_date"])))
    counts.append((days(rows["start_date"]), days(published["published_date"]),
                   rows["working_days_taken"].to_numpy(dtype=np.int64)))
    return offsets, counts


def _add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--timeliness-rows", type=int, default=1_000_000, metavar="N",
                       help="case rows in the synthetic tables (default 1,000,000)")
    group.add_argument("--timeliness-sample", type=int, default=20_000, metavar="N",
                       help="rows the per-row baseline runs on, then extrapolated (default 20,000)")


@benchmark("timeliness", "statutory timeliness at national scale (issue 4)", _add_arguments)
def run(options: argparse.Namespace) -> list[Target]:
    cfg = load_config()
    cal = calendar()  # built once per process (the holidays package), as in the pipeline; not timed
    tables = synthetic_tables(options.timeliness_rows, options.seed)
    codes = tables.notifications["partnership_code"].nunique()
    say(f"  data: {tables.describe()}, {codes} local authorities, {FIRST_DAY.year}-{AS_OF.year}, "
        f"seed {options.seed}; judged as of {AS_OF.isoformat()}; at-risk windows (working days): "
        + ", ".join(f"{s} {cfg.at_risk_days(s)}" for s in OPEN_STAGES))

    def whole_table() -> pd.DataFrame:
        return compute_timeliness(tables.notifications, tables.rapid_reviews, tables.practice_reviews, cfg, AS_OF,
                                  flags=tables.flags)

    # The business-day calls' inputs come from one untimed run of (a), so (c) works on exactly
    # the arrays (a) gives numpy; then (a) and (c) are timed in alternating rounds.
    offsets, counts = _bare_numpy_arrays(tables, whole_table())

    def bare() -> tuple[list, list]:
        due = [np.busday_offset(start, n, roll="forward", busdaycal=cal) for start, n, _ in offsets]
        taken = [np.busday_count(start, end, busdaycal=cal) for start, end, _ in counts]
        return due, taken

    timed = interleaved(options.repeat, {"a": whole_table, "c": bare})
    (a, result), (c, (due, taken)) = timed["a"], timed["c"]
    statuses = result["status"].value_counts()
    say(f"  (a) compute_timeliness, whole table (fastest of {options.repeat}):  {a:8.3f} s  "
        f"-> {len(result):,} timeliness rows, {tables.rows / a:,.0f} case rows/s")
    say("      statuses: " + ", ".join(f"{s} {int(statuses.get(s, 0)):,}" for s in result["status"].cat.categories))
    from_flags = int(result["reason"].str.endswith("judged unknown until corrected", na=False).sum())
    say(f"      unknown because a cell they read was flagged: {from_flags:,}")

    # (b) the per-row baseline on a sample, checked against (a)'s implementation on that sample
    sample = sample_of(tables, options.timeliness_sample, options.seed)
    b_sample, expected = best_of(1, lambda: compute_timeliness_reference(
        sample.notifications, sample.rapid_reviews, sample.practice_reviews, cfg, AS_OF, flags=sample.flags))
    got = to_records(compute_timeliness(sample.notifications, sample.rapid_reviews, sample.practice_reviews, cfg, AS_OF,
                                        flags=sample.flags))
    identical = got == expected
    b = b_sample * tables.rows / sample.rows
    say(f"  (b) per-row reference (holidays package) on a {sample.rows:,}-row sample: {b_sample:.3f} s; "
        f"extrapolated linearly to {tables.rows:,} rows:  {b:8.1f} s")
    say(f"      identical rows on the sample: {'yes' if identical else 'NO'} ({len(expected):,} rows compared)")
    if not identical:
        diff = next((i for i, (x, y) in enumerate(zip(got, expected)) if x != y), min(len(got), len(expected)))
        say(f"      first difference at row {diff}: vectorised {got[diff] if diff < len(got) else '-'}; "
            f"per-row {expected[diff] if diff < len(expected) else '-'}")

    # (c) the bare numpy business-day calls, checked to give (a)'s due dates and counts
    same = all(np.array_equal(d, want) for d, (_, _, want) in zip(due, offsets)) and all(
        np.array_equal(t, want) for t, (_, _, want) in zip(taken, counts))
    n_offsets, n_counts = sum(len(o[0]) for o in offsets), sum(len(x[0]) for x in counts)
    say(f"  (c) bare numpy on the same arrays, same calendar: np.busday_offset for {n_offsets:,} due dates + "
        f"np.busday_count for {n_counts:,} working-days-taken (fastest of {options.repeat}, alternating with (a)):  "
        f"{c:8.3f} s" + ("" if same else "  [WARNING: results differ from (a)]"))

    speedup, ratio = b / a, a / c
    say(f"  ratios: (b)/(a) = {speedup:,.0f}x faster than per-row; (a)/(c) = {ratio:.2f}x the bare numpy calls")
    return [
        Target(f"(a) compute_timeliness on {tables.rows:,} rows under {TARGET_SECONDS:g} s", f"{a:.3f} s",
               a < TARGET_SECONDS),
        Target(f"(b)/(a) at least {TARGET_SPEEDUP:g}x", f"{speedup:,.0f}x", speedup >= TARGET_SPEEDUP),
        Target(f"(a)/(c) at most {TARGET_NUMPY_RATIO:g}x", f"{ratio:.2f}x", ratio <= TARGET_NUMPY_RATIO),
        Target("(b) per-row and vectorised rows identical on the sample", "yes" if identical else "no", identical),
    ]
