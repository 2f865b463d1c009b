"""Statutory timeliness of every case and stage, as of a given day, over whole tables at once.

One row per case and stage, shaped like the warehouse `timeliness` table (docs/design.md, "Statutory
timeliness rules"). Every timescale comes from the config's rule sets; a case is judged by the
rule set in force on its start date. The clock is `as_of` (the end of the run's data interval),
never the wall clock, so rerunning a period gives the same rows:
- a case whose start date is after `as_of` has not begun and is left out;
- any other date after `as_of` has not happened yet (a completion after `as_of` is still open),
  and is shown blank.

The work is column-wise (working days looked up in tables built once from numpy's business-day
calendar, integer keys); loops run only over the few rule sets and stages, never over cases. It is built for national scale (`make bench`: a
million case rows well inside a second on two cores), which is why it avoids pandas joins and
sorts on text: partnership codes and record ids become integer codes once, and the result keeps
numpy dates until `to_records` turns it into warehouse rows. `reviews_dev.timeliness_reference` is the
plain per-case version the benchmark and the property tests hold this one to.

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
- unknown, too, when the judgement reads a cell the return got wrong and ingest loaded blank with
  a `flag` (table row_flags; `flags` here): never met, late or overdue on a guess. Which cells a
  stage reads is FLAG_COLUMNS: notification, its rule set's start column, aware_date (which picks
  the rule set) and notified_date; rapid_review, the same start and aware_date and the completed_date
  of any of the case's rapid reviews; lcspr_completion, decision_date and completed_date;
  publication_notice, final_report_sent_date and published_date (a review whose only publication
  date was flagged blank gets its row, unknown, instead of disappearing). The reason quotes the
  return, its row and the flag's sentence.
- At risk: the window is per stage (config `timeliness.at_risk_working_days`, one number or one
  per stage: `Config.at_risk_days`).
- Record ids and partnership codes are used as stored (ingest has already trimmed them); a
  blank one (None, NaN or '') is refused, as is an id that repeats within a partnership.
- Row order: by stage (in STAGES order), then partnership code, then record id, whatever the
  order of the input rows. Input already in key order (as `timeliness.run.run_timeliness` reads it)
  is checked, not sorted again.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from reviews.core.config import Config, ConfigError, RuleSet
from reviews.core.frame_values import column_values
from reviews.core.working_days import (
    CALENDAR_END,
    CALENDAR_START,
    NAT,
    add_calendar_months,
    add_working_days,
    to_days,
    working_day_index,
    working_day_ordinals,
    working_days_at,
    working_days_between,
)

try:  # a merge of two sorted arrays (Cython); the rapid-review join falls back to hashing without it
    from pandas._libs.join import left_join_indexer_unique as _merge_sorted
except ImportError:  # pragma: no cover - another pandas
    _merge_sorted = None

STAGES = ("notification", "rapid_review", "lcspr_completion", "publication_notice")
STATUSES = ("met", "late", "open_on_track", "open_at_risk", "open_overdue", "not_applicable", "unknown")
OPEN_STATUSES = ("open_on_track", "open_at_risk", "open_overdue")
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
DATE_COLUMNS = ("as_of_date", "start_date", "due_date", "completed_date")
CATEGORY_COLUMNS = ("partnership_code", "stage", "status", "rule_set")

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

# The current flags of loaded rows (table row_flags, superseded_by_file_id null) as compute_timeliness
# takes them: `columns` the template columns the broken rule reads, comma-separated.
FLAG_INPUT_COLUMNS = ("partnership_code", "dataset", "record_id", "columns", "file_name", "row_number", "message")
FLAG_SUFFIX = "judged unknown until corrected"
# The cells each stage's judgement reads, by dataset ("start": the start column its rule set names).
FLAG_COLUMNS = {
    "notification": {"notifications": ("start", "aware_date", "notified_date")},
    "rapid_review": {"notifications": ("start", "aware_date"), "rapid_reviews": ("completed_date",)},
    "lcspr_completion": {"practice_reviews": ("start", "completed_date")},
    "publication_notice": {"practice_reviews": ("start", "published_date")},
}

MET, LATE, ON_TRACK, AT_RISK, OVERDUE, NOT_APPLICABLE, UNKNOWN = (np.int8(i) for i in range(len(STATUSES)))
_NO_DATE = np.iinfo(np.int64).max  # stands for "no date" where a minimum is taken


# --- inputs -----------------------------------------------------------------------------------


def _as_of_day(as_of: date) -> np.datetime64:
    """The judging day as datetime64[D]; a datetime is cut to its date."""
    if isinstance(as_of, datetime):
        as_of = as_of.date()
    if not isinstance(as_of, date):
        raise TypeError(f"as_of must be a date, not {type(as_of).__name__}")
    return np.datetime64(as_of, "D")


@dataclass
class _Table:
    """One input table as arrays: `code` indexes the shared partnership codes, text columns are
    object arrays, *_date columns datetime64[D]."""

    code: np.ndarray
    cols: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.code)

    def take(self, index: np.ndarray, columns: Sequence[str] | None = None) -> _Table:
        """The rows at `index` (a mask or positions), of every column or only those named."""
        return _Table(self.code[index], {k: self.cols[k][index] for k in (columns or self.cols)})


def _text(series: pd.Series) -> np.ndarray:
    """A text column as an object array (no copy for object and python-backed str columns)."""
    if series.dtype.kind in "iub":  # ids typed in as numbers are still ids
        series = series.astype(str)
    return series.to_numpy(dtype=object)


def _factorize_key(values: np.ndarray, name: str, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of a key column, refusing blanks (None, NaN or '').

    A column in key order is a few long runs of one value (a partnership's rows together): then
    only the runs are hashed. Otherwise every row is.
    """
    runs = np.ones(len(values), dtype=bool)
    runs[1:] = values[1:] != values[:-1]
    starts = np.flatnonzero(runs)
    if 16 * len(starts) < len(values):
        run_codes, uniques = pd.factorize(values[starts])
        codes = np.repeat(run_codes, np.diff(np.append(starts, len(values))))
    else:
        codes, uniques = pd.factorize(values)
    blank = np.flatnonzero(np.asarray(uniques, dtype=object) == "")
    n_blank = int(np.count_nonzero(codes < 0)) + (int(np.count_nonzero(codes == blank[0])) if blank.size else 0)
    if n_blank:
        raise ValueError(f"{name}: {column} is blank in {n_blank} row(s)")
    return codes, np.asarray(uniques, dtype=object)


