"""Read returns as partnerships really send them into tables of text, one per dataset.

Every cell comes back as text ("" for blank) with its spreadsheet row number, so nothing is
lost or silently converted before the quality checks see it. Handles UTF-8 (with or without a
byte-order mark), UTF-16 with a byte-order mark (Excel's "Unicode text") and Windows-1252, comma
or semicolon separators, title lines above the header, trailing empty rows and columns, and
workbooks with one sheet per dataset.

Nothing in a file is trusted (docs/security.md). Whatever a file holds, reading it ends in a
table or in a `ReadError` saying why in plain words (never quoting the file): a malformed CSV
names its line; a table over `limits.max_rows` rows is refused; a workbook is checked as a zip
before openpyxl opens it (declared unpacked size and compression ratio: a zip bomb is refused
unopened); formula cells are read as their formula text, never evaluated and never replaced by
a cached result; any error from openpyxl or its XML parser while reading a sheet is a ReadError.
"""
from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import lru_cache
from itertools import compress, islice, repeat
from pathlib import Path

import numpy as np
import pandas as pd

from reviews.core.config import Limits, normalise_word
from reviews.core.template import DATASETS

ROW_COLUMN = "_row"
EXTRA_COLUMN = "_extra_cells"  # how many non-blank cells a row has beyond the header
HEADER_SEARCH_ROWS = 15
MAX_ZIP_MEMBERS = 10_000  # a workbook has tens of parts
MAX_COLUMNS = 500  # a return has under twenty; cells beyond this column are not read
_SMALL_PART = 1024 * 1024  # parts smaller than this unpacked are not judged by their ratio
_SHORT = 200  # headers are short: only names up to this long are remembered by word()


@lru_cache(maxsize=4096)
def _word(text: str) -> str:
    return normalise_word(text)


def word(text) -> str:
    """normalise_word(text), remembered for short text: every file asks for the same headers
    (its header search and the mapping fold some two hundred cells per file)."""
    if type(text) is str and len(text) <= _SHORT:
        return _word(text)
    return normalise_word(text)


@lru_cache(maxsize=256)
def column_index(names: tuple[str, ...]) -> pd.Index:
    """pd.Index(list(names)), as DataFrame(columns=list(names)) makes it, made once per set of
    names: every file of a dataset has the same, and making it is half the cost of a small frame."""
    return pd.Index(list(names))


class ReadError(ValueError):
    """The file cannot be read as a return at all; the message says why, in plain words."""


