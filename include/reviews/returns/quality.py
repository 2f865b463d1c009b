"""Data quality rules for returns, run with Great Expectations, reported row by row in plain words.

One suite per dataset, built here in code from the template and the config (so a new code, theme
or approved author is a config change). GX runs every expectation over the whole batch at once;
each failed row comes back by its key, and each rule turns the row's original text into a
sentence a partnership officer understands: "aware_date 12/05/2024 is after notified_date
10/05/2024". A row is checked against every rule, so it is reported with every rule it broke.

The rules, per dataset (template.py says which columns each applies to):
  required:{col}            a required field is blank
  date:{col}                a date that is not a date (their format, ISO, or an Excel serial)
  not_after_period_end:{col}  a date after the period the return covers: the earlier of the
                            return's own date and the run's as-of date (planned dates, such as
                            an action's due date, are not judged by it)
  code:{col}                a code that is neither a template code nor a configured synonym
  age:{col}                 an age that is not a whole number from 0 to 17
  order:{a}<={b}            dates in the wrong order within the row (incident <= aware <= notified;
                            completed <= final report sent <= published; ...)
  unique:{id}               the record id appears more than once in the file
  ragged_row                more values than the header has columns
  identifier:{col}          an id (notification_id, review_id, finding_id, ... every id column but
                            the child reference) that is longer than template.ID_MAX_LENGTH or its
                            warehouse column, has characters other than letters, digits and
                            - _ / . and spaces, is mostly digits or has 6 digits in a row (a phone,
                            NHS or child's number), or that the free-text screen finds personal
                            details in: the id is withheld everywhere (message, quarantine record
                            id and raw values, report)
  length:{col}              a text value longer than its warehouse column (String(n), read from
                            reviews.core.warehouse, so SQLite and PostgreSQL treat it alike)
  storable                  a text value with a character no warehouse text can hold (NUL, an
                            unpaired surrogate), or a NUL in text or the child reference as read
  reference:{col}           a rapid review or practice review naming a notification, or a finding
                            naming a review, that the partnership has not sent: known means in the
                            warehouse already, or valid in this batch of returns
  cross_order:notifications.aware_date<=completed_date  a rapid review completed before the
                            council became aware of the incident (the notification's aware_date)
  approved_author / author_needed  an LCSPR's author must be on the regional approved list
                            (config `approved_authors`); blank only while status is commissioned
Reference and cross-dataset rules run only when `validate` is given a `RuleContext` saying what
is known; without one (a dataset checked on its own) they are skipped.

Each rule has a severity (config `quality.severity`, Config.quality.severity_of): a row that broke
a `reject` rule is quarantined (`ValidationResult.rejections`); a row that broke only `flag` rules
is loaded (`ValidationResult.flags`), each flag with the original text of its cells quoted as
messages quote them (`original_text`), the cells `blanked_column` names stored blank by ingest.

A date is checked for existence, not shape: `2024-02-30` is as much "not a date" as `30/02/2024`
(the rule reads the parsed date, which is blank for both). Messages quote what the return said
only where it cannot be personal (`_quote`): at most 40 printable characters in which the
free-text screen finds nothing (for a date column, a date is of course allowed); anything else is
"(withheld: why)". Ids are quoted only when they pass the identifier rule.
"""
from __future__ import annotations

import json
import logging
import os
import re
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple
from datetime import date
from functools import lru_cache
from html import escape as html_escape
from pathlib import Path

import numpy as np
import pandas as pd

from reviews.core import warehouse as wh
from reviews.privacy.screening import KIND_LABELS, screen
from reviews.returns import gx_speedups
from reviews.returns.cleaning import DT_SUFFIX, RAW_SUFFIX, RETURN_DATE_COLUMN, UNSTORABLE_COLUMN
from reviews.core.config import Config, normalise_word
from reviews.core.gc_pause import gc_paused
from reviews.returns.readers import EXTRA_COLUMN
from reviews.core.template import DATASETS, ID_CHARACTERS, ID_MAX_LENGTH

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
KEY_COLUMN = "_key"
FILE_COLUMN = "_file"
PERIOD_END_COLUMN = "_period_end_dt"  # the last day a date in the row may be
AUTHOR_COLUMN = "_author_norm"
AGE_REGEX = r"^(?:[0-9]|1[0-7])$"
RECORD_NOUN = {"notifications": "notification", "practice_reviews": "practice review",
               "rapid_reviews": "rapid review", "learning": "finding"}
# (dataset, our date column, reference column, referenced dataset, their date column):
# our date must be on or after theirs.
# Planned dates are naturally after the period end (an action due next quarter): not judged by it.
PLANNED_DATES = frozenset({"action_due_date"})
CROSS_DATE_ORDER = (("rapid_reviews", "completed_date", "notification_id", "notifications", "aware_date"),)
STORABLE_COLUMN = "_storable"  # True, or what in the row cannot be stored, in words
# What no warehouse text column can hold: NUL (PostgreSQL's text refuses it) and unpaired
# surrogates (no UTF-8 encoding; only a Python str can carry them).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_ID_SHAPE = re.compile(r"[A-Za-z0-9_/. \-]+")
_DIGIT_RUN = re.compile(r"[0-9]{6}")
QUOTE_MAX = 40  # longest written value a message quotes
DOCS_QUOTE_MAX = 200  # ... and a Data Docs page shows
WITHHELD_PREFIX = "withheld: row "  # quarantine.record_id of a row whose id is withheld (":" is no id character)