def _read(frame: pd.DataFrame | None, name: str, columns: Sequence[str],
          optional: Sequence[str] = ()) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(partnership_code values, columns) of one warehouse table (`optional` ones when present).

    An empty frame may lack columns; a non-empty one must have them all (a missing column is a
    caller bug, not "unknown" data), and so is a blank key (checked where the keys are coded).
    """
    frame = pd.DataFrame() if frame is None else frame
    if len(frame) == 0:
        empty = {c: np.array([], dtype="datetime64[D]" if c.endswith("_date") else object) for c in columns}
        return np.array([], dtype=object), empty
    missing = [c for c in ("partnership_code", *columns) if c not in frame.columns]
    if missing:
        raise ValueError(f"{name}: missing column(s) {', '.join(missing)}")
    out: dict[str, np.ndarray] = {}
    for c in (*columns, *(c for c in optional if c in frame.columns)):
        if c.endswith("_date"):
            try:
                out[c] = to_days(frame[c])
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{name}.{c}: not a date: {exc}") from None
        else:
            out[c] = _text(frame[c])
    return _text(frame["partnership_code"]), out


def _check_not_blank(values: np.ndarray, name: str, column: str) -> None:
    blank = pd.isna(values) | (values == "")
    if blank.any():
        raise ValueError(f"{name}: {column} is blank in {int(blank.sum())} row(s)")


def _code_tables(raw: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]]) -> tuple[np.ndarray, dict[str, _Table]]:
    """Give every table the same integer partnership codes, in code order (so sorting by the
    integer sorts by the text). Factorising is a hash per row; the sort is of the few codes."""
    factorised = {name: _factorize_key(p, name, "partnership_code") for name, (p, _) in raw.items()}
    names = np.array(sorted({str(u) for _, uniques in factorised.values() for u in uniques}), dtype=object)
    tables = {}
    for name, (codes, uniques) in factorised.items():
        to_shared = np.searchsorted(names, uniques.astype(str)).astype(np.int32)
        tables[name] = _Table(to_shared[codes] if len(codes) else codes.astype(np.int32), raw[name][1])
    return names, tables


def _in_key_order(table: _Table, id_column: str, name: str, partnerships: np.ndarray) -> _Table:
    """The table sorted by (partnership, id), refusing an id that repeats in a partnership.

    Input that is already in key order is only checked (two comparisons per row).
    """
    code, ids = table.code, table.cols[id_column]
    if len(table) < 2:
        return table
    same = code[1:] == code[:-1]
    try:
        ordered = bool(np.all((code[1:] > code[:-1]) | (same & (ids[1:] > ids[:-1]))))
    except TypeError:  # a blank (None, NaN) among them, or ids of mixed types: compare them as text
        _check_not_blank(ids, name, id_column)
        ids = ids.astype(str)
        ordered = False
    if not ordered:
        order = np.lexsort((ids, code))
        table, ids = table.take(order), ids[order]
        code, same = table.code, table.code[1:] == table.code[:-1]
        repeated = np.flatnonzero(same & (ids[1:] == ids[:-1]))
        if repeated.size:
            i = repeated[0]
            raise ValueError(
                f"{name}: {id_column} {table.cols[id_column][i]!r} appears more than once for {partnerships[code[i]]}"
            )
    return table


def _bounds(code: np.ndarray, n_codes: int) -> np.ndarray:
    """Where each partnership's rows begin in a table sorted by code (n_codes + 1 positions)."""
    return np.searchsorted(code, np.arange(n_codes + 1, dtype=code.dtype if len(code) else np.int32))


def _merged_matches(notes: _Table, rapid: _Table) -> np.ndarray | None:
    """The notification row of each rapid review (-1: none), by merging sorted runs; None when it
    cannot be done that way (the rapid reviews are not in (partnership, notification_id) order,
    a blank or an odd id is among them): the caller then hashes.

    Rows read in key order usually are in that order (a partnership numbers its rapid reviews as
    the notifications come), and a merge compares each id about once, where a hash join hashes
    every id of both tables: two thirds of the time of the join.
    """
    if _merge_sorted is None:
        return None
    note_code, note_ids = notes.code, notes.cols["notification_id"]
    code, ids = rapid.code, rapid.cols["notification_id"]
    if not np.all(code[1:] >= code[:-1]):
        return None
    try:
        if not np.all((ids[1:] >= ids[:-1]) | (code[1:] != code[:-1])):
            return None
    except TypeError:  # None or NaN among them, or ids of mixed types
        return None
    n_codes = int(max(note_code.max(), code.max())) + 1
    note_at, rapid_at = _bounds(note_code, n_codes), _bounds(code, n_codes)
    # A sorted run starts with its smallest id: '' (blank) would be there, as would a lone None or NaN.
    for first in (note_ids[note_at[:-1][np.diff(note_at) > 0]], ids[rapid_at[:-1][np.diff(rapid_at) > 0]]):
        if (pd.isna(first) | (first == "")).any():
            return None
    which = np.full(len(code), -1, dtype=np.intp)
    try:
        for c in np.flatnonzero((np.diff(rapid_at) > 0) & (np.diff(note_at) > 0)):  # partnerships, not cases
            a, s, e = note_at[c], rapid_at[c], rapid_at[c + 1]
            got = _merge_sorted(ids[s:e], note_ids[a:note_at[c + 1]])
            which[s:e] = np.where(got >= 0, got + a, -1)
    except (TypeError, ValueError):  # ids of mixed types
        return None
    return which


