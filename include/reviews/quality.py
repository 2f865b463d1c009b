"""Data quality rules for returns, run with Great Expectations, reported row by row in plain words.

One suite per dataset, built here in code from the template and the config (so a new code or
theme is a config change). GX runs every expectation over the whole batch at once; each failed
row comes back by its key, and each rule turns the row's original text into a sentence a
partnership officer understands: "aware_date 12/05/2024 is after notified_date 10/05/2024".
"""
from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

from reviews.cleaning import DT_SUFFIX, RAW_SUFFIX, RETURN_DATE_COLUMN
from reviews.config import Config
from reviews.readers import EXTRA_COLUMN
from reviews.template import DATASETS

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
KEY_COLUMN = "_key"
FILE_COLUMN = "_file"
ISO_DATE_REGEX = r"^\d{4}-\d{2}-\d{2}$"
AGE_REGEX = r"^(?:[0-9]|1[0-7])$"


@dataclass(frozen=True)
class Rule:
    """A named check: the GX expectation and how to say a failure in words."""

    rule_id: str
    expectation: object
    describe: Callable[[dict], str]


def _raw(row: dict, col: str) -> str:
    value = row.get(col + RAW_SUFFIX, row.get(col))
    return "" if value is None else str(value)


def _rules(dataset: str, cfg: Config) -> list[Rule]:
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
            rules.append(Rule(
                f"not_after_return:{col.name}",
                E.ExpectColumnPairValuesAToBeGreaterThanB(
                    column_A=RETURN_DATE_COLUMN, column_B=name + DT_SUFFIX, or_equal=True,
                    ignore_row_if="either_value_is_missing"),
                lambda r, c=col.name: f"{c} {_raw(r, c)} is after the date of the return ({r[RETURN_DATE_COLUMN]:%d/%m/%Y})"))
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
    return rules


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
    rule_counts: dict[str, int]  # rule id -> rows failing it
    suite_name: str
    gx_result: object  # the GX ExpectationSuiteValidationResult, for data docs


def validate(frame: pd.DataFrame, dataset: str, cfg: Config) -> ValidationResult:
    """Run the dataset's suite over `frame` (which has KEY_COLUMN and FILE_COLUMN) in one pass."""
    import great_expectations as gx

    ctx, batch_definition = _gx_batch_definition()
    rules = _rules(dataset, cfg)
    suite_name = f"{dataset}_return"
    suite = gx.ExpectationSuite(name=suite_name)
    for rule in rules:
        rule.expectation.meta = {"rule": rule.rule_id}
        suite.add_expectation(rule.expectation)
    by_id = {rule.rule_id: rule for rule in rules}
    failures: dict[int, list[str]] = defaultdict(list)
    counts: dict[str, int] = {}
    if frame.empty:
        return ValidationResult({}, {}, suite_name, None)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(
        suite,
        result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [KEY_COLUMN],
                       "return_unexpected_index_query": False},
    )
    rows = frame.set_index(KEY_COLUMN, drop=False)
    for er in result.results:
        rule = by_id[er.expectation_config.meta["rule"]]
        if er.exception_info and er.exception_info.get("raised_exception"):
            raise RuntimeError(f"quality rule {rule.rule_id} could not run: {er.exception_info.get('exception_message')}")
        keys = sorted({int(item[KEY_COLUMN]) for item in (er.result.get("unexpected_index_list") or [])})
        counts[rule.rule_id] = len(keys)
        for k in keys:
            failures[k].append(rule.describe(rows.loc[k].to_dict()))
    return ValidationResult(dict(failures), counts, suite_name, result)
