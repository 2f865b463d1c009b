"""Statutory timeliness of every case and stage, as of a given day, over whole tables at once.

One row per case and stage, shaped like the warehouse `timeliness` table (DESIGN.md, "Statutory
timeliness rules"). Every timescale comes from the config's rule sets; a case is judged by the
rule set in force on its start date. The clock is `as_of` (the end of the run's data interval),
never the wall clock, so rerunning a period gives the same rows:
- a case whose start date is after `as_of` has not begun and is left out;
- any other date after `as_of` has not happened yet (a completion after `as_of` is still open),
  and is shown blank.

The work is column-wise (numpy busday functions and pandas joins); loops run only over the few
rule sets and stages, never over cases.

Choices the brief left open, written down here so analysts can find them:
- Rule set. Notification and rapid-review stages take the rule set in force on the
  notification's aware_date (notified_date if aware_date is blank), because which column starts
  the rapid-review clock is itself a rule-set option. Practice-review stages use their own start
  date (decision_date; final_report_sent_date, else published_date, for publication). A case with
  none of those dates is named with the rule set in force on `as_of`.
- publication_notice: start and completed are both final_report_sent_date (the act judged), due
  is the latest day it could be sent, and working_days_taken is the notice actually given: the
  working days from sending up to publication. So `met` means completed <= due, as for every
  other stage, and also notice >= the configured days. Reviews of every type are judged if they
  have either date.
- unknown: start missing, a date the working-day calendar cannot count (before 2010), or a
  completion before its start (publication: sent after published). The start, due and
  completed dates are still shown when known, to help whoever corrects the return.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime

import numpy as np
import pandas as pd

from reviews.config import Config, ConfigError, RuleSet
from reviews.working_days import (
    CALENDAR_START,
    NAT,
    add_calendar_months,
    add_working_days,
    to_days,
    working_days_between,
)

STAGES = ("notification", "rapid_review", "lcspr_completion", "publication_notice")
STATUSES = ("met", "late", "open_on_track", "open_at_risk", "open_overdue", "not_applicable", "unknown")
OUTPUT_COLUMNS = (
    "partnership_code",
    "stage",
    "record_id",
    "as_of_date",
    "start_date",
    "due_date",
    "completed_date",
    "working_days_taken",
    "status",
    "rule_set",
    "reason",
)

# Which template columns may start each stage's clock, and which StageRule number sets its length.
START_COLUMNS = {
    "notification": ("aware_date", "incident_date"),
    "rapid_review": ("aware_date", "notified_date", "incident_date"),
    "lcspr_completion": ("decision_date",),
    "publication_notice": ("final_report_sent_date",),
}
STAGE_NUMBER = {
    "notification": "working_days",
    "rapid_review": "working_days",
    "lcspr_completion": "calendar_months",
    "publication_notice": "working_days_before_publication",
}

NOTIFICATION_COLUMNS = ("notification_id", "incident_date", "aware_date", "notified_date")
RAPID_REVIEW_COLUMNS = ("notification_id", "completed_date")
PRACTICE_REVIEW_COLUMNS = (
    "review_id",
    "review_type",
    "decision_date",
    "completed_date",
    "final_report_sent_date",
    "published_date",
)


# --- inputs -----------------------------------------------------------------------------------


def _as_of_day(as_of: date) -> np.datetime64:
    """The judging day as datetime64[D]; a datetime is cut to its date."""
    if isinstance(as_of, datetime):
        as_of = as_of.date()
    if not isinstance(as_of, date):
        raise TypeError(f"as_of must be a date, not {type(as_of).__name__}")
    return np.datetime64(as_of, "D")


def _table(frame: pd.DataFrame | None, name: str, unique: str | None, columns: Sequence[str]) -> dict[str, np.ndarray]:
    """One warehouse table as arrays: text as str objects (None when blank), *_date as datetime64[D].

    An empty frame may lack columns; a non-empty one must have them all (a missing column is a
    caller bug, not "unknown" data), and so is a blank key (partnership_code, the first column).
    `unique` names the id that must not repeat in a partnership.
    """
    frame = pd.DataFrame() if frame is None else frame.reset_index(drop=True)
    wanted = ["partnership_code", *columns]
    if len(frame) == 0:
        return {c: np.array([], dtype="datetime64[D]" if c.endswith("_date") else object) for c in wanted}
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise ValueError(f"{name}: missing column(s) {', '.join(missing)}")
    out: dict[str, np.ndarray] = {}
    for c in wanted:
        if c.endswith("_date"):
            try:
                out[c] = to_days(frame[c])
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{name}.{c}: not a date: {exc}") from None
        else:
            out[c] = frame[c].astype("string").str.strip().to_numpy(dtype=object, na_value=None)
    for key_column in ("partnership_code", columns[0]):
        blank = np.equal(out[key_column], None)
        if blank.any():
            raise ValueError(f"{name}: {key_column} is blank in {int(blank.sum())} row(s)")
    if unique:
        key = pd.DataFrame({"p": out["partnership_code"], "i": out[unique]})
        dupes = key[key.duplicated()]
        if len(dupes):
            raise ValueError(f"{name}: {unique} {dupes.iloc[0].i!r} appears more than once for {dupes.iloc[0].p}")
    return out


def _subset(table: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[mask] for k, v in table.items()}


def _earliest_rapid_review(notes: dict[str, np.ndarray], reviews: dict[str, np.ndarray]) -> np.ndarray:
    """Each notification's earliest rapid review completed_date (NaT when none is recorded)."""
    if len(notes["notification_id"]) == 0:
        return np.array([], dtype="datetime64[D]")
    rr = pd.DataFrame(
        {"p": reviews["partnership_code"], "n": reviews["notification_id"], "done": reviews["completed_date"]}
    )
    earliest = rr.groupby(["p", "n"], sort=False)["done"].min().rename("done").reset_index()
    left = pd.DataFrame({"p": notes["partnership_code"], "n": notes["notification_id"]})
    joined = left.merge(earliest, on=["p", "n"], how="left", sort=False, validate="many_to_one")
    return to_days(joined["done"])