@dataclass(frozen=True)
class Rule:
    """A named check: the GX expectation and how to say a failure in words."""

    rule_id: str
    expectation: object
    describe: Callable[[dict], str]
    condition_columns: tuple[str, ...] = ()  # columns the expectation's row_condition reads

    @property
    def title(self) -> str:
        return rule_title(self.rule_id)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column GX reads for this rule: its own columns and those of its row condition."""
        e = self.expectation
        own = [getattr(e, name, None) for name in ("column", "column_A", "column_B")]
        own += list(getattr(e, "column_list", None) or [])
        return tuple(c for c in own if isinstance(c, str)) + self.condition_columns


def _referenced_dataset(column: str) -> str:
    for ds in DATASETS.values():
        for ref in ds.references:
            if ref.column == column:
                return ref.dataset
    return ""


def _template_name(dataset: str, column: str) -> str:
    return column


def rule_title(rule_id: str, dataset: str = "", name: Callable[[str, str], str] = _template_name) -> str:
    """What a rule checks, in plain words, from its id (for counts in reports and Data Docs).
    `name(dataset, column)` says a column (a quality report puts the partnership's header beside it)."""
    kind, _, arg = rule_id.partition(":")
    if kind == "order":
        a, _, b = arg.partition("<=")
        return f"{name(dataset, a)} is after {name(dataset, b)}"
    if kind == "cross_order":
        theirs, _, ours = arg.partition("<=")
        their_ds, _, their_col = theirs.partition(".")
        return f"{name(dataset, ours)} is before the {RECORD_NOUN.get(their_ds, their_ds)}'s {name(their_ds, their_col)}"
    if kind == "reference":
        return f"{name(dataset, arg)} names a {RECORD_NOUN.get(_referenced_dataset(arg), 'record')} that has not been loaded"
    if kind in ("approved_author", "author_needed"):
        author = name(dataset, "author")
        return (f"the LCSPR's {author} is not on the regional approved list" if kind == "approved_author"
                else f"the LCSPR's {author} is blank after commissioning")
    arg = name(dataset, arg) if arg else arg
    titles = {
        "required": f"{arg} is blank (it is required)",
        "date": f"{arg} is not a date",
        "not_after_period_end": f"{arg} is after the end of the period",
        "code": f"{arg} is not one of the allowed codes",
        "age": f"{arg} is not a whole number from 0 to 17",
        "unique": f"{arg} appears more than once in the file",
        "ragged_row": "the row has more values than the header has columns",
        "identifier": f"{arg} is not a valid identifier (withheld)",
        "length": f"{arg} is longer than the warehouse holds",
        "storable": "a value has a character that cannot be stored",
    }
    return titles.get(kind, rule_id)


@dataclass(frozen=True)
class RuleContext:
    """What the checks need to know beyond the rows themselves.

    `as_of`: the run's as-of date (the end of the period being loaded).
    `known_ids`: dataset -> record ids of this partnership known so far (warehouse or valid in
    this batch); a reference rule runs only for the datasets listed here.
    `dates`: dataset -> date column -> record id -> date, for the cross-dataset date rules.
    """

    as_of: date | None = None
    known_ids: Mapping[str, Collection[str]] = field(default_factory=dict)
    dates: Mapping[str, Mapping[str, Mapping[str, date]]] = field(default_factory=dict)


def _raw(row: dict, col: str) -> str:
    value = row.get(col + RAW_SUFFIX, row.get(col))
    return "" if value is None else str(value)


def _known_column(col: str) -> str:
    return f"_known__{col}"


def _their_date_column(ref_col: str, their_col: str) -> str:
    return f"_ref__{ref_col}__{their_col}"


def _say_period_end(row: dict, col: str) -> str:
    limit, returned = row[PERIOD_END_COLUMN], row[RETURN_DATE_COLUMN]
    if limit == returned:
        return f"{col} {_raw(row, col)} is after the date of the return ({limit:%d/%m/%Y})"
    return f"{col} {_raw(row, col)} is after the end of the period being loaded ({limit:%d/%m/%Y})"


# ----------------------------------------------------------------- what the warehouse can hold


@lru_cache(maxsize=None)
def column_limits(dataset: str) -> dict[str, int]:
    """Template column -> the length of its warehouse column (String(n) in reviews.core.warehouse),
    for the columns that have one (child_ref: its hash's column)."""
    table = wh.CASE_TABLES[dataset]
    out = {}
    for c in DATASETS[dataset].columns:
        length = getattr(table.c["child_key" if c.name == "child_ref" else c.name].type, "length", None)
        if length:
            out[c.name] = int(length)
    return out


def identifier_columns(dataset: str) -> list[str]:
    """The columns the identifier rule checks: every id column but the child reference (hashed)."""
    return [c.name for c in DATASETS[dataset].columns if c.kind == "id" and not c.sensitive]


def identifier_limit(dataset: str, column: str) -> int:
    return min(ID_MAX_LENGTH, column_limits(dataset).get(column, ID_MAX_LENGTH))


def _length_columns(dataset: str) -> list[str]:
    """Text columns whose warehouse column has a length (ids are the identifier rule's, codes must
    be template codes, dates and ages are stored typed)."""
    limits = column_limits(dataset)
    return [c.name for c in DATASETS[dataset].columns if c.kind in ("text", "freetext") and c.name in limits]


def _a(label: str) -> str:
    return ("an " if label[:1].lower() in "aeiou" else "a ") + label


def identifier_problem(value: str, limit: int) -> str | None:
    """Why `value` is not a valid identifier, in words that never quote it; None when it is one."""
    if len(value) > limit:
        return f"it is longer than {limit} characters"
    if not _ID_SHAPE.fullmatch(value):
        return f"it has characters other than {ID_CHARACTERS}"
    digits = sum(map(str.isdigit, value))
    if digits >= 9 and 2 * digits > len(value) - value.count(" "):
        return "it is mostly digits, like a phone or NHS number"
    if _DIGIT_RUN.search(value):
        return "it has 6 or more digits in a row, like a child's or a phone number"
    kinds = screen(value).kinds
    if kinds:
        return f"it looks like {_a(KIND_LABELS.get(kinds[0], kinds[0]))}"
    return None


_IDS_KEPT = 200_000  # ids remembered per process, over all limits
_IDS_CHECKED: dict[int, dict] = {}  # limit -> id -> True, or its identifier_problem


def _missing(value) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def _identifier_cells(values: list, limit: int) -> list:
    """Per cell: None for blank, True for a valid identifier, else its problem in words. Each
    distinct id is checked once per process (cumulative returns restate their records)."""
    known = _IDS_CHECKED.setdefault(limit, {})
    new = [v for v in set(values) if v not in known and not _missing(v)]
    if new:
        if sum(map(len, _IDS_CHECKED.values())) + len(new) > _IDS_KEPT:
            _IDS_CHECKED.clear()
            known = _IDS_CHECKED[limit] = {}
            new = [v for v in set(values) if not _missing(v)]
        too_long = {}  # not remembered: an over-long cell (a note under the table) can be megabytes
        for v in new:
            text = str(v)
            (too_long if len(text) > limit else known)[v] = identifier_problem(text, limit) or True
        if too_long:
            return [known[v] if v in known else too_long.get(v) for v in values]
    return list(map(known.get, values))


def _too_long(values: list, limit: int) -> list | None:
    """Per cell: None for blank, True when it fits in `limit` characters, False when not; None for
    the whole column when every cell fits (the usual case, found without a Python call per cell)."""
    try:
        if max(map(len, filter(None, values)), default=0) <= limit:
            return None
    except TypeError:  # a cell that is not text: one at a time
        pass
    return [None if _missing(v) else len(str(v)) <= limit for v in values]


def _unstorable(values: list) -> list[bool] | None:
    """Per cell whether it holds a character no warehouse can store; None when none does (found in
    one search over the column's text joined)."""
    try:
        joined = "".join(filter(None, values))
        # NUL by memchr; surrogates only where there is any non-ASCII text (isascii is a flag), by
        # encoding it (a regular expression over megabytes of findings took several times longer).
        if "\x00" not in joined and (joined.isascii() or _encodes(joined)):
            return None
    except TypeError:  # a cell that is not text: one at a time
        pass
    return [isinstance(v, str) and bool(_UNSTORABLE.search(v)) for v in values]


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _unstorable_what(value: str) -> str:
    return "NUL" if "\x00" in value else "an unpaired surrogate"


def _storable_cells(frame: pd.DataFrame, dataset: str) -> list:
    """Per row: True, or what in it cannot be stored ("finding contains a character that cannot be
    stored (NUL)"; columns in template order). A text or free-text cell counts if it holds such a
    character now, or held one as read (cleaning.UNSTORABLE_COLUMN: the ingest screen removes
    control characters from text before the checks, and a NUL means the cell is not what was
    meant; so does a NUL in the child reference, which is hashed). Ids, codes, dates and ages are
    not searched: such a character is never a valid one, so their own rules quarantine the row (or,
    where their severity is `flag`, have the cell stored blank)."""
    found: dict[int, dict[str, str]] = {}
    for col in DATASETS[dataset].column_names:
        if col not in frame.columns or DATASETS[dataset].column(col).kind not in ("text", "freetext"):
            continue
        values = frame[col].tolist()
        bad = _unstorable(values)
        if bad is not None:
            for i in np.flatnonzero(bad).tolist():
                found.setdefault(i, {})[col] = _unstorable_what(values[i])
    if UNSTORABLE_COLUMN in frame.columns:
        for i, cols in enumerate(frame[UNSTORABLE_COLUMN].tolist()):
            if isinstance(cols, tuple):
                for col, what in cols:
                    found.setdefault(i, {}).setdefault(col, what)
    out: list = [True] * len(frame)
    order = {c: n for n, c in enumerate(DATASETS[dataset].column_names)}
    for i, cols in found.items():
        out[i] = "; ".join(f"{col} contains a character that cannot be stored ({what})"
                           for col, what in sorted(cols.items(), key=lambda kv: order.get(kv[0], 99)))
    return out


NOTE_ROW = "the row holds nothing else, like a note or a total"


def _lone_first_cells(frame: pd.DataFrame, dataset: str) -> list[int]:
    """Positions of rows whose every template column but the id is blank: a note or a total
    typed under the table ("Prepared by ...", "Total: 14"), whose text is no record's id. Only
    rows with the first other required column blank are looked at closer (usually none)."""
    ds = DATASETS[dataset]
    others = [c.name if c.name != "child_ref" else "child_key" for c in ds.columns if c.name != ds.id_column]
    others = [c for c in others if c in frame.columns]
    required = [c.name for c in ds.columns if c.required and c.name != ds.id_column and c.name in frame.columns]
    if not others:
        return []
    first = frame[required[0] if required else others[0]].isna().to_numpy()
    if not first.any():
        return []
    at = np.flatnonzero(first)
    blank = frame[others].take(at).isna().all(axis=1).to_numpy()
    return at[blank].tolist()


def _identifier_column(col: str) -> str:
    return f"_identifier__{col}"


def _length_column(col: str) -> str:
    return f"_fits__{col}"


def _date_column(col: str) -> str:
    return f"_is_date__{col}"


@lru_cache(maxsize=65_536)  # bad codes and dates repeat: "Death ", "TBC", ...
def _personal(text: str, date: bool = False, names: bool = True) -> str | None:
    """What the free-text screen finds in a written value ("a phone number"), None for nothing
    (in a date column a date is what is expected, not a find; an author's name is the author)."""
    kinds = [k for k in screen(text, names=names).kinds if not (date and k == "date")]
    return _a(KIND_LABELS.get(kinds[0], kinds[0])) if kinds else None


def _unquotable(text: str, *, date: bool = False, limit: int = QUOTE_MAX, names: bool = True) -> str | None:
    """Why a written value may not be quoted in a message (None: it may)."""
    if len(text) > limit:
        return f"it is longer than {limit} characters"
    if not text.isprintable():
        return "it has characters that cannot be shown"
    found = _personal(text, date, names)
    return None if found is None else f"it looks like {found}"


def _quote(value, *, date: bool = False, names: bool = True) -> str:
    """'value' as written, or (withheld: why) where it could be personal or would not show."""
    text = "" if value is None else str(value)
    why = _unquotable(text, date=date, names=names)
    return f"'{text}'" if why is None else f"(withheld: {why})"


def _id_shown(row: dict, col: str) -> str:
    """The id in `col` for a message: as written when it is a valid identifier, else withheld."""
    value = row.get(col)
    if _missing(value):
        return "(blank)"
    checked = row.get(_identifier_column(col), True)
    return str(value) if checked is True else "(withheld)"


def quarantine_record(dataset: str, rule_ids: list[str], record_id, raw_values: str,
                      row_number: int) -> tuple[str | None, str]:
    """What quarantine keeps of a bad row: (record_id, raw_values).

    A row whose id broke the identifier rule (or would not fit quarantine.record_id) gets the
    stand-in "withheld: row N" (N as the spreadsheet shows it): a valid id never has a ":", so no
    later row can resolve it by mistake, and the report shows "row N of FILE". Each id that broke
    the identifier rule, and each code, date or age that broke its rule and in which the free-text
    screen finds something (a phone number typed as a date), is "[withheld]" in the raw values
    too; the raw values are made storable (JSON already writes NUL as \\u0000; an unpaired
    surrogate is escaped the same way)."""
    withheld = {r.partition(":")[2] for r in rule_ids if r.startswith("identifier:")}
    quoted = {r.partition(":")[2]: r.startswith("date:") for r in rule_ids if r.startswith(("code:", "date:", "age:"))}
    ds = DATASETS[dataset]
    limit = wh.quarantine.c.record_id.type.length
    if record_id is not None and (ds.id_column in withheld or not isinstance(record_id, str)
                                  or len(record_id) > limit or _UNSTORABLE.search(record_id)):
        record_id = f"{WITHHELD_PREFIX}{row_number}"
    if withheld or quoted or _UNSTORABLE.search(raw_values):
        values = json.loads(raw_values)
        # A code, date or age the message withheld as personal (a phone number typed as a date) is
        # withheld here too; other values stay as sent, for the partnership to find and correct.
        # (Over DOCS_QUOTE_MAX characters it is no code, date or age, and is not screened at length.)
        withheld.update(c for c, is_date in quoted.items() if isinstance(values.get(c), str) and (
            len(values[c]) > DOCS_QUOTE_MAX or _personal(values[c], is_date)))
        if not withheld and not _UNSTORABLE.search(raw_values):
            return record_id, raw_values
        for col in withheld:
            if values.get(col) is not None:
                values[col] = "[withheld]"
        raw_values = json.dumps(values, default=str, ensure_ascii=False)
        if _UNSTORABLE.search(raw_values):
            raw_values = json.dumps(values, default=str, ensure_ascii=True)
    return record_id, raw_values


def is_withheld(record_id: str | None) -> bool:
    return record_id is not None and record_id.startswith(WITHHELD_PREFIX)


def shown_record_id(record_id: str | None, file_name: str, row_number: int) -> str:
    """A quarantined row's record id as reports show it: a withheld id as "row N of FILE"."""
    if not record_id:
        return "(blank)"
    return f"row {row_number} of {file_name}" if is_withheld(record_id) else record_id


def _rules(dataset: str, cfg: Config, context: RuleContext | None) -> list[Rule]:
    import great_expectations as gx  # heavy: imported when checks run, never at DAG parse time

    E = gx.expectations
    ds = DATASETS[dataset]
    rules: list[Rule] = []
    for col in ds.columns:
        name = "child_key" if col.name == "child_ref" else col.name
        if col.required:
            rules.append(Rule(f"required:{col.name}", E.ExpectColumnValuesToNotBeNull(column=name),
                              lambda r, c=col.name: f"{c} is blank (it is required)"))
        if col.kind == "date":
            # Existence, not shape: the parsed date is blank for 2024-02-30 as for 30/02/2024.
            rules.append(Rule(f"date:{col.name}", E.ExpectColumnValuesToBeInSet(column=_date_column(name), value_set=[True]),
                              lambda r, c=col.name: f"{c} {_quote(_raw(r, c), date=True)} is not a date "
                                                    "(day/month/year or YYYY-MM-DD)"))
        if col.kind == "date" and col.name not in PLANNED_DATES:
            rules.append(Rule(
                f"not_after_period_end:{col.name}",
                E.ExpectColumnPairValuesAToBeGreaterThanB(
                    column_A=PERIOD_END_COLUMN, column_B=name + DT_SUFFIX, or_equal=True,
                    ignore_row_if="either_value_is_missing"),
                lambda r, c=col.name: _say_period_end(r, c)))
        if col.kind == "code":
            allowed = sorted(cfg.themes) if col.name == "theme" else list(col.codes)
            if col.name == "theme":
                say = lambda r: f"theme {_quote(_raw(r, 'theme'))} is not a known learning theme or synonym"  # noqa: E731
            else:
                say = lambda r, c=col.name, a=tuple(allowed): f"{c} {_quote(_raw(r, c))} is not one of: {', '.join(a)}"  # noqa: E731
            rules.append(Rule(f"code:{col.name}", E.ExpectColumnValuesToBeInSet(column=name, value_set=allowed), say))
        if col.kind == "age":
            rules.append(Rule(f"age:{col.name}", E.ExpectColumnValuesToMatchRegex(column=name, regex=AGE_REGEX),
                              lambda r, c=col.name: f"{c} {_quote(_raw(r, c))} is not a whole number of years from 0 to 17"))
        if col.name in identifier_columns(dataset):
            rules.append(Rule(
                f"identifier:{col.name}",
                E.ExpectColumnValuesToBeInSet(column=_identifier_column(name), value_set=[True]),
                lambda r, c=col.name: f"{c} is not a valid identifier (withheld: {r.get(_identifier_column(c))})"))
        if col.name in _length_columns(dataset):
            limit = column_limits(dataset)[col.name]
            rules.append(Rule(
                f"length:{col.name}",
                E.ExpectColumnValuesToBeInSet(column=_length_column(name), value_set=[True]),
                lambda r, c=col.name, n=limit: f"{c} is longer than {n} characters"))
    for order in ds.date_order:
        rules.append(Rule(
            f"order:{order.earlier}<={order.later}",
            E.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=order.later + DT_SUFFIX, column_B=order.earlier + DT_SUFFIX, or_equal=True,
                ignore_row_if="either_value_is_missing"),
            lambda r, o=order: f"{o.earlier} {_raw(r, o.earlier)} is after {o.later} {_raw(r, o.later)}"))
    rules.append(Rule(f"unique:{ds.id_column}",
                      E.ExpectCompoundColumnsToBeUnique(column_list=[FILE_COLUMN, ds.id_column]),
                      lambda r, c=ds.id_column: f"{c} {_id_shown(r, c)} appears more than once in this file"))
    rules.append(Rule("ragged_row", E.ExpectColumnValuesToBeInSet(column=EXTRA_COLUMN, value_set=[0]),
                      lambda r: f"the row has {r.get(EXTRA_COLUMN)} more value(s) than the header has columns"))
    rules.append(Rule("storable", E.ExpectColumnValuesToBeInSet(column=STORABLE_COLUMN, value_set=[True]),
                      lambda r: str(r.get(STORABLE_COLUMN))))
    rules += _context_rules(dataset, cfg, context, E)
    return rules


