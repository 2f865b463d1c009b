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

from reviews.returns import gx_speedups
from reviews.returns.cleaning import DT_SUFFIX, RAW_SUFFIX, RETURN_DATE_COLUMN
from reviews.core.config import Config, normalise_word
from reviews.core.gc_pause import gc_paused
from reviews.returns.readers import EXTRA_COLUMN
from reviews.core.template import DATASETS

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
            lambda r: f"author '{r.get('author')}' is not on the regional list of approved LCSPR authors",
            ("review_type",)))
        rules.append(Rule(
            "author_needed",
            E.ExpectColumnValuesToNotBeNull(column="author",
                                            row_condition='review_type=="lcspr" and status!="commissioned"',
                                            condition_parser="pandas"),
            lambda r: f"author is blank: an LCSPR with status '{r.get('status')}' needs its author "
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
    return pd.DataFrame(derived, index=frame.index)


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
    if frame.empty:
        return ValidationResult({}, {}, {}, titles, suite.name, None)
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
            raise RuntimeError(f"quality rule {rule.rule_id} could not run: {er.exception_info.get('exception_message')}")
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
    return ValidationResult(dict(failures), dict(failed_rules), counts, titles, suite.name, result)


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
    """Every string inside a GX result (dicts, lists, tuples), HTML-escaped."""
    if isinstance(value, str):
        return html_escape(value)
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