def _hashed_matches(notes: _Table, rapid: _Table) -> np.ndarray:
    """The notification row of each rapid review (-1: none), through integer keys: one hash of
    the ids, then integer lookups. Blank notification ids are refused here, in both tables."""
    n = len(notes)
    # '' goes first, so code 0 means blank (as does -1, for None or NaN) and note i would be i + 1.
    ids = np.concatenate([np.array([""], dtype=object), notes.cols["notification_id"], rapid.cols["notification_id"]])
    id_code, _ = pd.factorize(ids)
    id_code = id_code[1:] - 1
    blank = id_code < 0
    for name, part in (("notifications", blank[:n]), ("rapid_reviews", blank[n:])):
        if part.any():
            raise ValueError(f"{name}: notification_id is blank in {int(part.sum())} row(s)")
    if n == 0 or len(rapid) == 0:
        return np.full(len(rapid), -1, dtype=np.intp)
    note_code, rapid_code = id_code[:n], id_code[n:]
    if np.array_equal(note_code, np.arange(n)):
        # Every notification id is used once in the region (the usual case): a code is its row,
        # and a rapid review matches that row when the partnership is the same too.
        which = np.where(rapid_code < n, rapid_code, -1)
        which[notes.code[np.maximum(which, 0)] != rapid.code] = -1
        return which
    # the same id in two partnerships: match on (id, partnership) as one integer
    width = np.int64(max(int(notes.code.max()), int(rapid.code.max())) + 1)
    return pd.Index(note_code.astype(np.int64) * width + notes.code).get_indexer(
        rapid_code.astype(np.int64) * width + rapid.code)


def _earliest_rapid_review(notes: _Table, rapid: _Table) -> tuple[np.ndarray, np.ndarray]:
    """Each notification's earliest rapid review completed_date (NaT when none is recorded), and
    each rapid review's notification row (-1: none; for the flags of rapid reviews).

    Rapid reviews are matched on (partnership, notification_id): by merging when both tables are
    in that order, else by hashing. Blank notification ids are refused, in both tables.
    """
    n = len(notes)
    which = _merged_matches(notes, rapid) if n and len(rapid) else None
    if which is None:
        which = _hashed_matches(notes, rapid)
    if n == 0 or len(rapid) == 0:
        return np.full(n, NAT), which
    done = rapid.cols["completed_date"].view(np.int64)
    use = (which >= 0) & (done != NAT.view(np.int64))
    earliest = np.full(n, _NO_DATE, dtype=np.int64)
    np.minimum.at(earliest, which[use], done[use])
    out = earliest.view("datetime64[D]")
    out[earliest == _NO_DATE] = NAT
    return out, which


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
    if len(rules) == 1:
        return np.zeros(len(anchor), dtype=np.intp)
    starts = np.array([r.in_force_from for r in rules], dtype="datetime64[D]")
    when = np.where(np.isnat(anchor), as_of, anchor)
    return np.clip(np.searchsorted(starts, when, side="right") - 1, 0, None)


@dataclass
class _Rule:
    """One stage's rules, per rule set and per row: `column[i]`/`number[i]` for rule set i."""

    index: np.ndarray  # rule set of each row
    column: list[str]
    number: np.ndarray

    def take(self, mask: np.ndarray) -> _Rule:
        return _Rule(self.index[mask], self.column, self.number)

    def per_row_number(self) -> np.ndarray | int:
        """Each row's timescale (one int when every rule set agrees: numpy then broadcasts it)."""
        if np.all(self.number == self.number[0]):
            return int(self.number[0])
        return self.number[self.index]

    def per_row_column(self, mask: np.ndarray) -> np.ndarray:
        """The start column's name for the rows in `mask` (for reasons: a few rows)."""
        return np.array(self.column, dtype=object)[self.index[mask]]

    def pick_start(self, cols: dict[str, np.ndarray]) -> np.ndarray:
        """Each row's start date from the column its rule set names (a loop over columns)."""
        if len(set(self.column)) == 1:
            return cols[self.column[0]]
        start = np.full(len(self.index), NAT)
        for i, column in enumerate(self.column):
            chosen = self.index == i
            start[chosen] = cols[column][chosen]
        return start


def _stage_rule(rules: list[RuleSet], stage: str, index: np.ndarray) -> _Rule:
    """A stage's start column and timescale per rule set (checked against the template)."""
    columns, numbers = [], []
    for rs in rules:
        rule = rs.stages[stage]
        where = f"timeliness rule set {rs.name!r}, stage {stage}"
        if rule.start not in START_COLUMNS[stage]:
            allowed = " or ".join(START_COLUMNS[stage])
            raise ConfigError(f"{where}: start must be {allowed}, not {rule.start!r}")
        number = getattr(rule, STAGE_NUMBER[stage])
        if number is None:
            raise ConfigError(f"{where}: {STAGE_NUMBER[stage]} is missing")
        columns.append(rule.start)
        numbers.append(int(number))
    return _Rule(index, columns, np.array(numbers, dtype=np.int64))


# --- judging ----------------------------------------------------------------------------------


