"""Screen free text at ingest, before it is validated, stored or logged.

People write findings, recommendations, methodologies and agency names, and people sometimes
paste in what should never be stored centrally: an NHS number, a postcode, an email address, a
phone number, a child's date of birth. The warehouse keeps the minimum (UK GDPR art. 5(1)(c)), so
every text and free-text cell of a return goes through `screening.screen` (the same rules as the
bulletins) as soon as it is read: each hit is replaced by "[redacted]" and counted by kind. The
counts (never the values) are written on the file's record (`return_files.notes`), so they show
in the partnership's data quality report, and summed in the ingest summary (XCom, log).

What is screened: the template columns of kind `freetext` (finding, recommendation) and `text`
(ethnicity, author, methodology, owner_agency). Ids, codes, dates and ages are checked by the
quality rules instead (a value that is not a code or a date is quarantined, not stored as data).
The bulletins screen again when they quote text (summary.py): data loaded before this screen
existed, or typed in a way it missed, is caught there and listed for the business unit.
"""
from __future__ import annotations

import re
from collections import Counter

import pandas as pd

from reviews.privacy.screening import KIND_LABELS, KINDS, screen
from reviews.core.template import DATASETS

SCREENED_KINDS = ("freetext", "text")
# Every kind of hit has a digit (NHS number, postcode, phone, dates) or an '@' (email):
# cells without either are not worth the regular expressions.
_WORTH_SCREENING = r"[0-9@]"
_WORTH = re.compile(_WORTH_SCREENING)


def screened_columns(dataset: str) -> list[str]:
    return [c.name for c in DATASETS[dataset].columns if c.kind in SCREENED_KINDS]


def redact_free_text(frame: pd.DataFrame, dataset: str) -> tuple[pd.DataFrame, Counter]:
    """(the frame with personal details in text columns replaced by [redacted], hits by kind)."""
    found: Counter = Counter()
    out = frame
    for col in screened_columns(dataset):
        if col not in frame.columns:
            continue
        values = frame[col]
        hits = _screen_distinct(values)
        if hits is None:
            text = values.where(values.map(lambda v: isinstance(v, str)), None).astype("string")
            candidates = text.str.contains(_WORTH_SCREENING, regex=True, na=False)
            if not candidates.any():
                continue
            at = [(index, screen(value)) for index, value in values[candidates].items()]
        else:
            candidates, screened = hits
            if not candidates:
                continue
            at = [(index, screened[value]) for index, value in zip(values.index, values.to_numpy())
                  if value in screened] if screened else []
        if out is frame:
            out = frame.copy()
        replaced = []
        for index, result in at:
            if result.hits:
                found.update(h.kind for h in result.hits)
                replaced.append((index, result.text))
        for index, value in replaced:
            out.at[index, col] = value
    return out, found


def _screen_distinct(values: pd.Series) -> tuple[bool, dict] | None:
    """(whether any cell is worth screening, distinct text -> its screen result where it has
    hits), screening each distinct text once (a return repeats its texts in every row and every
    cumulative return); None unless the column holds only text and None."""
    if values.dtype != object:
        return None
    cells = values.to_numpy()
    if not set(map(type, cells)) <= {str, type(None)}:
        return None
    texts = [v for v in dict.fromkeys(cells) if v is not None]
    worth = [v for v in texts if _WORTH.search(v)]
    results = {v: screen(v) for v in worth}
    return bool(worth), {v: r for v, r in results.items() if r.hits}


def redaction_note(found: Counter) -> str:
    """A line for return_files.notes (and so the quality report): counts by kind, no values."""
    total = sum(found.values())
    kinds = ", ".join(f"{found[k]} {_plural(KIND_LABELS[k], found[k])}" for k in KINDS if found.get(k))
    return (f"free text: {total} personal detail{'' if total == 1 else 's'} redacted before loading "
            f"({kinds}); please keep them out of returns")


def _plural(label: str, n: int) -> str:
    if n == 1:
        return label
    if label == "date of birth":
        return "dates of birth"
    return label + ("es" if label.endswith("ss") else "s")