# --- rule sets --------------------------------------------------------------------------------


def _rules(cfg: Config) -> list[RuleSet]:
    """Rule sets oldest first (stable, so equal dates keep their config order, as rule_set_for)."""
    rules = sorted(cfg.rule_sets, key=lambda r: r.in_force_from)
    if not rules:
        raise ConfigError("timeliness.rule_sets: at least one rule set is needed")
    return rules


def _rule_index(rules: list[RuleSet], anchor: np.ndarray, as_of: np.datetime64) -> np.ndarray:
    """Index of the rule set in force on each anchor date (on as_of when the anchor is blank).

    Same answer as Config.rule_set_for: the latest rule set in force, else the earliest.
    """
    starts = np.array([r.in_force_from for r in rules], dtype="datetime64[D]")
    when = np.where(np.isnat(anchor), as_of, anchor)
    return np.clip(np.searchsorted(starts, when, side="right") - 1, 0, None)


def _rule_values(rules: list[RuleSet], stage: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per rule set: name, start column and timescale for one stage (checked against the template)."""
    names, starts, numbers = [], [], []
    for rs in rules:
        rule = rs.stages[stage]
        where = f"timeliness rule set {rs.name!r}, stage {stage}"
        if rule.start not in START_COLUMNS[stage]:
            allowed = " or ".join(START_COLUMNS[stage])
            raise ConfigError(f"{where}: start must be {allowed}, not {rule.start!r}")
        number = getattr(rule, STAGE_NUMBER[stage])
        if number is None:
            raise ConfigError(f"{where}: {STAGE_NUMBER[stage]} is missing")
        names.append(rs.name)
        starts.append(rule.start)
        numbers.append(int(number))
    return np.array(names, dtype=object), np.array(starts, dtype=object), np.array(numbers, dtype=np.int64)


def _pick_start(table: dict[str, np.ndarray], start_column: np.ndarray) -> np.ndarray:
    """Each row's start date from the column its rule set names (loop over columns, not rows)."""
    start = np.full(len(start_column), NAT)
    for column in np.unique(start_column.astype(str)):
        chosen = start_column == column
        start[chosen] = table[column][chosen]
    return start


# --- judging ----------------------------------------------------------------------------------


def _iso(days: np.ndarray) -> np.ndarray:
    return np.datetime_as_string(days, unit="D")


def _say(*parts: np.ndarray | str) -> np.ndarray:
    """Join string arrays and literals element-wise into reasons."""
    out = np.asarray(parts[0]).astype(str)
    for part in parts[1:]:
        out = np.strings.add(out, np.asarray(part).astype(str))
    return out.astype(object)


def _before(later: np.ndarray, earlier: np.ndarray) -> np.ndarray:
    """later < earlier where both are known (NaT compares False, made explicit here)."""
    return ~np.isnat(later) & ~np.isnat(earlier) & (later < earlier)


def _after(days: np.ndarray, limit: np.datetime64) -> np.ndarray:
    return ~np.isnat(days) & (days > limit)


def _blank_after(days: np.ndarray, as_of: np.datetime64) -> np.ndarray:
    """Dates after as_of have not happened yet as of as_of."""
    return np.where(_after(days, as_of), NAT, days)


def _open_status(due: np.ndarray, as_of: np.datetime64, at_risk_until: np.datetime64) -> np.ndarray:
    """Not done: overdue after the due date, at risk within the configured working days, else on track.

    `due <= at_risk_until` (as_of + k working days) is the same test as "working days from
    as_of to due <= k", without counting each row.
    """
    return np.select(
        [due < as_of, due <= at_risk_until],
        ["open_overdue", "open_at_risk"],
        "open_on_track",
    ).astype(object)


def _frame(stage: str, cols: dict[str, np.ndarray], as_of: np.datetime64) -> pd.DataFrame:
    """Rows in the warehouse shape: python dates / ints / str, None for blanks."""
    n = len(cols["record_id"])
    data = {
        "partnership_code": cols["partnership_code"],
        "stage": np.full(n, stage, dtype=object),
        "record_id": cols["record_id"],
        "as_of_date": np.full(n, as_of.item(), dtype=object),
        "start_date": cols["start"].astype(object),
        "due_date": cols["due"].astype(object),
        "completed_date": cols["completed"].astype(object),
        "working_days_taken": cols["taken"],
        "status": cols["status"],
        "rule_set": cols["rule_set"],
        "reason": cols["reason"],
    }
    return pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in data.items()}, columns=list(OUTPUT_COLUMNS))