def _iso(days: np.ndarray) -> np.ndarray:
    return np.datetime_as_string(days, unit="D")


def _say(*parts: np.ndarray | str) -> np.ndarray:
    """Join string arrays and literals element-wise into reasons."""
    out = np.asarray(parts[0]).astype(str)
    for part in parts[1:]:
        out = np.strings.add(out, np.asarray(part).astype(str))
    return out.astype(object)


def _blank_after(days: np.ndarray, as_of: np.datetime64) -> np.ndarray:
    """Dates after as_of have not happened yet as of as_of (NaT compares False)."""
    late = days > as_of
    return np.where(late, NAT, days) if late.any() else days


def _on(mask: np.ndarray, values: np.ndarray | int) -> np.ndarray | int:
    return values if np.isscalar(values) else values[mask]


class _Calendar:
    """Working-day lookups for dates the caller knows to be inside the calendar.

    Every date judged is on or before as_of (later ones are left out or blanked), and a start
    before CALENDAR_START is unknown, never counted; so once as_of is inside the calendar, a
    date's position needs no checking, and blanks can be looked up as a placeholder (clipped to
    the first day) and blanked after. With as_of beyond the calendar, the checked functions of
    reviews.core.working_days are used (and say which date was outside).
    """

    def __init__(self, as_of: np.datetime64):
        self.before, self.days = working_day_index()
        self.checked = as_of > CALENDAR_END
        self.first = CALENDAR_START.view(np.int64)

    def ordinals(self, dates: np.ndarray, usable: np.ndarray | None) -> np.ndarray:
        """Day 0 of each date in the sequence of working days (rows not `usable`: placeholders;
        usable None: every row is)."""
        if self.checked:
            return working_day_ordinals(dates if usable is None else np.where(usable, dates, CALENDAR_START))
        if usable is None:
            return self.before[dates.view(np.int64) - self.first]
        # NaT is the smallest int64: clipped before subtracting, so it cannot wrap round
        return self.before[np.clip(dates.view(np.int64), self.first, self.first + len(self.before) - 1) - self.first]

    def at(self, ordinals: np.ndarray) -> np.ndarray:
        return working_days_at(ordinals)


@dataclass
class _Part:
    """One stage's rows as arrays (statuses as STATUSES indexes, rule sets as rule indexes).

    Reasons are few: `reason_at` (row positions) and `reason` (their texts), not a column."""

    stage: int
    code: np.ndarray
    record_id: np.ndarray
    start: np.ndarray
    due: np.ndarray
    completed: np.ndarray
    taken: np.ndarray
    has_taken: np.ndarray
    status: np.ndarray
    rule: np.ndarray
    reason_at: np.ndarray
    reason: np.ndarray

    def __len__(self) -> int:
        return len(self.code)

    def say(self, mask: np.ndarray, texts: np.ndarray | str) -> None:
        """Give the rows in `mask` these reasons (replacing any they had)."""
        where = np.flatnonzero(mask)
        texts = np.broadcast_to(np.asarray(texts, dtype=object), where.shape)
        keep = ~np.isin(self.reason_at, where)
        self.reason_at = np.concatenate([self.reason_at[keep], where])
        self.reason = np.concatenate([self.reason[keep], texts])


def _no_reasons() -> tuple[np.ndarray, np.ndarray]:
    return np.array([], dtype=np.intp), np.array([], dtype=object)


@dataclass
class _Clock:
    """Where one start column puts the clocks of a table's rows, shared by the stages that start
    from the same column (the notification and the rapid review, by default).

    `keep` (None: every row) drops rows whose clock starts after as_of. `ordinal` is each usable
    row's day 0 in the working-day sequence (working-day clocks only; a placeholder for the other
    rows). `all_usable`: no row is missing or uncountable (the usual case: no masking).
    """

    keep: np.ndarray | None
    start: np.ndarray
    missing: np.ndarray
    uncountable: np.ndarray
    usable: np.ndarray
    all_usable: bool
    ordinal: np.ndarray | None

    def kept(self, values: np.ndarray) -> np.ndarray:
        return values if self.keep is None else values[self.keep]


def _start_clock(start: np.ndarray, as_of: np.datetime64, working_day_clock: bool, cal: _Calendar) -> _Clock:
    keep = ~(start > as_of)  # a clock that starts after as_of has not begun (NaT compares False)
    keep = None if keep.all() else keep
    start = start if keep is None else start[keep]
    missing = np.isnat(start)
    uncountable = start < CALENDAR_START if working_day_clock else np.zeros(len(start), bool)  # False for NaT
    usable = ~(missing | uncountable)
    all_usable = bool(usable.all())
    ordinal = cal.ordinals(start, None if all_usable else usable) if working_day_clock else None
    return _Clock(keep, start, missing, uncountable, usable, all_usable, ordinal)


