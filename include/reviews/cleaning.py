"""Turn a mapped table of text into typed, checkable values, keeping the original text.

Blank cells become None, codes become template codes, dates are parsed with the partnership's
format (their original text is kept beside them for messages), and child references are
replaced by keyed hashes here, before anything is validated, stored or logged.
"""
from __future__ import annotations

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


def _blank_to_none(series: pd.Series) -> pd.Series:
    text = series.astype(object).map(lambda v: v.strip() if isinstance(v, str) else v)
    return text.where(text.map(lambda v: v is not None and v == v and v != ""), None)


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