def _judge_clock(
    stage: str,
    table: dict[str, np.ndarray],
    id_column: str,
    rule: tuple[np.ndarray, np.ndarray, np.ndarray],
    completed: np.ndarray,
    completed_label: str,
    due_from: Callable[[np.ndarray, np.ndarray], np.ndarray],
    working_day_clock: bool,
    as_of: np.datetime64,
    at_risk_until: np.datetime64,
) -> pd.DataFrame:
    """A start -> due -> completed stage: met/late once done, open_* until then, unknown if contradictory.

    `rule` is (rule set name, start column, timescale) per row; `due_from(start, timescale)`
    gives the due dates of rows with a usable start.
    """
    names, start_column, timescale = rule
    start = _pick_start(table, start_column)
    keep = ~_after(start, as_of)  # a clock that starts after as_of has not begun
    table, names, start_column, timescale = _subset(table, keep), names[keep], start_column[keep], timescale[keep]
    start, completed = start[keep], _blank_after(completed[keep], as_of)

    missing = np.isnat(start)
    uncountable = ~missing & (start < CALENDAR_START) if working_day_clock else np.zeros(len(start), bool)
    backwards = _before(completed, start)
    usable = ~missing & ~uncountable
    due = np.full(len(start), NAT)
    due[usable] = due_from(start[usable], timescale[usable])

    done = ~np.isnat(completed)
    unknown = missing | uncountable | backwards
    status = np.where(
        unknown,
        "unknown",
        np.where(done, np.where(completed <= due, "met", "late"), _open_status(due, as_of, at_risk_until)),
    ).astype(object)

    reason = np.full(len(start), None, dtype=object)
    reason[backwards] = _say(completed_label, " ", _iso(completed[backwards]), " is before ",
                             start_column[backwards], " ", _iso(start[backwards]))
    reason[uncountable] = _say(start_column[uncountable], " ", _iso(start[uncountable]),
                               " is before the working-day calendar starts (", str(CALENDAR_START), ")")
    reason[missing] = _say(start_column[missing], " is missing")

    taken = np.full(len(start), None, dtype=object)
    if working_day_clock:
        counted = done & ~unknown
        taken[counted] = working_days_between(start[counted], completed[counted]).astype(object)
    cols = dict(
        partnership_code=table["partnership_code"], record_id=table[id_column], start=start, due=due,
        completed=completed, taken=taken, status=status, rule_set=names, reason=reason,
    )
    return _frame(stage, cols, as_of)


def _notification_stages(
    notes: dict[str, np.ndarray], rapid: dict[str, np.ndarray], rules: list[RuleSet],
    as_of: np.datetime64, at_risk_until: np.datetime64,
) -> list[pd.DataFrame]:
    """The notification and rapid_review stages, both judged by the rule set on aware_date."""
    anchor = np.where(np.isnat(notes["aware_date"]), notes["notified_date"], notes["aware_date"])
    idx = _rule_index(rules, anchor, as_of)
    out = []
    for stage, completed, label in (
        ("notification", notes["notified_date"], "notified_date"),
        ("rapid_review", _earliest_rapid_review(notes, rapid), "rapid review completed_date"),
    ):
        names, starts, numbers = _rule_values(rules, stage)
        out.append(_judge_clock(
            stage, notes, "notification_id", (names[idx], starts[idx], numbers[idx]), completed, label,
            add_working_days, True, as_of, at_risk_until,
        ))
    return out