def _judge_clock(
    stage: str,
    table: _Table,
    id_column: str,
    rule: _Rule,
    clock: _Clock,
    completed: np.ndarray,
    completed_label: str,
    as_of: np.datetime64,
    at_risk_until: np.datetime64,
    cal: _Calendar,
) -> _Part:
    """A start -> due -> completed stage: met/late once done, open_* until then, unknown if contradictory.

    Working-day clocks (those with `clock.ordinal`) are due `timescale` working days after day 0;
    the others `timescale` calendar months after the start. Open: overdue after the due date, at
    risk when due on or before `at_risk_until` (as_of + the stage's window in working days: the
    same test as "working days from as_of to due <= k", without counting each row).
    """
    if clock.keep is not None:
        table, rule = table.take(clock.keep), rule.take(clock.keep)
    start, missing, uncountable, usable = clock.start, clock.missing, clock.uncountable, clock.usable
    completed = _blank_after(clock.kept(completed), as_of)
    n = len(start)
    backwards = completed < start  # both known (any comparison with NaT but != is False)
    timescale = rule.per_row_number()
    if clock.ordinal is not None:
        due = cal.at(clock.ordinal + timescale)  # rows not usable: a placeholder, blanked below
        if not clock.all_usable:
            due[~usable] = NAT
    elif clock.all_usable:
        due = add_calendar_months(start, timescale)
    else:
        due = np.full(n, NAT)
        due[usable] = add_calendar_months(start[usable], _on(usable, timescale))

    done = ~np.isnat(completed)
    unknown = backwards if clock.all_usable else missing | uncountable | backwards
    # Open rows first (NaT due compares False: on track, overwritten below), then the done ones
    # (MET is 0, LATE 1; AT_RISK is ON_TRACK + 1): integer arithmetic, no gathering of rows.
    status = np.where(due < as_of, OVERDUE, (due <= at_risk_until).view(np.int8) + ON_TRACK)
    np.copyto(status, LATE - (completed <= due).view(np.int8), where=done)
    status[unknown] = UNKNOWN

    part = _Part(STAGES.index(stage), table.code, table.cols[id_column], start, due, completed,
                 np.zeros(0, np.int64), np.zeros(0, bool), status, rule.index, *_no_reasons())
    if unknown.any():
        column = rule.per_row_column
        part.say(backwards, _say(completed_label, " ", _iso(completed[backwards]), " is before ",
                                 column(backwards), " ", _iso(start[backwards])))
        if not clock.all_usable:
            part.say(uncountable, _say(column(uncountable), " ", _iso(start[uncountable]),
                                       " is before the working-day calendar starts (", str(CALENDAR_START), ")"))
            part.say(missing, _say(column(missing), " is missing"))

    if clock.ordinal is None:  # calendar-month clocks count no working days
        part.taken, part.has_taken = np.zeros(n, dtype=np.int64), np.zeros(n, bool)
    else:  # done on or after the start date (earlier is unknown), so inside the calendar
        counted = done & ~unknown
        part.has_taken = counted
        part.taken = cal.ordinals(completed, counted).astype(np.int64) - clock.ordinal
        part.taken[~counted] = 0
    return part


def _notification_stages(notes: _Table, earliest: np.ndarray, rules: list[RuleSet], as_of: np.datetime64,
                         at_risk: dict[str, np.datetime64], cal: _Calendar) -> list[_Part]:
    """The notification and rapid_review stages, both judged by the rule set on aware_date."""
    aware, notified = notes.cols["aware_date"], notes.cols["notified_date"]
    index = _rule_index(rules, np.where(np.isnat(aware), notified, aware), as_of)
    clocks: dict[tuple[str, ...], _Clock] = {}  # stages whose rule sets name the same start columns share one
    parts = []
    for stage, completed, label in (
        ("notification", notified, "notified_date"),
        ("rapid_review", earliest, "rapid review completed_date"),
    ):
        rule = _stage_rule(rules, stage, index)
        key = tuple(rule.column)
        if key not in clocks:
            clocks[key] = _start_clock(rule.pick_start(notes.cols), as_of, True, cal)
        parts.append(_judge_clock(stage, notes, "notification_id", rule, clocks[key], completed, label, as_of,
                                  at_risk[stage], cal))
    return parts


def _lcspr_stage(reviews: _Table, rules: list[RuleSet], as_of: np.datetime64, at_risk_until: np.datetime64,
                 cal: _Calendar) -> _Part:
    """LCSPR completion: a calendar-month clock from the decision to review."""
    lcspr = reviews.take(reviews.cols["review_type"] == "lcspr", ("review_id", *START_COLUMNS["lcspr_completion"],
                                                                  "completed_date"))
    rule = _stage_rule(rules, "lcspr_completion", _rule_index(rules, lcspr.cols["decision_date"], as_of))
    clock = _start_clock(rule.pick_start(lcspr.cols), as_of, False, cal)
    return _judge_clock("lcspr_completion", lcspr, "review_id", rule, clock, lcspr.cols["completed_date"],
                        "completed_date", as_of, at_risk_until, cal)


def _publication_stage(reviews: _Table, rules: list[RuleSet], as_of: np.datetime64,
                       flagged: np.ndarray | None) -> _Part:
    """Publication notice: the final report must reach the Panel and the Secretary of State at
    least N working days before publication. Judged only once published; never "open".
    `flagged`: reviews with a current flag on a publication date (judged even with both blank)."""
    sent_all, published_all = reviews.cols["final_report_sent_date"], reviews.cols["published_date"]
    judged_at_all = ~np.isnat(sent_all) | ~np.isnat(published_all)
    if flagged is not None:
        judged_at_all |= flagged
    rows = reviews.take(judged_at_all, ("review_id", *START_COLUMNS["publication_notice"], "published_date"))
    anchor = np.where(np.isnat(rows.cols["final_report_sent_date"]), rows.cols["published_date"],
                      rows.cols["final_report_sent_date"])
    rule = _stage_rule(rules, "publication_notice", _rule_index(rules, anchor, as_of))
    sent, published = rule.pick_start(rows.cols), rows.cols["published_date"]
    # Not begun as of as_of: sent later, or nothing sent and publication still to come.
    keep = ~(sent > as_of) & ~(np.isnat(sent) & (published > as_of))
    if not keep.all():
        rows, rule, sent, published = rows.take(keep), rule.take(keep), sent[keep], published[keep]
    published = _blank_after(published, as_of)
    n = len(sent)

    missing = np.isnat(sent)
    not_published = ~missing & np.isnat(published)
    backwards = published < sent
    uncountable = ~missing & ~not_published & ~backwards & (sent < CALENDAR_START)  # so published is too
    judged = ~missing & ~not_published & ~backwards & ~uncountable

    due = np.full(n, NAT)
    taken = np.zeros(n, dtype=np.int64)
    if judged.any():
        due[judged] = add_working_days(published[judged], -np.asarray(_on(judged, rule.per_row_number())))
        taken[judged] = working_days_between(sent[judged], published[judged])
    status = np.where(sent <= due, MET, LATE)
    status[not_published] = NOT_APPLICABLE
    status[missing | backwards | uncountable] = UNKNOWN

    part = _Part(STAGES.index("publication_notice"), rows.code, rows.cols["review_id"], sent, due, sent, taken,
                 judged, status, rule.index, *_no_reasons())
    part.say(not_published, "not yet published")
    if (missing | backwards | uncountable).any():
        column = rule.per_row_column
        part.say(missing, _say(column(missing), " is missing"))
        part.say(backwards, _say(column(backwards), " ", _iso(sent[backwards]), " is after published_date ",
                                 _iso(published[backwards])))
        part.say(uncountable, _say(column(uncountable), " ", _iso(sent[uncountable]),
                                   " is before the working-day calendar starts (", str(CALENDAR_START), ")"))
    return part


