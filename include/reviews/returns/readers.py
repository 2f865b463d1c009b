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

A CSV is read a chunk at a time, never whole: a line longer than `limits.max_line_bytes` (and a
quoted record spanning lines longer than that in all) is refused as soon as it is met, only the
first MAX_COLUMNS cells of a line are kept (as for workbooks; content beyond them is one marker
cell, so the row is still reported as ragged), and a table (a CSV's or a sheet's) of more than
MAX_CELLS cells is refused: what reading costs is bounded by the limits, not by the file
(docs/security.md).
Text is read as UTF-8, and a line with bytes that are not UTF-8 as Windows-1252 from the first
such byte: a file that mixes the two line by line (a UTF-8 file with rows pasted from a Windows
program) is read right, and the file's notes say so; bytes no encoding defines become U+FFFD and
are counted in a note.
"""
from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime, time
from bisect import bisect_left
from functools import lru_cache
from itertools import chain, compress, repeat
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
MAX_CELLS = 3_000_000  # cells (rows x columns, blanks included) a table may have: 100,000 rows of 30
BEYOND = f"(cells beyond column {MAX_COLUMNS})"  # stands for a CSV line's cells past MAX_COLUMNS
_CHUNK = 1 << 20  # bytes of a CSV decoded at a time
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


@dataclass
class _Decoded:
    """What decoding a CSV met: characters read as UTF-8 beyond ASCII, bytes read as
    Windows-1252 because they were not UTF-8, bytes neither defines (now U+FFFD)."""

    non_ascii: int = 0  # characters beyond ASCII decoded, however
    cp1252: int = 0
    undefined: int = 0

    @property
    def utf8(self) -> int:
        return self.non_ascii - self.cp1252 - self.undefined

    def notes(self) -> list[str]:
        out = []
        if self.cp1252 and self.utf8 > 0:
            out.append(f"the file mixes UTF-8 with another encoding: {self.cp1252:,} character(s) that were not "
                       "UTF-8 were read as Windows-1252; check the file's encoding (save it as CSV UTF-8)")
        if self.undefined:
            out.append(f"{self.undefined:,} character(s) could not be read in any encoding and are shown as "
                       "\ufffd; check the file's encoding (save it as CSV UTF-8)")
        return out


_DECODED: ContextVar[_Decoded | None] = ContextVar("reviews_csv_decoded", default=None)
_FALLBACK = "reviews-utf8-else-cp1252"


_LINE_END = re.compile(rb"[\r\n]")


def _cp1252_instead(exc: UnicodeError):
    """Codec error handler: from a byte that is not UTF-8 to the end of its line, the text is read
    as Windows-1252 (the other encoding a return comes in), a byte it does not define as U+FFFD;
    counted in _DECODED. A line at a time, not a byte at a time: a Windows-1252 file of 100 MB
    would otherwise call this a hundred million times; a line is in one encoding or the other."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    data = exc.object
    eol = _LINE_END.search(data, exc.start)
    end = max(exc.end, eol.start() if eol else len(data))
    text = bytes(data[exc.start:end]).decode("cp1252", errors="replace")
    counts = _DECODED.get()
    if counts is not None and not text.isascii():
        undefined = text.count("\ufffd")
        counts.undefined += undefined
        counts.cp1252 += len(text) - len(text.encode("ascii", "ignore")) - undefined
    return text, end


codecs.register_error(_FALLBACK, _cp1252_instead)


def _text_chunks(fh, max_line: int | None, counts: _Decoded):
    """The file's lines (as io.StringIO(text, newline="").readlines() splits text: at \r, \n or
    \r\n, each with its ending), in lists, a chunk of the file at a time; a line longer than
    `max_line` characters is refused when met, before the rest of the file is read.

    UTF-8 with or without a byte-order mark, and Windows-1252, line by line (_cp1252_instead);
    UTF-16 with a byte-order mark. Without a byte-order mark, a NUL in the first 64 KiB is binary data.
    """
    head = fh.read(max(_CHUNK, 65536))
    if head.startswith(b"\xef\xbb\xbf"):
        codec, errors, data = "utf-8", _FALLBACK, head[3:]
    elif head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with a byte-order mark
        codec, errors, data = "utf-16", "strict", head
    elif b"\x00" in head[:65536]:
        raise ReadError("the file contains binary data and is not a CSV text file")
    else:
        codec, errors, data = "utf-8", _FALLBACK, head
    decoder = codecs.getincrementaldecoder(codec)(errors=errors)
    carry = ""  # the start of a line the next chunk ends
    lines_before = 0
    while True:
        final = not data
        token = _DECODED.set(counts)  # set only while decoding: this generator yields to others
        try:
            text = decoder.decode(data, final)
        except UnicodeDecodeError:
            raise ReadError("the file says it is UTF-16 text but is not (save it as CSV UTF-8)") from None
        finally:
            _DECODED.reset(token)
        if codec == "utf-8" and not text.isascii():
            counts.non_ascii += len(text) - len(text.encode("ascii", "ignore"))
        if carry:
            text = carry + text
        lines = io.StringIO(text, newline="").readlines()
        # The last line is whole only at the end of the file, or when it ends with \n (a \r
        # may be the first half of a \r\n split between chunks).
        carry = lines.pop() if lines and not final and not lines[-1].endswith("\n") else ""
        if max_line is not None:
            if lines and max(map(len, lines)) > max_line:
                at = next(i for i, line in enumerate(lines) if len(line) > max_line)
                raise _line_too_long(lines_before + at + 1, max_line)
            if len(carry) > max_line:
                raise _line_too_long(lines_before + len(lines) + 1, max_line)
        if lines:
            yield lines
            lines_before += len(lines)
        if final:
            return
        data = fh.read(_CHUNK)