def _lcspr_stage(
    reviews: dict[str, np.ndarray], rules: list[RuleSet], as_of: np.datetime64, at_risk_until: np.datetime64
) -> pd.DataFrame:
    """LCSPR completion: a calendar-month clock from the decision to review."""
    lcspr = _subset(reviews, reviews["review_type"] == "lcspr")
    idx = _rule_index(rules, lcspr["decision_date"], as_of)
    names, starts, numbers = _rule_values(rules, "lcspr_completion")
    return _judge_clock(
        "lcspr_completion", lcspr, "review_id", (names[idx], starts[idx], numbers[idx]),
        lcspr["completed_date"], "completed_date", add_calendar_months, False, as_of, at_risk_until,
    )


def _publication_stage(reviews: dict[str, np.ndarray], rules: list[RuleSet], as_of: np.datetime64) -> pd.DataFrame:
    """Publication notice: the final report must reach the Panel and the Secretary of State at
    least N working days before publication. Judged only once published; never "open"."""
    sent_all, published_all = reviews["final_report_sent_date"], reviews["published_date"]
    happened = ~np.isnat(sent_all) | ~np.isnat(published_all)
    rows = _subset(reviews, happened)
    anchor = np.where(np.isnat(rows["final_report_sent_date"]), rows["published_date"], rows["final_report_sent_date"])
    idx = _rule_index(rules, anchor, as_of)
    names, starts, numbers = (a[idx] for a in _rule_values(rules, "publication_notice"))
    sent = _pick_start(rows, starts)
    published = rows["published_date"]
    # Not begun as of as_of: sent later, or nothing sent and publication still to come.
    keep = ~_after(sent, as_of) & ~(np.isnat(sent) & _after(published, as_of))
    rows, names, starts, numbers = _subset(rows, keep), names[keep], starts[keep], numbers[keep]
    sent, published = sent[keep], _blank_after(published[keep], as_of)

    missing = np.isnat(sent)
    not_published = ~missing & np.isnat(published)
    backwards = _before(published, sent)
    uncountable = ~missing & ~not_published & ~backwards & (sent < CALENDAR_START)  # so published is too
    judged = ~missing & ~not_published & ~backwards & ~uncountable

    due = np.full(len(sent), NAT)
    due[judged] = add_working_days(published[judged], -numbers[judged])
    taken = np.full(len(sent), None, dtype=object)
    taken[judged] = working_days_between(sent[judged], published[judged]).astype(object)
    status = np.select(
        [missing | backwards | uncountable, not_published, judged & (sent <= due)],
        ["unknown", "not_applicable", "met"],
        "late",
    ).astype(object)

    reason = np.full(len(sent), None, dtype=object)
    reason[not_published] = "not yet published"
    reason[missing] = _say(starts[missing], " is missing")
    reason[backwards] = _say(starts[backwards], " ", _iso(sent[backwards]), " is after published_date ",
                             _iso(published[backwards]))
    reason[uncountable] = _say(starts[uncountable], " ", _iso(sent[uncountable]),
                               " is before the working-day calendar starts (", str(CALENDAR_START), ")")
    cols = dict(
        partnership_code=rows["partnership_code"], record_id=rows["review_id"], start=sent, due=due,
        completed=sent, taken=taken, status=status, rule_set=names, reason=reason,
    )
    return _frame("publication_notice", cols, as_of)


def _in_order(frame: pd.DataFrame) -> pd.DataFrame:
    """A fixed row order (partnership, stage as listed in STAGES, record id) so reruns compare equal."""
    order = frame["stage"].map({s: i for i, s in enumerate(STAGES)})
    keyed = frame.assign(_stage_order=order).sort_values(
        ["partnership_code", "_stage_order", "record_id"], kind="stable"
    )
    return keyed.drop(columns="_stage_order").reset_index(drop=True)


def compute_timeliness(
    notifications: pd.DataFrame,
    rapid_reviews: pd.DataFrame,
    practice_reviews: pd.DataFrame,
    cfg: Config,
    as_of: date,
) -> pd.DataFrame:
    """Every case's statutory timeliness for each stage, as of `as_of`, ready to upsert.

    Inputs are the warehouse tables (template columns plus partnership_code); dates may be
    `date`, ISO strings or blank. Returns exactly OUTPUT_COLUMNS, all object dtype: dates as
    `date` or None, working_days_taken as int or None.
    """
    day = _as_of_day(as_of)
    rules = _rules(cfg)
    at_risk_until = np.datetime64(add_working_days(day, int(cfg.at_risk_working_days)), "D")
    notes = _table(notifications, "notifications", "notification_id", NOTIFICATION_COLUMNS)
    rapid = _table(rapid_reviews, "rapid_reviews", None, RAPID_REVIEW_COLUMNS)
    reviews = _table(practice_reviews, "practice_reviews", "review_id", PRACTICE_REVIEW_COLUMNS)
    parts = [
        *_notification_stages(notes, rapid, rules, day, at_risk_until),
        _lcspr_stage(reviews, rules, day, at_risk_until),
        _publication_stage(reviews, rules, day),
    ]
    return _in_order(pd.concat(parts, ignore_index=True))