# --- flags: cells a return got wrong, loaded blank ----------------------------------------------


def flag_reason(flags: Sequence[tuple[str, int, str]]) -> str:
    """A stage's reason from the flags it depends on, (file_name, row_number, message) each:
    "return F row N: <the flag's sentence>; judged unknown until corrected" (several joined by "; ",
    in file, row and sentence order)."""
    said = [f"return {f} row {n}: {m}" for f, n, m in sorted(set(flags), key=lambda x: (str(x[0]), int(x[1]), str(x[2])))]
    return "; ".join([*said, FLAG_SUFFIX])


def stage_flag_columns(stage: str, dataset: str, start_column: str) -> frozenset[str]:
    """The columns of `dataset` the judgement of `stage` reads (FLAG_COLUMNS, start resolved)."""
    return frozenset(start_column if c == "start" else c for c in FLAG_COLUMNS[stage].get(dataset, ()))


@dataclass
class _Flags:
    """One dataset's current flags as arrays: partnership code, record id, which of the few
    distinct column lists its rule reads (`kind`, indexing `kinds`), and what to say."""

    code: np.ndarray
    record_id: np.ndarray
    kind: np.ndarray
    kinds: list[frozenset[str]]
    file_name: np.ndarray
    row_number: np.ndarray
    message: np.ndarray

    def touching(self, columns: frozenset[str]) -> np.ndarray:
        """The flags whose rule reads one of `columns` (a mask; one test per distinct column list)."""
        return np.array([bool(k & columns) for k in self.kinds], dtype=bool)[self.kind]

    def said(self, i: int) -> tuple[str, int, str]:
        return str(self.file_name[i]), int(self.row_number[i]), str(self.message[i])


def _read_flags(flags: pd.DataFrame | None, partnerships: np.ndarray) -> dict[str, _Flags]:
    """The flags by dataset, of partnerships in the tables (others can touch no row), column-wise."""
    if flags is None or len(flags) == 0:
        return {}
    missing = [c for c in FLAG_INPUT_COLUMNS if c not in flags.columns]
    if missing:
        raise ValueError(f"row_flags: missing column(s) {', '.join(missing)}")
    text = {c: _text(flags[c]) for c in ("partnership_code", "dataset", "record_id", "columns", "file_name", "message")}
    names = partnerships.astype(str)
    code = np.searchsorted(names, text["partnership_code"].astype(str)).clip(0, max(len(names) - 1, 0))
    known = (names[code] == text["partnership_code"].astype(str)) if len(names) else np.zeros(len(code), bool)
    known &= ~pd.isna(text["record_id"])
    kind, column_lists = pd.factorize(pd.Series(text["columns"], dtype=object).fillna(""))
    kinds = [frozenset(c.strip() for c in str(cols).split(",") if c.strip()) for cols in column_lists]
    rows = flags["row_number"].to_numpy()
    out = {}
    for dataset in pd.unique(text["dataset"][known]):
        mine = known & (text["dataset"] == dataset)
        out[str(dataset)] = _Flags(code[mine].astype(np.int32), text["record_id"][mine].astype(str).astype(object),
                                   kind[mine], kinds, text["file_name"][mine], rows[mine], text["message"][mine])
    return out


def _find(code: np.ndarray, ids: np.ndarray, codes: np.ndarray, wanted: np.ndarray, ordered: bool = True) -> np.ndarray:
    """The row of each (codes[i], wanted[i]) in a table (-1: none): a binary search within each
    partnership's rows, for all at once (about 15 steps over the few flags), each row found checked.
    `ordered`: the table is in key order (as every table is once checked or sorted by
    _in_key_order), so what the search misses is not there; otherwise a miss is looked for in
    every row (rows read in key order have none)."""
    out = np.full(len(codes), -1, dtype=np.intp)
    if len(code) == 0 or len(codes) == 0:
        return out
    found = np.zeros(len(codes), dtype=bool)
    if ordered or bool(np.all(code[1:] >= code[:-1])):
        first, end = np.searchsorted(code, codes, "left"), np.searchsorted(code, codes, "right")
        lo, hi = first.copy(), end.copy()
        try:
            while (active := np.flatnonzero(lo < hi)).size:
                mid = (lo[active] + hi[active]) // 2
                less = ids[mid] < wanted[active]
                lo[active] = np.where(less, mid + 1, lo[active])
                hi[active] = np.where(less, hi[active], mid)
            at = np.minimum(lo, len(code) - 1)
            found = (lo < end) & (ids[at] == wanted)
            out[found] = at[found]
        except TypeError:  # ids of mixed types (sorted as text): look at every row
            ordered = False
    for i in np.flatnonzero(~found) if not ordered else ():
        hit = np.flatnonzero((code == codes[i]) & (ids == wanted[i]))
        out[i] = hit[0] if hit.size else -1
    return out