@dataclass
class ReadResult:
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # dataset -> text table
    notes: list[str] = field(default_factory=list)  # things worth telling the partnership


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with a byte-order mark
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise ReadError("the file says it is UTF-16 text but is not (save it as CSV UTF-8)") from None
    if b"\x00" in data[:65536]:
        raise ReadError("the file contains binary data and is not a CSV text file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _sniff_delimiter(text: str) -> str:
    """The separator that splits the first lines most consistently (csv.Sniffer guesses badly)."""
    lines = [ln for ln in _first_lines(text, HEADER_SEARCH_ROWS + 20) if ln.strip()]
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


def _first_lines(text: str, n: int) -> list[str]:
    """text.splitlines()[:n], splitting only as much of the text as it takes."""
    size = 4096
    while size < len(text):
        lines = text[:size].splitlines()
        if len(lines) > n:  # the first n lines end before the cut, so they are whole
            return lines[:n]
        size *= 4
    return text.splitlines()[:n]


def _cell_text(value) -> str:
    if value is None:
        return ""
    if hasattr(value, "text") and type(value).__name__ in ("ArrayFormula", "DataTableFormula"):
        return str(value.text or "").strip()  # a formula's text, as typed: never evaluated
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
        hits = sum(map(known.__contains__, map(word, row)))
        if hits > best_hits:
            best, best_hits = i, hits
    if best is None:
        raise ReadError("no header row with the template's or the partnership's column names was found")
    return best


def _to_frame(rows: list[list[str]], known: set[str], first_row_number: int = 1) -> pd.DataFrame:
    h = _find_header(rows, known)
    # A header may not take the name of a column the readers add themselves.
    header = [f"{c.strip()} (column {i + 1})" if c.strip() in (ROW_COLUMN, EXTRA_COLUMN) else c.strip()
              for i, c in enumerate(rows[h])]
    while header and header[-1] == "":
        header.pop()
    width = len(header)
    data = rows[h + 1 :]
    # Blank lines (including trailing ones) are skipped: a row is blank when its cells joined are.
    filled = list(map(str.strip, map("".join, data)))
    numbers = [n for n, f in enumerate(filled, start=h + 1 + first_row_number) if f]
    if len(numbers) != len(data):
        data = list(compress(data, filled))
    if not data:
        frame = pd.DataFrame([], columns=[n for n in header if n] + [EXTRA_COLUMN], dtype=object)
        frame[ROW_COLUMN] = numbers
        return frame
    columns, extra = _columns(data, width)
    # A column with neither a header nor a value (an empty spacer column) is not a column at all.
    keep = [i for i, n in enumerate(header) if n or any(columns[i])]
    names = [header[i] if header[i] else f"column_{i + 1}" for i in keep]
    cells = np.empty((len(data), len(keep) + 1), dtype=object)
    for j, i in enumerate(keep):
        cells[:, j] = columns[i]
    cells[:, -1] = extra
    frame = pd.DataFrame(cells, columns=column_index((*names, EXTRA_COLUMN)), dtype=object)
    frame[ROW_COLUMN] = np.array(numbers, dtype=np.int64)  # what pandas makes of the list, made directly
    return frame


def _columns(data: list[list[str]], width: int) -> tuple[list[list[str]], list[int]]:
    """(the first `width` columns of the rows, cells stripped, a short row padded with "";
    per row, how many non-blank cells it has beyond `width`: a ragged row is reported, not cut).

    Built a column at a time (zip and map run in C): row-by-row Python cost most of reading.
    """
    lengths = set(map(len, data))
    longest = max(max(lengths), width)
    if len(lengths) > 1 or longest not in lengths:
        data = [r + [""] * (longest - len(r)) if len(r) < longest else r for r in data]
    columns = [list(map(str.strip, c)) for c in zip(*data)]
    if longest > width:
        extra = [sum(flags) for flags in zip(*(map(bool, c) for c in columns[width:]))]
    else:
        extra = [0] * len(data)
    return columns[:width], extra


def known_headers(dataset: str, their_headers: dict[str, str]) -> set[str]:
    return {word(c) for c in DATASETS[dataset].column_names} | {word(h) for h in their_headers}


def _within_limit(table: pd.DataFrame, limits: Limits) -> pd.DataFrame:
    """The table, unless it has more data rows than `limits.max_rows` (reading stops early too)."""
    if len(table) > limits.max_rows:
        raise _too_many_rows(limits)
    return table


def _too_many_rows(limits: Limits) -> ReadError:
    return ReadError(f"the table has more than {limits.max_rows:,} rows (config limits.max_rows)")


def read_csv_return(path: Path, dataset: str, their_headers: dict[str, str], limits: Limits | None = None) -> ReadResult:
    limits = limits or Limits()
    size = path.stat().st_size
    if size > limits.max_file_bytes:  # landing refuses these first; a direct caller is held here too
        raise ReadError(f"the file is {size:,} bytes, over the size limit (config limits.max_file_bytes)")
    text = _decode(path.read_bytes())
    limit = limits.max_rows + HEADER_SEARCH_ROWS
    rows = _csv_rows(text, _sniff_delimiter(text), limit + 1)  # one past the limit: refused below
    if len(rows) > limit:
        raise _too_many_rows(limits)
    result = ReadResult()
    result.tables[dataset] = _within_limit(_to_frame(rows, known_headers(dataset, their_headers)), limits)
    return result


def _csv_rows(text: str, delimiter: str, most: int) -> list[list[str]]:
    """The first `most` records of the CSV text, as a strict csv.reader reads them.

    A line with no quote character, no NUL and no longer than csv's field limit is a record of
    its own, its cells split at the delimiter: csv.reader gives exactly that, and splitting costs
    a third of it. Any other line is read by a csv.reader, which reads on as far as its quotes
    take it (a quoted cell may hold line breaks); each record starts afresh, so it reads it as
    one reader over the whole text would.
    """
    lines = io.StringIO(text, newline="").readlines()  # lines end at \r, \n or \r\n, as csv's do
    longest = csv.field_size_limit()
    if '"' in text or "\x00" in text or max(map(len, lines), default=0) > longest:
        special = [i for i, line in enumerate(lines) if '"' in line or "\x00" in line or len(line) > longest]
    else:
        special = []
    rows: list[list[str]] = []
    rest = iter(lines)
    at = 0  # lines read so far
    for i in special:
        if i < at:
            continue  # read with an earlier record
        rows.extend(_split(islice(rest, min(i - at, most - len(rows))), delimiter))
        if len(rows) == most:
            return rows
        reader = csv.reader(rest, delimiter=delimiter, strict=True)
        try:
            rows.append(next(reader))
        except csv.Error as exc:
            # csv's messages name the problem, never the data ("unexpected end of data", ...).
            raise ReadError(f"the CSV is malformed at line {i + reader.line_num} ({exc}): check for an "
                            "unclosed quote (\") or a line break inside a cell") from None
        at = i + reader.line_num
    rows.extend(_split(islice(rest, most - len(rows)), delimiter))
    return rows


def _split(lines, delimiter: str) -> list[list[str]]:
    """csv.reader's records of lines with no quote: a blank line is [], others split at the delimiter."""
    return [cells.split(delimiter) if cells else [] for cells in map(str.rstrip, lines, repeat("\r\n"))]


def _sheet_rows(ws, limits: Limits) -> list[list[str]]:
    """The sheet's cells as text, refusing a sheet with more than `limits.max_rows` rows of data.

    Rows are counted, not taken from the sheet's declared size: Excel often declares a million
    rows for a sheet formatted down to the bottom, and openpyxl pads to the declared size with
    empty rows. Empty rows keep their place (row numbers are as the spreadsheet shows them), but
    trailing ones are dropped, and only the first MAX_COLUMNS columns are read.
    """
    limit = limits.max_rows + HEADER_SEARCH_ROWS
    rows: list[list[str]] = []
    blank_run = 0
    filled = 0
    declared = ws.max_column  # openpyxl pads every row to the width asked for: ask no wider than declared
    width = min(declared, MAX_COLUMNS) if isinstance(declared, int) and declared > 0 else None
    for row in ws.iter_rows(values_only=True, max_col=width):
        if row.count(None) == len(row):
            blank_run += 1
            continue
        if blank_run:
            rows.extend([] for _ in range(blank_run))
            blank_run = 0
        rows.append([_cell_text(v) for v in row[:MAX_COLUMNS]])
        filled += 1
        if filled > limit:
            raise _too_many_rows(limits)
    return rows


def check_workbook_zip(path: Path, limits: Limits | None = None) -> None:
    """Refuse a workbook before anything unpacks it: not a zip, too many parts, or a zip bomb.

    The sizes are those the zip declares; Python's zipfile (which openpyxl uses) never unpacks a
    part beyond its declared size, so the check bounds what reading can cost.
    """
    limits = limits or Limits()
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except Exception as exc:  # noqa: BLE001 - BadZipFile, NotImplementedError (zip version), EOFError...
        raise ReadError(f"the workbook cannot be opened ({type(exc).__name__}): it is not an Excel .xlsx file") from None
    if len(infos) > MAX_ZIP_MEMBERS:
        raise ReadError(f"the workbook has {len(infos):,} parts, more than a workbook can have ({MAX_ZIP_MEMBERS:,})")
    total = sum(i.file_size for i in infos)
    if total > limits.max_xlsx_uncompressed_bytes:
        raise ReadError(
            f"the workbook would unpack to {total:,} bytes, over the limit of {limits.max_xlsx_uncompressed_bytes:,} "
            "(config limits.max_xlsx_uncompressed_bytes): it was not opened")
    for i in infos:
        if i.file_size >= _SMALL_PART and i.file_size > limits.max_xlsx_compression_ratio * max(i.compress_size, 1):
            raise ReadError(
                f"a part of the workbook is compressed {i.file_size // max(i.compress_size, 1):,} times, more than "
                f"{limits.max_xlsx_compression_ratio} (config limits.max_xlsx_compression_ratio): it looks like a zip "
                "bomb and was not opened")


def read_xlsx_return(path: Path, header_maps: dict[str, dict[str, str]], dataset: str | None = None,
                     limits: Limits | None = None) -> ReadResult:
    """A workbook with one sheet per dataset (sheets named after them), or, when `dataset` is given
    (a file named {dataset}_YYYY-MM-DD.xlsx), a workbook holding that dataset: the sheet named after
    it if there is one, otherwise the first sheet with a recognisable header row."""
    from openpyxl import load_workbook  # only workbooks need it

    limits = limits or Limits()
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        raise ReadError(f"the file is {size:,} bytes, over the size limit (config limits.max_file_bytes)")
    check_workbook_zip(path, limits)
    try:
        # data_only=False: a formula cell is read as its formula text ("=TODAY()"), never as a
        # result (openpyxl does not evaluate, and a cached result may be stale or forged).
        wb = load_workbook(path, read_only=True, data_only=False)
    except Exception as exc:  # openpyxl raises many kinds for a broken zip/xml
        raise ReadError(f"the workbook cannot be opened ({type(exc).__name__})") from None
    try:
        return _read_workbook(wb, header_maps, dataset, limits)
    except ReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - sheets are parsed lazily: a broken part fails here
        raise ReadError(f"the workbook cannot be read ({type(exc).__name__})") from None
    finally:
        wb.close()


def _read_workbook(wb, header_maps: dict[str, dict[str, str]], dataset: str | None, limits: Limits) -> ReadResult:
    result = ReadResult()
    if dataset is not None:
        return _read_single_dataset_workbook(wb, dataset, header_maps.get(dataset, {}), result, limits)
    by_name = {normalise_word(ws.title): ws for ws in wb.worksheets}
    for dataset in DATASETS:
        ws = by_name.get(normalise_word(dataset))
        if ws is None:
            continue
        table = _to_frame(_sheet_rows(ws, limits), known_headers(dataset, header_maps.get(dataset, {})))
        result.tables[dataset] = _within_limit(table, limits)
    ignored = sorted(set(by_name) - {normalise_word(d) for d in DATASETS})
    if ignored:
        result.notes.append(f"sheets not in the template were ignored: {', '.join(ignored)}")
    if not result.tables:
        raise ReadError("the workbook has no sheet named after a dataset (" + ", ".join(DATASETS) + ")")
    return result


def _read_single_dataset_workbook(wb, dataset: str, their_headers: dict[str, str], result: ReadResult,
                                  limits: Limits) -> ReadResult:
    known = known_headers(dataset, their_headers)
    sheets = list(wb.worksheets)
    named = [ws for ws in sheets if normalise_word(ws.title) == normalise_word(dataset)]
    for ws in named + [ws for ws in sheets if ws not in named]:
        rows = _sheet_rows(ws, limits)  # over the row limit: the workbook is refused, not skipped
        try:
            table = _to_frame(rows, known)
        except ReadError:
            continue
        result.tables[dataset] = _within_limit(table, limits)
        others = sorted(w.title for w in sheets if w is not ws)
        if others:
            result.notes.append(f"read the {dataset} from sheet {ws.title!r}; other sheets were ignored: {', '.join(others)}")
        return result
    raise ReadError(f"no sheet of the workbook has a header row with the {dataset} column names")