def _context_rules(dataset: str, cfg: Config, context: RuleContext | None, E) -> list[Rule]:
    ds = DATASETS[dataset]
    rules: list[Rule] = []
    if context is not None:
        for ref in ds.references:
            if ref.dataset not in context.known_ids:
                continue
            noun = RECORD_NOUN[ref.dataset]
            rules.append(Rule(
                f"reference:{ref.column}",
                E.ExpectColumnValuesToBeInSet(column=_known_column(ref.column), value_set=[True]),
                lambda r, c=ref.column, n=noun: (
                    f"{c} {_id_shown(r, c)} does not name a {n} that has been loaded "
                    f"(none with that id in the warehouse or among the valid rows of this return)")))
        for ours_ds, ours, ref_col, their_ds, theirs in CROSS_DATE_ORDER:
            if ours_ds != dataset or their_ds not in context.dates:
                continue
            their = _their_date_column(ref_col, theirs)
            rules.append(Rule(
                f"cross_order:{their_ds}.{theirs}<={ours}",
                E.ExpectColumnPairValuesAToBeGreaterThanB(
                    column_A=ours + DT_SUFFIX, column_B=their, or_equal=True, ignore_row_if="either_value_is_missing"),
                lambda r, o=ours, t=theirs, c=ref_col, th=their, n=RECORD_NOUN[their_ds]: (
                    f"{o} {_raw(r, o)} is before {t} {r[th]:%d/%m/%Y} of {n} {_id_shown(r, c)}")))
    if dataset == "practice_reviews" and cfg.approved_authors:
        approved = sorted({normalise_word(a) for a in cfg.approved_authors})
        rules.append(Rule(
            "approved_author",
            E.ExpectColumnValuesToBeInSet(column=AUTHOR_COLUMN, value_set=approved,
                                          row_condition='review_type=="lcspr"', condition_parser="pandas"),
            lambda r: f"author {_quote(r.get('author'), names=False)} is not on the regional list of approved "
                      "LCSPR authors",
            ("review_type",)))
        rules.append(Rule(
            "author_needed",
            E.ExpectColumnValuesToNotBeNull(column="author",
                                            row_condition='review_type=="lcspr" and status!="commissioned"',
                                            condition_parser="pandas"),
            lambda r: f"author is blank: an LCSPR with status {_quote(r.get('status'))} needs its author "
                      "(blank is allowed only while it is commissioned)",
            ("review_type", "status")))
    return rules