def _apply_flags(part: _Part, rules: list[RuleSet], flags: dict[str, _Flags], notes: _Table, rapid: _Table,
                 which: np.ndarray) -> None:
    """Judge `unknown`, with the flags' words, every row of the stage whose judgement reads a
    flagged cell of its record (or, for the rapid review stage, of one of the case's rapid reviews)."""
    stage = STAGES[part.stage]
    starts = {rs.stages[stage].start for rs in rules}
    start_of = [rs.stages[stage].start for rs in rules]  # by the rule set index in part.rule
    said: dict[int, list[tuple[str, int, str]]] = {}
    for dataset in FLAG_COLUMNS[stage]:
        f = flags.get(dataset)
        if f is None:
            continue
        # flags that may touch the stage under some rule set (checked against each row's below)
        near = np.flatnonzero(f.touching(frozenset().union(*(stage_flag_columns(stage, dataset, s) for s in starts))))
        if not near.size or (dataset == "rapid_reviews" and len(rapid) == 0):
            continue
        if dataset == "rapid_reviews":  # the case is the rapid review's notification
            if "rapid_review_id" not in rapid.cols:
                raise ValueError("rapid_reviews: rapid_review_id is needed to judge flagged rapid reviews")
            j = _find(rapid.code, rapid.cols["rapid_review_id"], f.code[near], f.record_id[near], ordered=False)
            note = np.where(j >= 0, which[np.maximum(j, 0)] if len(which) else -1, -1)
            near, note = near[note >= 0], note[note >= 0]
            rows = _find(part.code, part.record_id, f.code[near], notes.cols["notification_id"][note])
        else:
            rows = _find(part.code, part.record_id, f.code[near], f.record_id[near])
        for k, i in zip(near.tolist(), rows.tolist()):
            if i >= 0 and f.kinds[f.kind[k]] & stage_flag_columns(stage, dataset, start_of[part.rule[i]]):
                said.setdefault(i, []).append(f.said(k))
    if not said:
        return
    rows = np.sort(np.fromiter(said, dtype=np.intp, count=len(said)))
    part.status[rows] = UNKNOWN  # each part's arrays are its own: changed in place
    part.has_taken[rows] = False
    part.taken[rows] = 0
    mask = np.zeros(len(part), bool)
    mask[rows] = True
    part.say(mask, np.array([flag_reason(said[i]) for i in rows.tolist()], dtype=object))


def _flagged_rows(table: _Table, id_column: str, dataset: str, stage: str, flags: dict[str, _Flags]) -> np.ndarray | None:
    """Rows of `table` with a flag on a column `stage` reads (None: none): those are judged even
    when nothing else would give them a row."""
    f = flags.get(dataset)
    if f is None:
        return None
    near = np.flatnonzero(f.touching(stage_flag_columns(stage, dataset, START_COLUMNS[stage][0])))
    hits = _find(table.code, table.cols[id_column], f.code[near], f.record_id[near])
    hits = hits[hits >= 0]
    if not hits.size:
        return None
    mask = np.zeros(len(table), bool)
    mask[hits] = True
    return mask


# --- output -----------------------------------------------------------------------------------


def _categorical(codes: np.ndarray, categories: Sequence[str]) -> pd.Categorical:
    return pd.Categorical.from_codes(codes, categories=pd.Index(list(categories), dtype=object))


def _frame(parts: list[_Part], partnerships: np.ndarray, rules: list[RuleSet], as_of: np.datetime64) -> pd.DataFrame:
    """The stages' rows as one frame: dates datetime64[s] (NaT blank), working_days_taken Int64,
    codes as categoricals, record_id and reason as objects (None blank)."""
    def cat(name: str, dtype: Any = None) -> np.ndarray:
        arrays = [getattr(p, name) for p in parts]
        return np.concatenate(arrays, dtype=dtype, casting="same_kind") if dtype else np.concatenate(arrays)

    sizes = [len(p) for p in parts]
    n = sum(sizes)
    stage = np.repeat(np.array([p.stage for p in parts], dtype=np.int8), sizes)
    names = list(dict.fromkeys(r.name for r in rules))  # a name shared by two rule sets is one category
    rule_code = np.array([names.index(r.name) for r in rules], dtype=np.int8)[cat("rule")]
    reason = np.full(n, None, dtype=object)
    offsets = np.cumsum([0, *sizes[:-1]])
    reason[np.concatenate([p.reason_at + o for p, o in zip(parts, offsets)])] = cat("reason")
    data = {
        "partnership_code": _categorical(cat("code"), partnerships),
        "stage": _categorical(stage, STAGES),
        "record_id": pd.Series(cat("record_id"), dtype=object, copy=False),
        "as_of_date": np.full(n, as_of.astype("datetime64[s]")),
        "start_date": cat("start", "datetime64[s]"),  # pandas keeps seconds, not days: converted as joined
        "due_date": cat("due", "datetime64[s]"),
        "completed_date": cat("completed", "datetime64[s]"),
        "working_days_taken": pd.arrays.IntegerArray(cat("taken"), ~cat("has_taken")),
        "status": _categorical(cat("status"), STATUSES),
        "rule_set": _categorical(rule_code, names),
        "reason": pd.Series(reason, dtype=object, copy=False),
    }
    return pd.DataFrame(data, columns=list(OUTPUT_COLUMNS), copy=False)


