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
  reference:{col}           a rapid review or practice review naming a notification, or a finding
                            naming a review, that the partnership has not sent: known means in the
                            warehouse already, or valid in this batch of returns
  cross_order:notifications.aware_date<=completed_date  a rapid review completed before the
                            council became aware of the incident (the notification's aware_date)
  approved_author / author_needed  an LCSPR's author must be on the regional approved list
                            (config `approved_authors`); blank only while status is commissioned
Reference and cross-dataset rules run only when `validate` is given a `RuleContext` saying what
is known; without one (a dataset checked on its own) they are skipped.
"""
from __future__ import annotations

import copy
import logging
import os
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from html import escape as html_escape
from pathlib import Path

import pandas as pd

from reviews.cleaning import DT_SUFFIX, RAW_SUFFIX, RETURN_DATE_COLUMN
from reviews.config import Config, normalise_word
from reviews.readers import EXTRA_COLUMN
from reviews.template import DATASETS

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
KEY_COLUMN = "_key"
FILE_COLUMN = "_file"
PERIOD_END_COLUMN = "_period_end_dt"  # the last day a date in the row may be
AUTHOR_COLUMN = "_author_norm"
ISO_DATE_REGEX = r"^\d{4}-\d{2}-\d{2}$"
AGE_REGEX = r"^(?:[0-9]|1[0-7])$"
RECORD_NOUN = {"notifications": "notification", "practice_reviews": "practice review",
               "rapid_reviews": "rapid review", "learning": "finding"}
# (dataset, our date column, reference column, referenced dataset, their date column):
# our date must be on or after theirs.
# Planned dates are naturally after the period end (an action due next quarter): not judged by it.
PLANNED_DATES = frozenset({"action_due_date"})
CROSS_DATE_ORDER = (("rapid_reviews", "completed_date", "notification_id", "notifications", "aware_date"),)


@dataclass(frozen=True)
class Rule:
    """A named check: the GX expectation and how to say a failure in words."""

    rule_id: str
    expectation: object
    describe: Callable[[dict], str]

    @property
    def title(self) -> str:
        return rule_title(self.rule_id)


def _referenced_dataset(column: str) -> str:
    for ds in DATASETS.values():
        for ref in ds.references:
            if ref.column == column:
                return ref.dataset
    return ""


def rule_title(rule_id: str) -> str:
    """What a rule checks, in plain words, from its id (for counts in reports and Data Docs)."""
    kind, _, arg = rule_id.partition(":")
    if kind == "order":
        a, _, b = arg.partition("<=")
        return f"{a} is after {b}"
    if kind == "cross_order":
        theirs, _, ours = arg.partition("<=")
        their_ds, _, their_col = theirs.partition(".")
        return f"{ours} is before the {RECORD_NOUN.get(their_ds, their_ds)}'s {their_col}"
    if kind == "reference":
        return f"{arg} names a {RECORD_NOUN.get(_referenced_dataset(arg), 'record')} that has not been loaded"
    titles = {
        "required": f"{arg} is blank (it is required)",
        "date": f"{arg} is not a date",
        "not_after_period_end": f"{arg} is after the end of the period",
        "code": f"{arg} is not one of the allowed codes",
        "age": f"{arg} is not a whole number from 0 to 17",
        "unique": f"{arg} appears more than once in the file",
        "ragged_row": "the row has more values than the header has columns",
        "approved_author": "the LCSPR's author is not on the regional approved list",
        "author_needed": "the LCSPR's author is blank after commissioning",
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


def _missing(value) -> bool:
    """None, NaN or NA: pandas has many spellings of a blank cell."""
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


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
            rules.append(Rule(f"date:{col.name}", E.ExpectColumnValuesToMatchRegex(column=name, regex=ISO_DATE_REGEX),
                              lambda r, c=col.name: f"{c} '{_raw(r, c)}' is not a date (day/month/year or YYYY-MM-DD)"))
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
                say = lambda r: f"theme '{_raw(r, 'theme')}' is not a known learning theme or synonym"  # noqa: E731
            else:
                say = lambda r, c=col.name, a=tuple(allowed): f"{c} '{_raw(r, c)}' is not one of: {', '.join(a)}"  # noqa: E731
            rules.append(Rule(f"code:{col.name}", E.ExpectColumnValuesToBeInSet(column=name, value_set=allowed), say))
        if col.kind == "age":
            rules.append(Rule(f"age:{col.name}", E.ExpectColumnValuesToMatchRegex(column=name, regex=AGE_REGEX),
                              lambda r, c=col.name: f"{c} '{_raw(r, c)}' is not a whole number of years from 0 to 17"))
    for order in ds.date_order:
        rules.append(Rule(
            f"order:{order.earlier}<={order.later}",
            E.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=order.later + DT_SUFFIX, column_B=order.earlier + DT_SUFFIX, or_equal=True,
                ignore_row_if="either_value_is_missing"),
            lambda r, o=order: f"{o.earlier} {_raw(r, o.earlier)} is after {o.later} {_raw(r, o.later)}"))
    rules.append(Rule(f"unique:{ds.id_column}",
                      E.ExpectCompoundColumnsToBeUnique(column_list=[FILE_COLUMN, ds.id_column]),
                      lambda r, c=ds.id_column: f"{c} {r.get(c)} appears more than once in this file"))
    rules.append(Rule("ragged_row", E.ExpectColumnValuesToBeInSet(column=EXTRA_COLUMN, value_set=[0]),
                      lambda r: f"the row has {r.get(EXTRA_COLUMN)} more value(s) than the header has columns"))
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
                    f"{c} {r.get(c)} does not name a {n} that has been loaded "
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
                    f"{o} {_raw(r, o)} is before {t} {r[th]:%d/%m/%Y} of {n} {r.get(c)}")))
    if dataset == "practice_reviews" and cfg.approved_authors:
        approved = sorted({normalise_word(a) for a in cfg.approved_authors})
        rules.append(Rule(
            "approved_author",
            E.ExpectColumnValuesToBeInSet(column=AUTHOR_COLUMN, value_set=approved,
                                          row_condition='review_type=="lcspr"', condition_parser="pandas"),
            lambda r: f"author '{r.get('author')}' is not on the regional list of approved LCSPR authors"))
        rules.append(Rule(
            "author_needed",
            E.ExpectColumnValuesToNotBeNull(column="author",
                                            row_condition='review_type=="lcspr" and status!="commissioned"',
                                            condition_parser="pandas"),
            lambda r: f"author is blank: an LCSPR with status '{r.get('status')}' needs its author "
                      "(blank is allowed only while it is commissioned)"))
    return rules


def _prepare(frame: pd.DataFrame, dataset: str, context: RuleContext | None) -> pd.DataFrame:
    """The columns the rules compare against, derived from the context (the frame is copied)."""
    out = frame.copy()
    limit = out[RETURN_DATE_COLUMN]
    if context is not None and context.as_of is not None:
        limit = limit.where(limit <= pd.Timestamp(context.as_of), pd.Timestamp(context.as_of))
    out[PERIOD_END_COLUMN] = pd.to_datetime(limit)
    ds = DATASETS[dataset]
    if context is not None:
        for ref in ds.references:
            known = context.known_ids.get(ref.dataset)
            if known is None:
                continue
            known = set(known)
            out[_known_column(ref.column)] = pd.Series(
                [None if _missing(v) else (v in known) for v in out[ref.column]], index=out.index, dtype=object)
        for ours_ds, _ours, ref_col, their_ds, theirs in CROSS_DATE_ORDER:
            if ours_ds != dataset or their_ds not in context.dates:
                continue
            lookup = context.dates[their_ds].get(theirs, {})
            out[_their_date_column(ref_col, theirs)] = pd.to_datetime(
                pd.Series([None if _missing(v) else lookup.get(v) for v in out[ref_col]], index=out.index, dtype=object))
    if "author" in out.columns:
        out[AUTHOR_COLUMN] = pd.Series([normalise_word(v) if isinstance(v, str) and v.strip() else None for v in out["author"]],
                                       index=out.index, dtype=object)
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


@dataclass
class ValidationResult:
    failures: dict[int, list[str]]  # row key -> sentences, in rule order
    failed_rules: dict[int, list[str]]  # row key -> rule ids, parallel to `failures`
    rule_counts: dict[str, int]  # rule id -> rows failing it
    rule_titles: dict[str, str]  # rule id -> what it checks, in plain words
    suite_name: str
    gx_result: object  # the GX ExpectationSuiteValidationResult, for data docs


def validate(frame: pd.DataFrame, dataset: str, cfg: Config, context: RuleContext | None = None) -> ValidationResult:
    """Run the dataset's suite over `frame` (which has KEY_COLUMN and FILE_COLUMN) in one pass."""
    import great_expectations as gx

    ctx, batch_definition = _gx_batch_definition()
    rules = _rules(dataset, cfg, context)
    suite_name = f"{dataset}_return"
    suite = gx.ExpectationSuite(name=suite_name)
    for rule in rules:
        rule.expectation.meta = {"rule": rule.rule_id, "notes": rule.title}
        suite.add_expectation(rule.expectation)
    by_id = {rule.rule_id: rule for rule in rules}
    titles = {rule.rule_id: rule.title for rule in rules}
    failures: dict[int, list[str]] = defaultdict(list)
    failed_rules: dict[int, list[str]] = defaultdict(list)
    counts: dict[str, int] = {}
    if frame.empty:
        return ValidationResult({}, {}, {}, titles, suite_name, None)
    prepared = _prepare(frame, dataset, context)
    # The row keys as the frame's (unnamed) index: GX then lists each expectation's failing rows by
    # their index in one step. Naming them in `unexpected_index_column_names` instead made GX look
    # each failing row's key up one at a time (with a column-name check each time): most of the
    # validation time when a return has thousands of bad rows.
    prepared.index = pd.Index(prepared[KEY_COLUMN].to_numpy())
    batch = batch_definition.get_batch(batch_parameters={"dataframe": prepared})
    result = batch.validate(suite, result_format={"result_format": "COMPLETE", "return_unexpected_index_query": False})
    failed: list[tuple[Rule, list[int]]] = []
    for er in result.results:
        rule = by_id[er.expectation_config.meta["rule"]]
        if er.exception_info and er.exception_info.get("raised_exception"):
            raise RuntimeError(f"quality rule {rule.rule_id} could not run: {er.exception_info.get('exception_message')}")
        keys = sorted({int(item[KEY_COLUMN] if isinstance(item, dict) else item)
                       for item in (er.result.get("unexpected_index_list") or [])})
        counts[rule.rule_id] = len(keys)
        failed.append((rule, keys))
    # Each failing row as a dict, made once (not once per rule it broke) and only for failing rows.
    failing = sorted({k for _, keys in failed for k in keys})
    rows: dict[int, dict] = {}
    if failing:
        picked = prepared[prepared[KEY_COLUMN].isin(failing)]
        rows = dict(zip((int(k) for k in picked[KEY_COLUMN].tolist()), picked.to_dict(orient="records")))
    for rule, keys in failed:
        for k in keys:
            failures[k].append(rule.describe(rows[k]))
            failed_rules[k].append(rule.rule_id)
    # GX returns results in its own order; a row's reasons follow the suite's (column by column).
    rank = {rule.rule_id: i for i, rule in enumerate(rules)}
    for k in failures:
        pairs = sorted(zip(failed_rules[k], failures[k]), key=lambda p: rank[p[0]])
        failed_rules[k], failures[k] = [p[0] for p in pairs], [p[1] for p in pairs]
    return ValidationResult(dict(failures), dict(failed_rules), counts, titles, suite_name, result)


def _escaped(value):
    """Every string inside a GX result (dicts, lists, tuples), HTML-escaped."""
    if isinstance(value, str):
        return html_escape(value)
    if isinstance(value, dict):
        return {k: _escaped(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_escaped(v) for v in value)
    return value


@lru_cache(maxsize=1)
def _data_docs_renderer():
    """GX's page renderer and view, made once per process: the view's Jinja environment compiles
    its templates once (a new view per page spent most of each page's time compiling them)."""
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    return ValidationResultsPageRenderer(), DefaultJinjaPageView()


def write_data_docs(result: ValidationResult, path: Path) -> Path | None:
    """Render the GX validation result as a Great Expectations Data Docs page (HTML) at `path`.

    The page is GX's own validation-results page (its styles load from the web when opened; the
    content is all in the file). None when nothing was validated.
    """
    if result.gx_result is None:
        return None
    renderer, view = _data_docs_renderer()
    # GX puts the values it found into the page without escaping them: a cell holding
    # <script> would run when the page is opened. Escape them on a copy of the result first.
    gx_result = copy.deepcopy(result.gx_result)
    for er in gx_result.results:
        er.result = _escaped(er.result)
    html = view.render(renderer.render(gx_result))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path
