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

from reviews.core.config import Config, Partnership
from reviews.core.dates import parse_dates, parse_dates_by_format, reads_at_one_unit, to_iso, unread_unit
from reviews.returns.mapping import code_folder, distinct_codes, map_distinct, normalise_codes
from reviews.privacy.pseudonymise import pseudonymise_series
from reviews.core.template import DATASETS

RAW_SUFFIX = "__raw"  # original text of a date cell, for messages
DT_SUFFIX = "__dt"  # parsed datetime64 of a date cell, for order checks
RETURN_DATE_COLUMN = "_return_dt"
# Present only when a cell that later steps change (text and free text: the ingest screen removes
# control characters; the child reference: hashed) holds a NUL, which no PostgreSQL text can hold:
# per row, a tuple of (column, "NUL"), or None. Taken as read, so quality.py's `storable` rule
# quarantines the row whatever those steps do. (Other columns keep their text for the checks: a
# NUL is never a valid id, code, date or age, and quality.py looks for unpaired surrogates itself.)
UNSTORABLE_COLUMN = "_unstorable_columns"
_BY_CELL = ("id", "text", "freetext")  # kinds of column cleaned cell by cell (mostly distinct values)
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


def _stripped(texts) -> list:
    """What _cell gives each of these str (stripped, None for blank), without a call per cell."""
    return [s or None for s in map(str.strip, texts)]


def _blank_to_none(series: pd.Series) -> pd.Series:
    if series.dtype == object and set(map(type, series.to_numpy())) == {str}:
        cells = _stripped(series.to_numpy())
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
            cells[:] = _stripped(flat)
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
        return _parsed_and_shown(values, date_format)
    codes, uniques = found
    parsed, shown = _parsed_and_shown(pd.Series(uniques, dtype=object), date_format)
    return (pd.Series(parsed._values.take(codes), index=values.index, name=values.name),
            pd.Series(shown.to_numpy(dtype=object).take(codes), index=values.index, name=values.name, dtype=object))


def _parsed_and_shown(written: pd.Series, date_format: str) -> tuple[pd.Series, pd.Series]:
    """(parse_dates of cells of text and None, the cells as checks see them: ISO text, None for
    blank, text that is not a date as written)."""
    parsed, bad = parse_dates(written.fillna(""), date_format)
    return parsed, to_iso(parsed).where(~bad, written)


def clean_table(
    mapped: pd.DataFrame,
    dataset: str,
    partnership: Partnership,
    cfg: Config,
    key: bytes,
    return_date: date,
) -> pd.DataFrame:
    columns = _by_distinct_values(mapped, dataset, partnership, cfg, key)
    if columns is None:
        out = _clean_by_steps(mapped, dataset, partnership, cfg, key)
    else:
        out = pd.DataFrame(columns, index=mapped.index, copy=False)
    out[RETURN_DATE_COLUMN] = pd.Timestamp(return_date)
    unstorable = _unstorable_columns(mapped, [c.name for c in DATASETS[dataset].columns
                                              if c.kind in ("text", "freetext") or c.name == "child_ref"])
    if unstorable is not None:
        out[UNSTORABLE_COLUMN] = unstorable
    return out


def _unstorable_columns(mapped: pd.DataFrame, names: list[str]) -> pd.Series | None:
    """UNSTORABLE_COLUMN for the mapped table, or None when no template cell holds a NUL (found by
    one memchr over each column's text joined)."""
    found: dict[int, list[tuple[str, str]]] = {}
    for col in names:
        if col not in mapped.columns or mapped[col].dtype != object:
            continue
        values = mapped[col].tolist()
        try:
            if "\x00" not in "".join(filter(None, values)):
                continue
        except TypeError:  # a cell that is not text: one at a time
            pass
        for i, v in enumerate(values):
            if isinstance(v, str) and "\x00" in v:
                found.setdefault(i, []).append((col, "NUL"))
    if not found:
        return None
    cells = np.full(len(mapped), None, dtype=object)
    for i, cols in found.items():
        cells[i] = tuple(cols)
    return pd.Series(cells, index=mapped.index, dtype=object)


def _clean_by_steps(mapped: pd.DataFrame, dataset: str, partnership: Partnership, cfg: Config,
                    key: bytes) -> pd.DataFrame:
    """clean_table step by step over the whole table, for any table (a cell of any type)."""
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
    return out