def to_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """compute_timeliness rows as the warehouse takes them: `date`, `int`, `str`, None for blanks."""
    columns = [column_values(frame[c]) for c in frame.columns]
    names = list(frame.columns)
    return [dict(zip(names, row)) for row in zip(*columns)]


def longest_lag_days(cfg: Config) -> int:
    """The most calendar days any stage's due date can fall after the latest date of its case.

    Every due date is a start date (one of the case's dates) plus a stage's timescale, or, for
    publication_notice, before the published date; so a case whose dates all precede a day by more
    than this cannot be due on or after that day (the summary's trend uses this to skip old cases).
    Measured on the working-day calendar itself, for every start day it knows.
    """
    working = {int(getattr(rs.stages[s], STAGE_NUMBER[s]) or 0)
               for rs in cfg.rule_sets for s in ("notification", "rapid_review") if s in rs.stages}
    months = {int(rs.stages["lcspr_completion"].calendar_months or 0)
              for rs in cfg.rule_sets if "lcspr_completion" in rs.stages}
    return _longest_lag(tuple(sorted(working)), tuple(sorted(months)))


@functools.lru_cache(maxsize=8)
def _longest_lag(working: tuple[int, ...], months: tuple[int, ...]) -> int:
    longest = 0
    for n in working:
        days = np.arange(CALENDAR_START, CALENDAR_END - np.timedelta64(2 * n + 60, "D"), dtype="datetime64[D]")
        longest = max(longest, int((add_working_days(days, n) - days).max().astype(int)))
    for m in months:
        days = np.arange(CALENDAR_START, CALENDAR_END - np.timedelta64(31 * m + 31, "D"), dtype="datetime64[D]")
        longest = max(longest, int((add_calendar_months(days, m) - days).max().astype(int)))
    return longest


OPEN_STAGES = ("notification", "rapid_review", "lcspr_completion")  # publication_notice is never open
STAGE_WORDS = {"notification": "notification to the Panel", "rapid_review": "rapid review",
               "lcspr_completion": "LCSPR completion", "publication_notice": "publication notice"}


def at_risk_words(cfg: Config) -> str:
    """The at-risk windows in words, for readers: "3 working days" when every stage that can be open
    has the same, else "notification to the Panel 2, rapid review 3, LCSPR completion 20 working days"."""
    windows = {stage: cfg.at_risk_days(stage) for stage in OPEN_STAGES}
    if len(set(windows.values())) == 1:
        n = next(iter(windows.values()))
        return f"{n} working day{'' if n == 1 else 's'}"
    return ", ".join(f"{STAGE_WORDS[s]} {n}" for s, n in windows.items()) + " working days"


def at_risk_until_by_stage(cfg: Config, as_of: date) -> dict[str, date]:
    """The last due day that is `open_at_risk` as of `as_of`, per stage: as_of plus the stage's
    window (`Config.at_risk_days`) in working days (a non-working as_of counts from the next one)."""
    day = _as_of_day(as_of)
    return {s: np.datetime64(add_working_days(day, cfg.at_risk_days(s)), "D").item() for s in OPEN_STAGES}


def compute_timeliness(
    notifications: pd.DataFrame,
    rapid_reviews: pd.DataFrame,
    practice_reviews: pd.DataFrame,
    cfg: Config,
    as_of: date,
    flags: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Every case's statutory timeliness for each stage, as of `as_of`.

    Inputs are the warehouse tables (template columns plus partnership_code); dates may be
    datetime64 columns, `date`s, ISO strings or blank. `flags`: the current row_flags
    (FLAG_INPUT_COLUMNS; the rapid reviews then need their rapid_review_id): a stage that reads a
    flagged cell is `unknown`, with the flag in its reason. Returns exactly OUTPUT_COLUMNS, ordered
    by stage, partnership code and record id: dates as datetime64 (NaT when blank),
    working_days_taken as nullable Int64, partnership_code/stage/status/rule_set as categoricals,
    record_id and reason as text (None when blank). `to_records` gives warehouse rows.
    """
    day = _as_of_day(as_of)
    rules = _rules(cfg)
    at_risk = {s: np.datetime64(d, "D") for s, d in at_risk_until_by_stage(cfg, day.item()).items()}
    cal = _Calendar(day)
    partnerships, tables = _code_tables({
        "notifications": _read(notifications, "notifications", NOTIFICATION_COLUMNS),
        "rapid_reviews": _read(rapid_reviews, "rapid_reviews", RAPID_REVIEW_COLUMNS, ("rapid_review_id",)),
        "practice_reviews": _read(practice_reviews, "practice_reviews", PRACTICE_REVIEW_COLUMNS),
    })
    flagged = _read_flags(flags, partnerships)
    notes = _in_key_order(tables["notifications"], "notification_id", "notifications", partnerships)
    _check_not_blank(tables["practice_reviews"].cols["review_id"], "practice_reviews", "review_id")
    reviews = _in_key_order(tables["practice_reviews"], "review_id", "practice_reviews", partnerships)
    rapid = tables["rapid_reviews"]
    earliest, which = _earliest_rapid_review(notes, rapid)
    parts = [
        *_notification_stages(notes, earliest, rules, day, at_risk, cal),
        _lcspr_stage(reviews, rules, day, at_risk["lcspr_completion"], cal),
        _publication_stage(reviews, rules, day, _flagged_rows(reviews, "review_id", "practice_reviews",
                                                              "publication_notice", flagged) if flagged else None),
    ]
    for part in parts if flagged else ():
        _apply_flags(part, rules, flagged, notes, rapid, which)
    return _frame(parts, partnerships, rules, day)
