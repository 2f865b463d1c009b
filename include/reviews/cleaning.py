"""Turn a mapped table of text into typed, checkable values, keeping the original text.

Blank cells become None, codes become template codes, dates are parsed with the partnership's
format (their original text is kept beside them for messages), and child references are
replaced by keyed hashes here, before anything is validated, stored or logged.
"""
from __future__ import annotations

import re
from datetime import date

import numpy as np
import pandas as pd

from reviews.config import Config, Partnership
from reviews.dates import parse_dates, to_iso
from reviews.mapping import distinct_codes, map_distinct, normalise_codes
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
    if series.dtype == object and set(map(type, series.to_numpy())) == {str}:
        cells = [s or None for s in map(str.strip, series.to_numpy())]  # what _cell gives a str
    else:
        cells = [_cell(v) for v in series]
    return pd.Series(cells, index=series.index, dtype=object)


def _blanks_to_none(mapped: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """The table with its template columns (`names`) through _blank_to_none, the others as they are.

    When every template cell is text (as the readers give them) the cells are converted in one
    pass over one array and the table built in one go: a column at a time costs ~50 pandas calls.
    """
    cols = [c for c in mapped.columns if c in names]
    dtypes = mapped.dtypes
    cells = None
    if cols and mapped.columns.is_unique and all(dtypes[c] == object for c in cols):
        block = mapped[cols].to_numpy(dtype=object)
        flat = block.ravel()
        if set(map(type, flat)) == {str}:
            cells = np.empty(flat.shape, dtype=object)
            cells[:] = [s or None for s in map(str.strip, flat)]  # what _cell gives a str
    if cells is None:
        out = pd.DataFrame(index=mapped.index)
        for col in mapped.columns:
            out[col] = _blank_to_none(mapped[col]) if col in names else mapped[col]
        return out
    out = pd.DataFrame(cells.reshape(block.shape), index=mapped.index, columns=cols, dtype=object)
    for i, col in enumerate(mapped.columns):
        if col not in names:
            out.insert(i, col, mapped[col])
    return out


def _dates(values: pd.Series, date_format: str) -> tuple[pd.Series, pd.Series]:
    """(parsed datetime64, the column as checks see it: ISO text, None for blank, text that is
    not a date as written) for a date column of text and None.

    Each distinct text is parsed once (a return repeats its dates thousands of times): parse_dates
    and to_iso work cell by cell, and pandas infers the unit from the set of values, which the
    distinct values share with the column.
    """
    found = distinct_codes(values) if len(values) else None
    if found is None:
        parsed, bad = parse_dates(values.fillna(""), date_format)
        return parsed, to_iso(parsed).where(~bad, values)
    codes, uniques = found
    written = pd.Series(uniques, dtype=object)
    parsed, bad = parse_dates(written.fillna(""), date_format)
    shown = to_iso(parsed).where(~bad, written).to_numpy(dtype=object)
    return (pd.Series(parsed._values.take(codes), index=values.index, name=values.name),
            pd.Series(shown.take(codes), index=values.index, name=values.name, dtype=object))


def clean_table(
    mapped: pd.DataFrame,
    dataset: str,
    partnership: Partnership,
    cfg: Config,
    key: bytes,
    return_date: date,
) -> pd.DataFrame:
    ds = DATASETS[dataset]
    out = _blanks_to_none(mapped, ds.column_names)
    out = normalise_codes(out, dataset, cfg)
    for col in ds.of_kind("age"):
        out[col] = map_distinct(out[col], _whole_number)
    for col in ds.of_kind("date"):
        parsed, shown = _dates(out[col], partnership.date_format)
        out[col + RAW_SUFFIX] = out[col]
        out[col + DT_SUFFIX] = parsed
        out[col] = shown  # bad text stays as written, so the check can quote it
    if "child_ref" in out.columns:
        out["child_key"] = pseudonymise_series(out["child_ref"], partnership.code, key)
        out = out.drop(columns=["child_ref"])
    out[RETURN_DATE_COLUMN] = pd.Timestamp(return_date)
    return out


def business_columns(dataset: str) -> list[str]:
    """The columns stored in the warehouse case table for a dataset (child_ref -> child_key)."""
    return ["child_key" if c == "child_ref" else c for c in DATASETS[dataset].column_names]