def _line_too_long(line: int, limit: int) -> ReadError:
    return ReadError(f"line {line:,} is longer than the limit of {limit:,} characters (config limits.max_line_bytes): "
                     "the file was not read further")


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


def _to_frame(rows: list[list[str]], known: set[str], first_row_number: int = 1, *,
              consume: bool = False) -> pd.DataFrame:
    """The table under the header row (found among the first rows). `consume`: the rows after the
    header are taken out of `rows` and freed as the columns are built (a large CSV's cells are
    then never held twice over: as read and stripped)."""
    h = _find_header(rows, known)
    # A header may not take the name of a column the readers add themselves.
    header = [f"{c.strip()} (column {i + 1})" if c.strip() in (ROW_COLUMN, EXTRA_COLUMN) else c.strip()
              for i, c in enumerate(rows[h])]
    while header and header[-1] == "":
        header.pop()
    width = len(header)
    data = rows[h + 1 :]
    if consume:
        del rows[h + 1 :]
    # Blank lines (including trailing ones) are skipped: a row is blank when its cells joined are.
    filled = list(map(str.strip, map("".join, data)))
    numbers = [n for n, f in enumerate(filled, start=h + 1 + first_row_number) if f]
    if len(numbers) != len(data):
        data = list(compress(data, filled))
    del filled
    if not data:
        frame = pd.DataFrame([], columns=[n for n in header if n] + [EXTRA_COLUMN], dtype=object)
        frame[ROW_COLUMN] = numbers
        return frame
    columns, extra = _columns(data, width, consume=consume)
    # A column with neither a header nor a value (an empty spacer column) is not a column at all.
    keep = [i for i, n in enumerate(header) if n or any(columns[i])]
    names = [header[i] if header[i] else f"column_{i + 1}" for i in keep]
    cells = np.empty((len(numbers), len(keep) + 1), dtype=object)
    for j, i in enumerate(keep):
        cells[:, j] = columns[i]
    cells[:, -1] = extra
    frame = pd.DataFrame(cells, columns=column_index((*names, EXTRA_COLUMN)), dtype=object)
    frame[ROW_COLUMN] = np.array(numbers, dtype=np.int64)  # what pandas makes of the list, made directly
    return frame


def _columns(data: list[list[str]], width: int, *, consume: bool = False) -> tuple[list[list[str]], list[int]]:
    """(the first `width` columns of the rows, cells stripped, a short row padded with "";
    per row, how many non-blank cells it has beyond `width`: a ragged row is reported, not cut).

    Built a column at a time (zip and map run in C): row-by-row Python cost most of reading.
    `consume`: `data` is emptied, and each column's cells as read are freed once stripped.
    """
    n = len(data)
    lengths = set(map(len, data))
    longest = max(max(lengths), width)
    if len(lengths) > 1 or longest not in lengths:
        padded = [r + [""] * (longest - len(r)) if len(r) < longest else r for r in data]
        if consume:
            data[:] = padded
        else:
            data = padded
        del padded
    if consume:
        read = list(zip(*data))
        data.clear()
        columns = []
        for i, column in enumerate(read):
            read[i] = None
            columns.append(list(map(str.strip, column)))
            del column
    else:
        columns = [list(map(str.strip, c)) for c in zip(*data)]
    if longest > width:
        extra = [sum(flags) for flags in zip(*(map(bool, c) for c in columns[width:]))]
    else:
        extra = [0] * n
    return columns[:width], extra


def known_headers(dataset: str, their_headers: dict[str, str]) -> set[str]:
    return {word(c) for c in DATASETS[dataset].column_names} | {word(h) for h in their_headers}


def _within_limit(table: pd.DataFrame, limits: Limits) -> pd.DataFrame:
    """The table, unless it has more data rows than `limits.max_rows` (reading stops early too)."""
    if len(table) > limits.max_rows:
        raise _too_many_rows(limits)
    return table


