"""Map a partnership's columns and words onto the regional template.

A header is recognised if it is the template's own name or the partnership's configured name
(ignoring case, spaces, hyphens and underscores). Anything else is dropped at ingest and only
its header is recorded: a child's name or address never gets further than this module.
"""
from __future__ import annotations

import pandas as pd

from reviews.config import Config, Partnership, normalise_word
from reviews.readers import EXTRA_COLUMN, ROW_COLUMN
from reviews.template import DATASETS


class MappingError(ValueError):
    """The columns cannot be mapped unambiguously."""


def map_columns(
    frame: pd.DataFrame, dataset: str, partnership: Partnership
) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Return (table with exactly the template columns, headers dropped, template columns absent)."""
    template = DATASETS[dataset].column_names
    lookup = {normalise_word(c): c for c in template}
    for theirs, ours in partnership.header_map(dataset).items():
        lookup.setdefault(normalise_word(theirs), ours)
    chosen: dict[str, str] = {}
    dropped: list[str] = []
    for header in frame.columns:
        if header in (ROW_COLUMN, EXTRA_COLUMN):
            continue
        target = lookup.get(normalise_word(header))
        if target is None:
            dropped.append(str(header))
        elif target in chosen.values():
            raise MappingError(f"two columns map to {target}: {header!r} and another")
        else:
            chosen[header] = target
    out = frame[list(chosen)].rename(columns=chosen)
    absent = [col for col in template if col not in out.columns]
    for col in absent:
        out[col] = ""
    out = out[template].copy()
    out[ROW_COLUMN] = frame[ROW_COLUMN].to_numpy()
    out[EXTRA_COLUMN] = frame[EXTRA_COLUMN].to_numpy() if EXTRA_COLUMN in frame else 0
    return out, dropped, absent


def normalise_codes(frame: pd.DataFrame, dataset: str, cfg: Config) -> pd.DataFrame:
    """Turn partnerships' words into template codes; unknown words are left for the checks to report."""
    out = frame.copy()
    themes = cfg.theme_lookup()
    for col in DATASETS[dataset].columns:
        if col.kind != "code":
            continue
        if col.name == "theme":
            lookup = themes
        else:
            lookup = {normalise_word(c): c for c in col.codes}
            lookup.update(cfg.code_synonyms.get(col.name, {}))
        values = out[col.name].astype(object)
        out[col.name] = values.map(_folder(lookup))
    return out


def _folder(lookup: dict[str, str]):
    """v -> lookup.get(normalise_word(v), v) for non-blank text (anything else as it is), each
    distinct text folded once: a return repeats a handful of words thousands of times."""
    done: dict[str, str] = {}

    def fold(v):
        if isinstance(v, str) and v.strip():
            try:
                return done[v]
            except KeyError:
                return done.setdefault(v, lookup.get(normalise_word(v), v))
        return v

    return fold
