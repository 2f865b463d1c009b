"""Map a partnership's columns and words onto the regional template.

A header is recognised if it is the template's own name or the partnership's configured name
(ignoring case, spaces, hyphens and underscores). Anything else is dropped at ingest and only
its header is recorded: a child's name or address never gets further than this module.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from reviews.core.config import Config, Partnership
from reviews.returns.readers import EXTRA_COLUMN, ROW_COLUMN, column_index, word
from reviews.core.template import DATASETS, Column

_PLAIN = {str, type(None)}  # the cell types that are mapped once per distinct value


class MappingError(ValueError):
    """The columns cannot be mapped unambiguously."""


def map_columns(
    frame: pd.DataFrame, dataset: str, partnership: Partnership
) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Return (table with exactly the template columns, headers dropped, template columns absent)."""
    template = DATASETS[dataset].column_names
    lookup = {word(c): c for c in template}
    for theirs, ours in partnership.header_map(dataset).items():
        lookup.setdefault(word(theirs), ours)
    chosen: dict[str, str] = {}
    dropped: list[str] = []
    for header in frame.columns:
        if header in (ROW_COLUMN, EXTRA_COLUMN):
            continue
        target = lookup.get(word(header))
        if target is None:
            dropped.append(str(header))
        elif target in chosen.values():
            raise MappingError(f"two columns map to {target}: {header!r} and another")
        else:
            chosen[header] = target
    absent = [col for col in template if col not in chosen.values()]
    out = None if absent else _all_present(frame, chosen, template)
    if out is None:
        out = frame[list(chosen)].rename(columns=chosen)
        for col in absent:
            out[col] = ""
        out = out[template].copy()
        out[ROW_COLUMN] = frame[ROW_COLUMN].to_numpy()
        out[EXTRA_COLUMN] = frame[EXTRA_COLUMN].to_numpy() if EXTRA_COLUMN in frame else 0
    return out, dropped, absent


def _all_present(frame: pd.DataFrame, chosen: dict[str, str], template: list[str]) -> pd.DataFrame | None:
    """The table map_columns' general steps build, built in one go, when every template column
    is there and they and _extra_cells are text (object) columns, as the readers give them; None
    otherwise. The general steps are a dozen pandas calls, a fixed cost paid for every file."""
    if ROW_COLUMN not in frame.columns or EXTRA_COLUMN not in frame.columns:
        return None
    source = {ours: theirs for theirs, ours in chosen.items()}
    at = [frame.columns.get_loc(source[col]) for col in template] + [frame.columns.get_loc(EXTRA_COLUMN)]
    if not all(type(i) is int for i in at):
        return None  # a name the frame has twice
    dtypes = frame.dtypes.to_numpy()
    if not all(dtypes[i] == object for i in at):
        return None
    cells = frame.to_numpy(dtype=object)[:, at]
    out = pd.DataFrame(cells, index=frame.index, columns=column_index((*template, EXTRA_COLUMN)), dtype=object)
    out.insert(len(template), ROW_COLUMN, frame[ROW_COLUMN].to_numpy())
    return out


def normalise_codes(frame: pd.DataFrame, dataset: str, cfg: Config) -> pd.DataFrame:
    """Turn partnerships' words into template codes; unknown words are left for the checks to report."""
    out = frame.copy()
    themes = cfg.theme_lookup()
    for col in DATASETS[dataset].columns:
        if col.kind != "code":
            continue
        values = out[col.name].astype(object)
        out[col.name] = map_distinct(values, code_folder(col, cfg, themes))
    return out


def code_folder(col: Column, cfg: Config, themes: dict[str, str]):
    """The function normalise_codes maps a code column's cells with (`themes`: cfg.theme_lookup())."""
    if col.name == "theme":
        return _folder(themes)
    lookup = {word(c): c for c in col.codes}
    lookup.update(cfg.code_synonyms.get(col.name, {}))
    return _folder(lookup)


def distinct_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """(each cell's position among the distinct values, the distinct values in order of first
    appearance), or None unless the series holds only str and None.

    Only then is a value's meaning its equality: a float NaN is not equal to itself, and 1, 1.0
    and True are equal but not the same, so other series are mapped cell by cell.
    """
    if values.dtype != object:
        return None
    cells = values.to_numpy()
    if not set(map(type, cells)) <= _PLAIN:
        return None
    codes, uniques = pd.factorize(cells)  # None gets code -1: it becomes the last distinct value
    uniques = np.append(np.asarray(uniques, dtype=object), None)
    if codes.size and codes.min() < 0:
        codes = np.where(codes < 0, len(uniques) - 1, codes)
    else:
        uniques = uniques[:-1]
    return codes, uniques


def map_distinct(values: pd.Series, fn) -> pd.Series:
    """values.map(fn) (same values, same dtype), calling fn once per distinct value: a return
    repeats a handful of words and dates thousands of times. fn must depend on the value only.

    The distinct values are mapped by Series.map itself, so its dtype inference (which looks at
    which kinds of values come back, not how many) sees the same values as mapping every cell.
    """
    found = distinct_codes(values) if len(values) else None
    if found is None:
        return values.map(fn)
    codes, uniques = found
    done = pd.Series(uniques, dtype=object).map(fn)._values
    taken = done.take(codes)
    return pd.Series(taken, index=values.index, name=values.name, dtype=taken.dtype, copy=False)


def _folder(lookup: dict[str, str]):
    """v -> lookup.get(normalise_word(v), v) for non-blank text (anything else as it is), each
    distinct text folded once: a return repeats a handful of words thousands of times."""
    done: dict[str, str] = {}

    def fold(v):
        if isinstance(v, str) and v.strip():
            try:
                return done[v]
            except KeyError:
                return done.setdefault(v, lookup.get(word(v), v))
        return v

    return fold