def _too_many_cells(most: int | None = None) -> ReadError:
    most = MAX_CELLS if most is None else most
    return ReadError(f"the table has more than {most:,} cells (rows x columns, blank ones too): it was not read further")


def _too_many_rows(limits: Limits) -> ReadError:
    return ReadError(f"the table has more than {limits.max_rows:,} rows (config limits.max_rows)")


def read_csv_return(path: Path, dataset: str, their_headers: dict[str, str], limits: Limits | None = None) -> ReadResult:
    limits = limits or Limits()
    size = path.stat().st_size
    if size > limits.max_file_bytes:  # landing refuses these first; a direct caller is held here too
        raise ReadError(f"the file is {size:,} bytes, over the size limit (config limits.max_file_bytes)")
    counts = _Decoded()
    limit = limits.max_rows + HEADER_SEARCH_ROWS
    with path.open("rb") as fh:
        chunks = _text_chunks(fh, limits.max_line_bytes, counts)
        first: list[str] = []  # the first lines, for the separator
        for lines in chunks:
            first.extend(lines)
            if len(first) > HEADER_SEARCH_ROWS + 20:
                break
        delimiter = _sniff_delimiter("".join(first[: HEADER_SEARCH_ROWS + 20]))
        # One past the row limit: refused below.
        rows = _csv_rows(chain([first], chunks), delimiter, limit + 1,
                         max_record=limits.max_line_bytes, max_cells=MAX_CELLS)
    if len(rows) > limit:
        raise _too_many_rows(limits)
    result = ReadResult()
    result.tables[dataset] = _within_limit(_to_frame(rows, known_headers(dataset, their_headers), consume=True),
                                           limits)
    result.notes.extend(counts.notes())
    return result


class _Lines:
    """The lines of a CSV, given as lists of lines (a chunk of the file each): one at a time (what
    csv.reader reads), or the rest of the current list at once (what splitting reads)."""

    def __init__(self, chunks, longest: int):
        self._chunks = iter(chunks)
        self._longest = longest
        self.buf: list[str] = []
        self.pos = 0  # the next line's place in buf
        self.base = 0  # lines in the lists before buf
        self._special: list[int] | None = []  # where buf's lines csv.reader must read are (None: not known yet)
        self.widest = 0  # the length of buf's longest line (known with _special)

    def __iter__(self):
        return self

    def __next__(self) -> str:
        while self.pos >= len(self.buf):
            self._take(next(self._chunks))  # StopIteration at the end: csv.reader's end of data
        line = self.buf[self.pos]
        self.pos += 1
        return line

    def _take(self, following: list[str]) -> None:
        self.base += len(self.buf)
        self.buf, self.pos, self._special = following, 0, None

    def fill(self) -> bool:
        """Make buf hold an unread line, taking the next list when buf is read; False at the end."""
        while self.pos >= len(self.buf):
            following = next(self._chunks, None)
            if following is None:
                return False
            self._take(following)
        return True

    def next_special(self) -> int:
        """The place in buf of the first line from pos on with a quote, a NUL or more characters than
        csv's field limit (len(buf) when none): the lines before it are split, not parsed."""
        if self._special is None:
            buf, longest = self.buf, self._longest
            joined = "".join(buf)  # one look at the whole list: most have no quote at all
            self.widest = max(map(len, buf), default=0)
            if '"' in joined or "\x00" in joined or self.widest > longest:
                self._special = [i for i, line in enumerate(buf) if '"' in line or "\x00" in line or len(line) > longest]
            else:
                self._special = []
        return self._special[bisect_left(self._special, self.pos)] if self._special and self._special[-1] >= self.pos \
            else len(self.buf)


class _Record:
    """The lines csv.reader reads for one record, refusing a record longer than `most` characters
    in all (a quoted cell can hold line breaks: each line within the line limit, the record not)."""

    def __init__(self, lines: _Lines, most: int | None, first_line: int):
        self._lines, self._most, self._left, self._first = lines, most, most, first_line

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        if self._left is not None:
            self._left -= len(line)
            if self._left < 0:
                raise ReadError(f"the record starting at line {self._first:,} is longer than the limit of "
                                f"{self._most:,} characters (config limits.max_line_bytes): check for an unclosed "
                                "quote (\") or a line break inside a cell")
        return line