def _prepare(frame: pd.DataFrame, dataset: str, context: RuleContext | None) -> pd.DataFrame:
    """The columns the rules compare against that a return does not hold, derived from the
    context: a frame of those columns only, on the frame's index (the frame is not copied)."""
    derived: dict[str, pd.Series] = {}
    limit = frame[RETURN_DATE_COLUMN]
    if context is not None and context.as_of is not None:
        limit = limit.where(limit <= pd.Timestamp(context.as_of), pd.Timestamp(context.as_of))
    derived[PERIOD_END_COLUMN] = pd.to_datetime(limit)
    ds = DATASETS[dataset]
    if context is not None:
        for ref in ds.references:
            known = context.known_ids.get(ref.dataset)
            if known is None:
                continue
            known = set(known)
            values, blank = frame[ref.column], _blank(frame[ref.column])
            derived[_known_column(ref.column)] = pd.Series(
                [None if b else (v in known) for v, b in zip(values.tolist(), blank)], index=frame.index, dtype=object)
        for ours_ds, _ours, ref_col, their_ds, theirs in CROSS_DATE_ORDER:
            if ours_ds != dataset or their_ds not in context.dates:
                continue
            lookup = context.dates[their_ds].get(theirs, {})
            values, blank = frame[ref_col], _blank(frame[ref_col])
            derived[_their_date_column(ref_col, theirs)] = pd.to_datetime(pd.Series(
                [None if b else lookup.get(v) for v, b in zip(values.tolist(), blank)], index=frame.index, dtype=object))
    if "author" in frame.columns:
        derived[AUTHOR_COLUMN] = pd.Series(_normalised_authors(frame["author"].tolist()), index=frame.index, dtype=object)
    derived.update(_fit_columns(frame, dataset))
    return pd.DataFrame(derived, index=frame.index)


