"""Screen free text at ingest, before it is validated, stored or logged.

People write findings, recommendations, methodologies and agency names, and people sometimes
paste in what should never be stored centrally: an NHS number, a postcode, an address, an email
address, a phone number, a child's name or date of birth. The warehouse keeps the minimum (UK
GDPR art. 5(1)(c)), so every text and free-text cell of a return goes through `screening.screen`
(the same rules as the bulletins) as soon as it is read: each hit is replaced by "[redacted]" and
counted by kind. Control characters, zero-width characters and bidirectional controls (which can
hide or reorder what a reader sees) are removed here too, before the text is stored, and counted
by kind (screening.INVISIBLE_KINDS). The counts (never the values) are written on the file's
record (`return_files.notes`), so they show in the partnership's data quality report, and summed
in the ingest summary (XCom, log).

What is screened: the template columns of kind `freetext` (finding, recommendation) and `text`
(ethnicity, author, methodology, owner_agency). Given names are looked for only in the fields of
screening.NAME_FIELDS (finding, recommendation, methodology): an LCSPR's author is named on
purpose (and checked against the approved list), and agency names are not children's. Ids,
codes, dates and ages are checked by the quality rules instead (a value that is not a code or a
date is quarantined, not stored as data). The bulletins screen again when they quote text
(summary.py): data loaded before this screen existed, or typed in a way it missed, is caught
there and listed for the business unit.

Each distinct text of a column is screened once (a return repeats its texts in every row and in
every cumulative return). In columns without names, a text with none of a digit, "@", a
non-ASCII or control character, or a spelled-out "dot"/"(at)" cannot hold a hit and is skipped.
"""
from __future__ import annotations

import re
from collections import Counter

import pandas as pd

from reviews.core.template import DATASETS
from reviews.privacy.screening import INVISIBLE_KINDS, INVISIBLE_LABELS, KIND_LABELS, KINDS, NAME_FIELDS, screen

SCREENED_KINDS = ("freetext", "text")
# What a text without names needs to hold a hit or an invisible character (see screening).
_WORTH_SCREENING = r"[0-9@]|[^\x09\x0a\x0d\x20-\x7e]|\bdot\b|[(\[{<]\s*at\s*[)\]}>]|\.(?:com|org|net|uk|ie|io|info)\b"
_WORTH = re.compile(_WORTH_SCREENING, re.I)


def screened_columns(dataset: str) -> list[str]:
    return [c.name for c in DATASETS[dataset].columns if c.kind in SCREENED_KINDS]


def redact_free_text(frame: pd.DataFrame, dataset: str) -> tuple[pd.DataFrame, Counter]:
    """(the frame with personal details in text columns replaced by [redacted] and invisible
    characters removed, hits and removed characters by kind)."""
    found: Counter = Counter()
    out = frame
    for col in screened_columns(dataset):
        if col not in frame.columns:
            continue
        names = col in NAME_FIELDS
        values = frame[col]
        hits = _screen_distinct(values, names)
        if hits is None:
            text = values.where(values.map(lambda v: isinstance(v, str)), None).astype("string")
            if names:
                candidates = text.notna() & (text.str.strip().str.len() > 0)
            else:
                candidates = text.str.contains(_WORTH_SCREENING, regex=True, na=False, flags=re.I)
            if not candidates.any():
                continue
            at = [(index, screen(value, names=names)) for index, value in values[candidates].items()]
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
            if result.changed:
                found.update(h.kind for h in result.hits)
                found.update(result.removed)
                replaced.append((index, result.text))
        for index, value in replaced:
            out.at[index, col] = value
    return out, found


def _screen_distinct(values: pd.Series, names: bool) -> tuple[bool, dict] | None:
    """(whether any cell is worth screening, distinct text -> its screen result where it changed
    the text), screening each distinct text once; None unless the column holds only text and None."""
    if values.dtype != object:
        return None
    cells = values.to_numpy()
    if not set(map(type, cells)) <= {str, type(None)}:
        return None
    texts = [v for v in dict.fromkeys(cells) if v is not None]
    worth = [v for v in texts if v.strip()] if names else [v for v in texts if _WORTH.search(v)]
    results = {v: screen(v, names=names) for v in worth}
    return bool(worth), {v: r for v, r in results.items() if r.changed}


def redaction_note(found: Counter) -> str:
    """A line for return_files.notes (and so the quality report): counts by kind, no values."""
    parts = []
    total = sum(found.get(k, 0) for k in KINDS)
    if total:
        kinds = ", ".join(f"{found[k]} {_plural(KIND_LABELS[k], found[k])}" for k in KINDS if found.get(k))
        parts.append(f"{total} personal detail{'' if total == 1 else 's'} redacted before loading ({kinds})")
    removed = sum(found.get(k, 0) for k in INVISIBLE_KINDS)
    if removed:
        kinds = ", ".join(f"{found[k]} {_plural(INVISIBLE_LABELS[k], found[k])}" for k in INVISIBLE_KINDS
                          if found.get(k))
        parts.append(f"{removed} invisible character{'' if removed == 1 else 's'} removed ({kinds})")
    if not parts:
        return "free text: nothing redacted"
    tail = "; please keep them out of returns" if total else ""
    return "free text: " + "; ".join(parts) + tail


def _plural(label: str, n: int) -> str:
    if n == 1:
        return label
    if label == "date of birth":
        return "dates of birth"
    return label + ("es" if label.endswith(("ss", "sh")) else "s")