def _by_distinct_values(mapped: pd.DataFrame, dataset: str, partnership: Partnership, cfg: Config,
                        key: bytes) -> dict[str, pd.Series] | None:
    """The columns _clean_by_steps gives (name -> column, in its order), each step done on a
    column's distinct values (blanking, codes, ages, dates, hashing), each column factorised once
    and the dates of all date columns read together; None unless every template column is there
    and all text (as the readers give them). Each step works value by value, and pandas infers
    dtypes from the kinds of values, which the distinct values share with the cells. Columns
    of mostly distinct text (ids, free text) are only blanked, cell by cell."""
    ds = DATASETS[dataset]
    if not mapped.columns.is_unique or not set(ds.column_names) <= set(mapped.columns):
        return None
    found = {c.name: _blanked(mapped[c.name], distinct=c.kind not in _BY_CELL or c.name == "child_ref")
             for c in ds.columns}
    if any(f is None for f in found.values()):
        return None
    index = mapped.index
    out = {col: mapped[col] for col in mapped.columns}

    def column(col: str, values: np.ndarray) -> pd.Series:  # the distinct `values` of col -> its cells
        codes = found[col][0]
        taken = values if codes is None else values.take(codes)
        return pd.Series(taken, index=index, dtype=taken.dtype, copy=False)

    themes = cfg.theme_lookup()
    for c in ds.columns:
        blanked = found[c.name][1]
        if c.kind == "code":
            blanked = pd.Series(blanked, dtype=object).map(code_folder(c, cfg, themes))._values
        elif c.kind == "age":
            blanked = pd.Series(blanked, dtype=object).map(_whole_number)._values
        out[c.name] = column(c.name, blanked)
    dates = ds.of_kind("date")
    for col, (parsed, shown) in zip(dates, _distinct_dates([found[c][1] for c in dates], partnership.date_format)):
        out[col + RAW_SUFFIX] = out[col]
        out[col + DT_SUFFIX] = column(col, parsed)
        out[col] = column(col, shown)
    if "child_ref" in out:
        refs = pd.Series(found["child_ref"][1], dtype=object)
        out["child_key"] = column("child_ref", pseudonymise_series(refs, partnership.code, key).to_numpy())
        del out["child_ref"]
    return out


def _blanked(values: pd.Series, *, distinct: bool) -> tuple[np.ndarray | None, np.ndarray] | None:
    """For a column holding only text, its cells as _cell makes them (stripped, None for blank):
    `distinct`: (each cell's position among the distinct texts, those texts made so), else
    (None, the cells made so). None for any other column."""
    if values.dtype != object or not len(values):
        return None
    cells = values.to_numpy()
    if pd.api.types.infer_dtype(cells, skipna=False) != "string":  # str (or a subclass) in every cell
        return None
    codes, texts = pd.factorize(cells) if distinct else (None, cells)
    blanked = np.empty(len(texts), dtype=object)
    blanked[:] = _stripped(texts)
    return codes, blanked


def _distinct_dates(columns: list[np.ndarray], date_format: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """For the distinct values (text and None) of each date column, (parsed datetime64, shown as
    _dates shows them). When the format gives every date one unit, each value is read once per
    process (kept in _DATES_READ: every return repeats the same dates) and a column gets that
    unit if its own values include one read by the format, else unread_unit (as it would read
    apart); otherwise each column is read apart."""
    if not columns:
        return []
    if not reads_at_one_unit(date_format):
        return [_distinct_dates_apart(values, date_format) for values in columns]
    read = _read_dates(pd.unique(np.concatenate(columns)), date_format)
    out = []
    for values in columns:
        stamps, by_format, shown = zip(*map(read.__getitem__, values))
        unit = _READ_UNIT[date_format] if any(by_format) else unread_unit(date_format)
        out.append((np.array(stamps).astype(unit), np.array(shown, dtype=object)))
    return out


_DATES_KEPT = 100_000  # distinct date values remembered per process, over all formats
_DATES_READ: dict[str, dict] = {}  # format -> value -> (datetime64, read by the format?, shown)
_READ_UNIT: dict[str, np.dtype] = {}  # format -> the unit of the dates it reads


def _read_dates(values: np.ndarray, date_format: str) -> dict:
    """_DATES_READ[date_format], holding every one of the distinct `values` (text and None)."""
    known = _DATES_READ.setdefault(date_format, {})
    new = [v for v in values if v not in known]
    if not new:
        return known
    if sum(map(len, _DATES_READ.values())) + len(new) > _DATES_KEPT:
        _DATES_READ.clear()
        known = _DATES_READ[date_format] = {}
        new = list(values)
    written = pd.Series(new, dtype=object)
    parsed, bad, by_format = parse_dates_by_format(written.fillna(""), date_format)
    if by_format.any():
        _READ_UNIT[date_format] = parsed.dtype
    shown = to_iso(parsed).where(~bad, written).to_numpy(dtype=object)
    known.update(zip(new, zip(parsed.to_numpy(), by_format.to_numpy().tolist(), shown)))
    return known


def _distinct_dates_apart(values: np.ndarray, date_format: str) -> tuple[np.ndarray, np.ndarray]:
    parsed, shown = _parsed_and_shown(pd.Series(values, dtype=object), date_format)
    return parsed.to_numpy(), shown.to_numpy(dtype=object)


def business_columns(dataset: str) -> list[str]:
    """The columns stored in the warehouse case table for a dataset (child_ref -> child_key)."""
    return ["child_key" if c == "child_ref" else c for c in DATASETS[dataset].column_names]