def _fit_columns(frame: pd.DataFrame, dataset: str) -> dict[str, pd.Series]:
    """The columns the date, identifier, length and storable rules read (see _prepare)."""
    derived: dict[str, pd.Series] = {}
    index = frame.index
    for col in DATASETS[dataset].of_kind("date"):
        if col in frame.columns and col + DT_SUFFIX in frame.columns:
            written = frame[col].notna().to_numpy()
            parsed = frame[col + DT_SUFFIX].notna().to_numpy()
            cells = np.full(len(frame), None, dtype=object)
            cells[written] = parsed[written]
            derived[_date_column(col)] = pd.Series(cells, index=index, dtype=object)
    for col in identifier_columns(dataset):
        if col in frame.columns:
            cells = _identifier_cells(frame[col].tolist(), identifier_limit(dataset, col))
            if col == DATASETS[dataset].id_column:
                for i in _lone_first_cells(frame, dataset):
                    if cells[i] is not None:
                        cells[i] = NOTE_ROW
            derived[_identifier_column(col)] = pd.Series(cells, index=index, dtype=object)
    for col in _length_columns(dataset):
        if col in frame.columns:
            fits = _too_long(frame[col].tolist(), column_limits(dataset)[col])
            if fits is None:
                fits = np.where(frame[col].isna().to_numpy(), None, True)
            derived[_length_column(col)] = pd.Series(fits, index=index, dtype=object)
    derived[STORABLE_COLUMN] = pd.Series(_storable_cells(frame, dataset), index=index, dtype=object)
    return derived