def _csv_rows(source, delimiter: str, most: int, *, max_record: int | None = None,
              max_cells: int | None = None) -> list[list[str]]:
    """The first `most` records of the CSV, as a strict csv.reader reads them, each cut to its
    first MAX_COLUMNS cells (_capped). `source`: the text, or lists of its lines (_text_chunks).

    A line with no quote character, no NUL and no longer than csv's field limit is a record of
    its own, its cells split at the delimiter: csv.reader gives exactly that, and splitting costs
    a third of it. Any other line is read by a csv.reader, which reads on as far as its quotes
    take it (a quoted cell may hold line breaks; no further than `max_record` characters in all);
    each record starts afresh, so it reads it as one reader over the whole text would.
    More than `max_cells` cells in all (blank ones too) is refused.
    """
    if isinstance(source, str):
        source = [io.StringIO(source, newline="").readlines()]  # lines end at \r, \n or \r\n, as csv's do
    lines = _Lines(source, csv.field_size_limit())
    rows: list[list[str]] = []
    cells = 0
    while len(rows) < most and lines.fill():
        buf, start = lines.buf, lines.pos
        special = lines.next_special()
        if special == start:
            try:  # most quoted records are one line: read on its own, from a tuple (no Python per line)
                new = [_capped(next(csv.reader((buf[start],), delimiter=delimiter, strict=True)))]
                lines.pos += 1
            except csv.Error:  # a record over several lines, or an error: read as one reader reads on
                first_line = lines.base + start + 1
                reader = csv.reader(_Record(lines, max_record, first_line), delimiter=delimiter, strict=True)
                try:
                    new = [_capped(next(reader))]
                except csv.Error as exc:
                    # csv's messages name the problem, never the data ("unexpected end of data", ...).
                    raise ReadError(f"the CSV is malformed at line {first_line - 1 + reader.line_num} ({exc}): check "
                                    "for an unclosed quote (\") or a line break inside a cell") from None
        else:
            end = min(special, start + most - len(rows))
            new = _split(buf[start:end] if start or end < len(buf) else buf, delimiter, lines.widest >= MAX_COLUMNS)
            lines.pos = end
        rows.extend(new)
        if max_cells is not None:
            cells += sum(map(len, new))
            if cells > max_cells:
                raise _too_many_cells(max_cells)
    return rows


def _capped(row: list[str]) -> list[str]:
    """The row's first MAX_COLUMNS cells; any content past them becomes one BEYOND cell (so the row
    is still reported as ragged), blank cells past them are dropped."""
    if len(row) <= MAX_COLUMNS:
        return row
    rest = row[MAX_COLUMNS:]
    return row[:MAX_COLUMNS] + ([BEYOND] if any(map(str.strip, rest)) else [])


def _split(lines, delimiter: str, wide: bool = True) -> list[list[str]]:
    """csv.reader's records of lines with no quote: a blank line is [], others split at the delimiter
    (into at most MAX_COLUMNS cells and the rest: _beyond). `wide`: False when no line is as long as
    MAX_COLUMNS characters (so none has more cells)."""
    rows = [cells.split(delimiter, MAX_COLUMNS) if cells else []
            for cells in map(str.rstrip, lines, repeat("\r\n"))]
    if wide and rows and max(map(len, rows)) > MAX_COLUMNS:
        rows = [_beyond(row, delimiter) if len(row) > MAX_COLUMNS else row for row in rows]
    return rows


def _beyond(row: list[str], delimiter: str) -> list[str]:
    """A split row of MAX_COLUMNS cells and the rest of its line: the rest is one BEYOND cell when
    it has content, dropped when it is blank cells only."""
    rest = row.pop()
    if rest.replace(delimiter, "").strip():
        row.append(BEYOND)
    return row


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
    cells = 0
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
        cells += len(rows[-1])
        if filled > limit:
            raise _too_many_rows(limits)
        if cells > MAX_CELLS:
            raise _too_many_cells()
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


_DATASET_WORDS = {normalise_word(d): d for d in DATASETS}


def _sheet_name(title) -> str:
    """A sheet's name as it may be shown: printable ASCII only (anything else '_'), bounded."""
    return "".join(ch if " " <= ch <= "~" and ch not in "'\\" else "_" for ch in str(title)[:40]) or "_"


def _two_sheets(dataset: str, first, second) -> ReadError:
    return ReadError(f"the workbook has two sheets for the {dataset}, '{_sheet_name(first)}' and "
                     f"'{_sheet_name(second)}' (sheet names are compared ignoring case, spaces, hyphens and "
                     "underscores): keep one of them, so it is clear which to read")


def _read_workbook(wb, header_maps: dict[str, dict[str, str]], dataset: str | None, limits: Limits) -> ReadResult:
    result = ReadResult()
    if dataset is not None:
        return _read_single_dataset_workbook(wb, dataset, header_maps.get(dataset, {}), result, limits)
    by_name: dict[str, object] = {}
    for ws in wb.worksheets:
        name = normalise_word(ws.title)
        if name in by_name and name in _DATASET_WORDS:
            raise _two_sheets(_DATASET_WORDS[name], by_name[name].title, ws.title)
        by_name.setdefault(name, ws)
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
    if len(named) > 1:
        raise _two_sheets(dataset, named[0].title, named[1].title)
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
