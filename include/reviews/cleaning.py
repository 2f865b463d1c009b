"""Turn a mapped table of text into typed, checkable values, keeping the original text.

Blank cells become None, codes become template codes, dates are parsed with the partnership's
format (their original text is kept beside them for messages), and child references are
replaced by keyed hashes here, before anything is validated, stored or logged.
"""
from __future__ import annotations

import re
from datetime import date

import pandas as pd

from reviews.config import Config, Partnership
from reviews.dates import parse_dates, to_iso
from reviews.mapping import normalise_codes
from reviews.pseudonymise import pseudonymise_series
from reviews.template import DATASETS

RAW_SUFFIX = "__raw"  # original text of a date cell, for messages
DT_SUFFIX = "__dt"  # parsed datetime64 of a date cell, for order checks
RETURN_DATE_COLUMN = "_return_dt"
# A whole number as spreadsheets write it when it is stored as text or as a float: "7", "07", "7.0".
_WHOLE_NUMBER = re.compile(r"^\+?0*(\d+)(?:\.0+)?$")


def _whole_number(value):
    """'7.0' -> '7' (numbers stored as text or floats); anything else unchanged for the checks."""
    if isinstance(value, str):
        m = _WHOLE_NUMBER.match(value)
        if m:
            return m.group(1)
    return value


def _cell(value):
    """Text stripped; blank, None, NaN and NA all become None (a real None: a blank child_ref
    must stay blank, never become the keyed hash of the text 'nan')."""
    if isinstance(value, str):
        return value.strip() or None
    return None if value is None or pd.isna(value) else value


def _blank_to_none(series: pd.Series) -> pd.Series:
    return pd.Series([_cell(v) for v in series], index=series.index, dtype=object)


def clean_table(
    mapped: pd.DataFrame,
    dataset: str,
    partnership: Partnership,
    cfg: Config,
    key: bytes,
    return_date: date,
) -> pd.DataFrame:
    ds = DATASETS[dataset]
    out = pd.DataFrame(index=mapped.index)
    for col in mapped.columns:
        out[col] = _blank_to_none(mapped[col]) if col in ds.column_names else mapped[col]
    out = normalise_codes(out, dataset, cfg)
    for col in ds.of_kind("age"):
        out[col] = out[col].map(_whole_number)
    for col in ds.of_kind("date"):
        parsed, bad = parse_dates(out[col].fillna(""), partnership.date_format)
        out[col + RAW_SUFFIX] = out[col]
        out[col + DT_SUFFIX] = parsed
        iso = to_iso(parsed)
        out[col] = iso.where(~bad, out[col])  # bad text stays as written, so the check can quote it
    if "child_ref" in out.columns:
        out["child_key"] = pseudonymise_series(out["child_ref"], partnership.code, key)
        out = out.drop(columns=["child_ref"])
    out[RETURN_DATE_COLUMN] = pd.Timestamp(return_date)
    return out


def business_columns(dataset: str) -> list[str]:
    """The columns stored in the warehouse case table for a dataset (child_ref -> child_key)."""
    return ["child_key" if c == "child_ref" else c for c in DATASETS[dataset].column_names]