def _blank(values: pd.Series) -> list[bool]:
    """Per cell, whether it is blank (None, NaN, NaT or NA: pandas has many spellings of a
    blank cell), for the whole column in one pass."""
    return values.isna().tolist()


def _normalised_authors(values: list) -> list:
    """normalise_word of each non-blank author (once per distinct name: a few hundred in a batch)."""
    words: dict[str, str] = {}
    out = []
    for v in values:
        if isinstance(v, str) and v.strip():
            word = words.get(v)
            if word is None:
                word = words[v] = normalise_word(v)
            out.append(word)
        else:
            out.append(None)
    return out


@lru_cache(maxsize=1)
def _gx_batch_definition():
    """One ephemeral GX context per process, progress bars and analytics off."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = ctx.data_sources.add_pandas("returns")
    asset = source.add_dataframe_asset("batch")
    return ctx, asset.add_batch_definition_whole_dataframe("whole")


class Flag(NamedTuple):
    """A `flag` rule a loaded row broke: what row_flags keeps of it."""

    rule_id: str
    message: str  # the rule's sentence, as for a rejected row
    original_text: str | None  # what the return said, quoted as messages quote it (None: blank)


@dataclass
class ValidationResult:
    """Every rule each failing row broke (`failures`, `failed_rules`: both severities, as Data
    Docs and the rule counts see them), each rule's severity, and the rows that broke only `flag`
    rules (`flags`): those are loaded, not quarantined (`rejections` gives the quarantined)."""

    failures: dict[int, list[str]]  # row key -> sentences, in rule order
    failed_rules: dict[int, list[str]]  # row key -> rule ids, parallel to `failures`
    rule_counts: dict[str, int]  # rule id -> rows failing it
    rule_titles: dict[str, str]  # rule id -> what it checks, in plain words
    suite_name: str
    gx_result: object  # the GX ExpectationSuiteValidationResult, for data docs
    severities: dict[str, str] = field(default_factory=dict)  # rule id -> reject | flag (config quality.severity)
    flags: dict[int, list[Flag]] = field(default_factory=dict)  # row key -> flags, of rows that broke no reject rule

    def severity(self, rule_id: str) -> str:
        return self.severities.get(rule_id, "reject")

    def rejections(self) -> tuple[dict[int, list[str]], dict[int, list[str]]]:
        """(row key -> sentences, row key -> rule ids) of the rows that broke at least one `reject`
        rule: the rows to quarantine, each with every rule it broke (flags too: the partnership
        corrects the whole row)."""
        keys = [k for k, rules in self.failed_rules.items() if any(self.severity(r) == "reject" for r in rules)]
        return {k: self.failures[k] for k in keys}, {k: self.failed_rules[k] for k in keys}


# Flags whose cell cannot be used as sent: stored blank (order, cross_order and author_needed keep
# the values: each date may be right, and a blank author is blank already).
BLANKING_KINDS = ("date", "not_after_period_end", "code", "age", "length", "approved_author")


def rule_columns(rule_id: str) -> tuple[str, ...]:
    """The template columns a rule is about (row_flags.columns)."""
    kind, _, arg = rule_id.partition(":")
    if kind == "order":
        return tuple(arg.split("<="))
    if kind == "cross_order":
        return (arg.partition("<=")[2],)
    if kind in ("approved_author", "author_needed"):
        return ("author",)
    return (arg,) if arg else ()


def blanked_column(rule_id: str) -> str | None:
    """The column a flag of this rule stores blank (None: the row is stored as sent)."""
    kind = rule_id.partition(":")[0]
    return rule_columns(rule_id)[0] if kind in BLANKING_KINDS else None


def _said(row: dict, col: str, *, date: bool = False) -> str | None:
    text = _raw(row, col)
    return None if text == "" else _quote(text, date=date)


def original_text(rule_id: str, row: dict) -> str | None:
    """What the return said in the cells a flag is about, quoted as its message quotes values
    (`_quote`: at most 40 printable characters the free-text screen finds nothing in, else
    "(withheld: why)"); None for a blank cell. Never a raw id (ids only when valid) or free text."""
    kind, _, arg = rule_id.partition(":")
    if kind in ("date", "not_after_period_end"):
        return _said(row, arg, date=True)
    if kind in ("code", "age", "length"):
        return _said(row, arg)
    if kind in ("approved_author", "author_needed"):
        author = row.get("author")
        return None if _missing(author) else _quote(author, names=False)
    if kind in ("order", "cross_order"):
        cols = rule_columns(rule_id)
        return ", ".join(f"{c} {_said(row, c, date=True) or '(blank)'}" for c in cols)
    if kind == "reference":
        return None if _missing(row.get(arg)) else _id_shown(row, arg)
    return None


def validate(frame: pd.DataFrame, dataset: str, cfg: Config, context: RuleContext | None = None) -> ValidationResult:
    """Run the dataset's suite over `frame` (which has KEY_COLUMN and FILE_COLUMN) in one pass."""
    with gc_paused():  # GX's many short-lived objects set off collections: reviews.core.gc_pause
        return _validate(frame, dataset, cfg, context)


