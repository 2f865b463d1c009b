"""The bulletin's tables as an Excel workbook for analysts, safe to open.

- Only published tables go in (every count already suppressed for an external audience:
  the workbook is the bulletin's own TableViews, nothing more).
- Counts are written as numbers and shares as percentages, so analysts can sort and sum;
  everything else is text.
- Formula injection: a text cell that begins with '=', '+', '-', '@', a tab or a carriage
  return could be run by Excel or LibreOffice as a formula (or DDE). Such text is prefixed with
  an apostrophe and stored as a string, so it shows as typed and never runs. Row labels,
  captions and headers come from partnership names and theme codes in config, but are treated
  the same way.
- The file is byte-for-byte the same for the same tables (fixed document dates and zip entry
  times), so a rebuild does not look like a change.
"""
from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Sequence
from datetime import date, datetime

from openpyxl import Workbook
from openpyxl.cell.cell import Cell
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side

DANGEROUS_FIRST = ("=", "+", "-", "@", "\t", "\r")
_INVALID_SHEET = re.compile(r"[\[\]:*?/\\]")
_COUNT = re.compile(r"^\d+$")
_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)%$")
_BOLD = Font(bold=True)
_HEAD_FILL = PatternFill("solid", fgColor="E3EAF2")
_RULE = Border(top=Side(style="medium", color="1B1B1B"))
# Style objects made once: openpyxl stores each distinct style once, whatever object carries it.
_RIGHT = Alignment(horizontal="right")
_HEAD_FIRST = Alignment(horizontal="left", wrap_text=True, vertical="bottom")
_HEAD_REST = Alignment(horizontal="right", wrap_text=True, vertical="bottom")


def neutralise(text: str) -> str:
    """Text that Excel will show as typed: a leading formula character gets an apostrophe."""
    text = str(text)
    return "'" + text if text.startswith(DANGEROUS_FIRST) else text


def _set_text(cell: Cell, text: str) -> None:
    cell.value = neutralise(text)
    cell.data_type = "s"  # never a formula, whatever the text


def _set_value(cell: Cell, text: str) -> None:
    """A published cell: counts as numbers, shares as percentages, the rest (e.g. 'c') as text."""
    text = str(text)
    if _COUNT.match(text):
        cell.value = int(text)
        cell.number_format = "0"
        return
    m = _PERCENT.match(text)
    if m:
        cell.value = float(m.group(1)) / 100
        cell.number_format = "0%"
        return
    _set_text(cell, text)
    cell.alignment = _RIGHT


def _sheet_name(name: str, taken: set[str]) -> str:
    base = _INVALID_SHEET.sub(" ", name).strip().strip("'")[:28] or "Table"
    out, i = base, 2
    while out.lower() in taken:
        out = f"{base[:26]} {i}"
        i += 1
    taken.add(out.lower())
    return out


def build_workbook(tables: Sequence, *, title: str, notes: Sequence[str] = (), stamp: date | None = None) -> bytes:
    """The workbook's bytes: an 'About' sheet, then one sheet per table (caption, header, rows)."""
    wb = Workbook()
    about = wb.active
    about.title = "About"
    _set_text(about.cell(1, 1), title)
    about.cell(1, 1).font = Font(bold=True, size=14)
    for i, line in enumerate(notes, start=3):
        _set_text(about.cell(i, 1), line)
    row = len(notes) + 4
    _set_text(about.cell(row, 1), "Sheet")
    _set_text(about.cell(row, 2), "Table")
    about.cell(row, 1).font = about.cell(row, 2).font = _BOLD
    about.column_dimensions["A"].width = 30
    about.column_dimensions["B"].width = 100
    taken = {"about"}
    for t in tables:
        name = _sheet_name(t.sheet or t.caption, taken)
        row += 1
        _set_text(about.cell(row, 1), name)
        _set_text(about.cell(row, 2), t.caption)
        ws = wb.create_sheet(name)
        _set_text(ws.cell(1, 1), t.caption)
        ws.cell(1, 1).font = _BOLD
        for j, h in enumerate(t.header, start=1):
            c = ws.cell(3, j)
            _set_text(c, h)
            c.font = _BOLD
            c.fill = _HEAD_FILL
            c.alignment = _HEAD_FIRST if j == 1 else _HEAD_REST
        for i, (label, cells, is_total) in enumerate(t.rows, start=4):
            _set_text(ws.cell(i, 1), label)
            for j, v in enumerate(cells, start=2):
                _set_value(ws.cell(i, j), v)
            if is_total:
                for j in range(1, len(cells) + 2):
                    ws.cell(i, j).font = _BOLD
                    ws.cell(i, j).border = _RULE
        ws.freeze_panes = "B4"
        ws.column_dimensions["A"].width = max(18, min(45, max(len(str(r[0])) for r in t.rows) + 2 if t.rows else 18))
        for j in range(2, len(t.header) + 1):
            ws.column_dimensions[ws.cell(3, j).column_letter].width = 16
    return workbook_bytes(wb, title, stamp or date(2000, 1, 1))


def workbook_bytes(wb: Workbook, title: str, day: date) -> bytes:
    """The one way a workbook is saved here: titled, stamped with `day` (never the clock), and
    byte-stable (equal content gives equal bytes, so a rerun writes no new version)."""
    when = datetime(day.year, day.month, day.day)
    wb.properties.created = when
    wb.properties.modified = when
    wb.properties.creator = "Merseyside practice reviews"
    wb.properties.lastModifiedBy = "Merseyside practice reviews"
    wb.properties.title = title
    buf = io.BytesIO()
    wb.save(buf)
    return _stable_zip(buf.getvalue(), when)


_W3CDTF = re.compile(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:(?:created|modified)>)")


def _stable_zip(data: bytes, when: datetime) -> bytes:
    """Re-pack with fixed entry times, so equal content gives equal bytes.

    openpyxl stamps `docProps/core.xml` with the time of saving whatever the workbook says, so
    those two stamps are set to `when` here too (else two builds a second apart differ).
    """
    stamp = (max(when.year, 1980), when.month, when.day, 0, 0, 0)
    fixed_time = when.strftime("%Y-%m-%dT00:00:00Z").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=stamp)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o600 << 16
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = _W3CDTF.sub(lambda m: m.group(1) + fixed_time + m.group(2), body)
            dst.writestr(fixed, body)
    return out.getvalue()
