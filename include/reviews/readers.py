"""Read returns as partnerships really send them into tables of text, one per dataset.

Every cell comes back as text ("" for blank) with its spreadsheet row number, so nothing is
lost or silently converted before the quality checks see it. Handles UTF-8 (with or without a
byte-order mark) and Windows-1252, comma or semicolon separators, title lines above the header,
trailing empty rows and columns, and workbooks with one sheet per dataset.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path

import pandas as pd

from reviews.config import normalise_word
from reviews.template import DATASETS

ROW_COLUMN = "_row"
EXTRA_COLUMN = "_extra_cells"  # how many non-blank cells a row has beyond the header
HEADER_SEARCH_ROWS = 15


class ReadError(ValueError):
    """The file cannot be read as a return at all; the message says why, in plain words."""


@dataclass
class ReadResult:
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # dataset -> text table
    notes: list[str] = field(default_factory=list)  # things worth telling the partnership


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _sniff_delimiter(text: str) -> str:
    """The separator that splits the first lines most consistently (csv.Sniffer guesses badly)."""
    lines = [ln for ln in text.splitlines()[: HEADER_SEARCH_ROWS + 20] if ln.strip()]
    best, best_score = ",", 0
    for delim in (",", ";", "\t", "|"):
        counts = [ln.count(delim) for ln in lines]
        nonzero = [c for c in counts if c]
        if not nonzero:
            continue
        mode = max(set(nonzero), key=nonzero.count)
        score = sum(1 for c in counts if c == mode) * mode
        if score > best_score:
            best, best_score = delim, score
    return best


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _find_header(rows: list[list[str]], known: set[str]) -> int:
    """Index of the row that looks most like the header (title lines may come first)."""
    best, best_hits = None, 1
    for i, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        hits = sum(1 for cell in row if normalise_word(cell) in known)
        if hits > best_hits:
            best, best_hits = i, hits
    if best is None:
        raise ReadError("no header row with the template's or the partnership's column names was found")
    return best


def _to_frame(rows: list[list[str]], known: set[str], first_row_number: int = 1) -> pd.DataFrame:
    h = _find_header(rows, known)
    header = [c.strip() for c in rows[h]]
    while header and header[-1] == "":
        header.pop()
    width = len(header)
    records, numbers = [], []
    for offset, row in enumerate(rows[h + 1 :], start=h + 1):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue  # blank lines, including trailing ones
        extra = sum(1 for c in cells[width:] if c)  # a ragged row: reported, not silently cut
        cells = (cells + [""] * width)[:width]
        records.append(cells + [extra])
        numbers.append(offset + first_row_number)
    names = [n if n else f"column_{i + 1}" for i, n in enumerate(header)]
    frame = pd.DataFrame(records, columns=names + [EXTRA_COLUMN], dtype=object)
    frame[ROW_COLUMN] = numbers
    return frame


def known_headers(dataset: str, their_headers: dict[str, str]) -> set[str]:
    return {normalise_word(c) for c in DATASETS[dataset].column_names} | {normalise_word(h) for h in their_headers}


def read_csv_return(path: Path, dataset: str, their_headers: dict[str, str]) -> ReadResult:
    data = path.read_bytes()
    if b"\x00" in data[:65536]:
        raise ReadError("the file contains binary data and is not a CSV text file")
    text = _decode(data)
    delimiter = _sniff_delimiter(text)
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True))
    except csv.Error as exc:
        raise ReadError(f"the CSV is malformed ({exc})") from None
    result = ReadResult()
    result.tables[dataset] = _to_frame(rows, known_headers(dataset, their_headers))
    return result


def read_xlsx_return(path: Path, header_maps: dict[str, dict[str, str]]) -> ReadResult:
    from openpyxl import load_workbook  # only workbooks need it

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a broken zip/xml
        raise ReadError(f"the workbook cannot be opened ({type(exc).__name__})") from None
    result = ReadResult()
    try:
        by_name = {normalise_word(ws.title): ws for ws in wb.worksheets}
        for dataset in DATASETS:
            ws = by_name.get(normalise_word(dataset))
            if ws is None:
                continue
            rows = [[_cell_text(v) for v in row] for row in ws.iter_rows(values_only=True)]
            result.tables[dataset] = _to_frame(rows, known_headers(dataset, header_maps.get(dataset, {})))
        ignored = sorted(set(by_name) - {normalise_word(d) for d in DATASETS})
        if ignored:
            result.notes.append(f"sheets not in the template were ignored: {', '.join(ignored)}")
    finally:
        wb.close()
    if not result.tables:
        raise ReadError("the workbook has no sheet named after a dataset (" + ", ".join(DATASETS) + ")")
    return result