def _validate(frame: pd.DataFrame, dataset: str, cfg: Config, context: RuleContext | None) -> ValidationResult:
    from great_expectations.validator.v1_validator import Validator as V1Validator

    _ctx, batch_definition = _gx_batch_definition()
    suite, rules = _suite(dataset, _rules(dataset, cfg, context))
    by_id = {rule.rule_id: rule for rule in rules}
    titles = {rule.rule_id: rule.title for rule in rules}
    failures: dict[int, list[str]] = defaultdict(list)
    failed_rules: dict[int, list[str]] = defaultdict(list)
    counts: dict[str, int] = {}
    severities = {rule.rule_id: cfg.quality.severity_of(rule.rule_id, dataset) for rule in rules}
    if frame.empty:
        return ValidationResult({}, {}, {}, titles, suite.name, None, severities)
    derived = _prepare(frame, dataset, context)
    checked = _checked_frame(frame, derived, rules)
    # GX's validator for a batch definition (what Batch.validate and ValidationDefinition.run use):
    # it loads (copies and fingerprints) the frame once; get_batch() then Batch.validate() loaded it twice.
    validator = V1Validator(batch_definition=batch_definition, batch_parameters={"dataframe": checked},
                            result_format={"result_format": "COMPLETE", "return_unexpected_index_query": False})
    with gx_speedups.applied():  # on the GX version they were checked against only
        result = validator.validate_expectation_suite(suite)
    failed: list[tuple[Rule, list[int]]] = []
    for er in result.results:
        rule = by_id[er.expectation_config.meta["rule"]]
        if er.exception_info and er.exception_info.get("raised_exception"):
            # Only the kind of error: GX's message may quote the values it was checking.
            raise RuntimeError(f"quality rule {rule.rule_id} could not run ({_error_kind(er.exception_info)})")
        keys = sorted({int(item[KEY_COLUMN] if isinstance(item, dict) else item)
                       for item in (er.result.get("unexpected_index_list") or [])})
        counts[rule.rule_id] = len(keys)
        failed.append((rule, keys))
    rows = _failing_rows(frame, derived, sorted({k for _, keys in failed for k in keys}))
    for rule, keys in failed:
        for k in keys:
            failures[k].append(rule.describe(rows[k]))
            failed_rules[k].append(rule.rule_id)
    # GX returns results in its own order; a row's reasons follow the suite's (column by column).
    rank = {rule.rule_id: i for i, rule in enumerate(rules)}
    for k in failures:
        pairs = sorted(zip(failed_rules[k], failures[k]), key=lambda p: rank[p[0]])
        failed_rules[k], failures[k] = [p[0] for p in pairs], [p[1] for p in pairs]
    flags = {k: [Flag(r, m, original_text(r, rows[k])) for r, m in zip(failed_rules[k], failures[k])]
             for k in failures if all(severities[r] == "flag" for r in failed_rules[k])}
    return ValidationResult(dict(failures), dict(failed_rules), counts, titles, suite.name, result, severities, flags)


def _error_kind(info: dict) -> str:
    """The kind of error GX caught (the last traceback line up to its colon), never its message."""
    last = (info.get("exception_traceback") or "").strip().splitlines()[-1:] or [""]
    kind = last[0].partition(":")[0].strip()
    return kind if re.fullmatch(r"[\w.]{1,80}", kind) else "an error"


def _failing_rows(frame: pd.DataFrame, derived: pd.DataFrame, failing: list[int]) -> dict[int, dict]:
    """Each failing row as a dict by its key, made once (not once per rule it broke) and only for
    failing rows.

    The parsed dates (`__dt`) are left out: a sentence quotes what the return said (the raw
    text), and turning every parsed date of every failing row into a Timestamp took longer than
    the rest of the row.
    """
    if not failing:
        return {}
    mask = frame[KEY_COLUMN].isin(failing).to_numpy()
    said = [c for c in frame.columns if c not in derived.columns and not c.endswith(DT_SUFFIX)]
    picked = pd.concat([frame.loc[mask, said].reset_index(drop=True), derived[mask].reset_index(drop=True)], axis=1)
    return dict(zip((int(k) for k in picked[KEY_COLUMN].tolist()), _records(picked)))


def _records(frame: pd.DataFrame) -> list[dict]:
    """`frame.to_dict(orient="records")`, the same values, made column by column.

    to_dict walks the frame row by row and boxes each cell of an object or extension column on
    its own; here each column becomes a list in one step (`tolist`, which gives numpy columns'
    cells as the Python values to_dict gives) and only those columns' cells go through pandas'
    `maybe_box_native`, as in to_dict (a nullable integer's NA becomes None, a numpy scalar a
    Python one).
    """
    from pandas.api.extensions import ExtensionDtype
    from pandas.core.dtypes.cast import maybe_box_native

    columns = frame.columns.tolist()
    values = []
    for i, dtype in enumerate(frame.dtypes.tolist()):
        cells = frame.iloc[:, i].tolist()
        boxed = dtype == object or isinstance(dtype, ExtensionDtype)
        values.append(list(map(maybe_box_native, cells)) if boxed else cells)
    return [dict(zip(columns, row)) for row in zip(*values)]


def _checked_frame(frame: pd.DataFrame, derived: pd.DataFrame, rules: list[Rule]) -> pd.DataFrame:
    """What GX is given: only the columns the rules read, indexed by the row keys.

    GX copies, filters and fingerprints its whole frame once or more per expectation; the
    returns' other columns (free text, the raw spellings of dates) would only slow that down.
    The row keys as the frame's (unnamed) index: GX then lists each expectation's failing rows by
    their index in one step. Naming them in `unexpected_index_column_names` instead made GX look
    each failing row's key up one at a time (with a column-name check each time): most of the
    validation time when a return has thousands of bad rows.
    A column a rule names that the frame lacks stays missing, for GX to report.
    """
    names = list(dict.fromkeys(c for rule in rules for c in rule.columns))
    keys = pd.Index(frame[KEY_COLUMN].to_numpy())
    own = frame[[c for c in names if c in frame.columns and c not in derived.columns]]
    return pd.concat([own.set_axis(keys, axis=0), derived[[c for c in names if c in derived.columns]].set_axis(keys, axis=0)],
                     axis=1)


_SUITES: dict[tuple, tuple] = {}
_SUITES_KEPT = 32  # a process sees a handful of (dataset, rule set) pairs


def _suite(dataset: str, rules: list[Rule]):
    """The GX suite for these rules, built once per (dataset, rule set) and reused afterwards.

    Building a suite turns every expectation into its configuration and compares it with each
    one added before; the rules of a dataset change only with the config and with what the
    context knows, so a worker validating authority after authority builds each suite once.
    The key is every rule's id and expectation (type and arguments, such as the allowed codes),
    so different rules never share a suite. Returns the suite and the rules it was built from.
    """
    import great_expectations as gx

    key = (dataset, tuple((rule.rule_id, repr(rule.expectation), rule.condition_columns) for rule in rules))
    found = _SUITES.get(key)
    if found is None:
        suite = gx.ExpectationSuite(name=f"{dataset}_return")
        for rule in rules:
            rule.expectation.meta = {"rule": rule.rule_id, "notes": rule.title}
            suite.add_expectation(rule.expectation)
        if len(_SUITES) >= _SUITES_KEPT:
            _SUITES.clear()
        found = _SUITES[key] = (suite, rules)
    return found


def _escaped(value):
    """Every string inside a GX result (dicts, lists, tuples), HTML-escaped, and "[withheld]" for
    one that could be personal or would not show (what _quote withholds: the values GX found are
    cells, such as a phone number typed as a code or an id)."""
    if isinstance(value, str):
        return html_escape("[withheld]" if _unquotable(value, limit=DOCS_QUOTE_MAX) else value)
    if isinstance(value, dict):
        return {k: _escaped(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_escaped(v) for v in value)
    return value


def write_data_docs(result: ValidationResult, path: Path) -> Path | None:
    """Render the GX validation result as a Great Expectations Data Docs page (HTML) at `path`.

    The page is GX's own validation-results page (its styles load from the web when opened; the
    content is all in the file). None when nothing was validated.
    """
    if result.gx_result is None:
        return None
    # GX puts the values it found into the page without escaping them: a cell holding <script>
    # would run when the page is opened. So the page shows the result with them escaped
    # (`result.gx_result` is left as it was).
    renderer, view = gx_speedups.page_renderer()
    html = view.render(renderer.render(gx_speedups.shown_result(result.gx_result, _escaped)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path
