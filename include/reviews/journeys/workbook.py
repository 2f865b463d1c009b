"""The case tracker as a dated XLSX for the business unit: internal, never circulated.

Two sheets: `Cases` (one row per case, what is due first at the top, as the tracker page sorts
them) and `Stages` (one row per case and stage). Case references only: partnership ids of the
notification, rapid review and practice review; no child's key, no free text. Unsuppressed (an
internal view, like the status page), so it is written under the data folder
(`tracker/case_tracker_{as_of}.xlsx`) and attached to nothing.

Text cells are neutralised as the bulletins' workbooks are (a leading formula character gets an
apostrophe), and equal content gives equal bytes, so a rerun rewrites the same file.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill

from reviews.core.config import Config
from reviews.journeys.model import DECISION_WORDS, STAGE_WORDS, STATUS_WORDS, Journey
from reviews.learning.exports import neutralise, workbook_bytes  # the bulletins' safe, byte-stable workbook rules

_BOLD = Font(bold=True)
_HEAD = PatternFill("solid", fgColor="E3EAF2")
CASE_HEADER = ("Partnership", "Case (notification or review)", "Rapid review", "Practice review", "Stage now",
               "Status", "Next due", "Working days left", "Decision", "Flagged cells", "Rejected rows", "Findings")
STAGE_HEADER = ("Partnership", "Case", "Stage", "Status", "Due", "Done", "Working days left", "Detail", "Why unknown")


def due_order(j: Journey) -> tuple:
    """What is due first: open stages by due date (overdue first), then cases with nothing dated."""
    due = j.next_due()
    return (due is None, due.due if due else date.max, j.partnership_code, j.case_id)


def _put(ws, row: int, values) -> None:
    for col, v in enumerate(values, start=1):
        cell = ws.cell(row, col)
        if v is None:
            continue
        if isinstance(v, (int, date)) and not isinstance(v, bool):
            cell.value = v
            if isinstance(v, date):
                cell.number_format = "d mmm yyyy"
        else:
            cell.value = neutralise(str(v))
            cell.data_type = "s"


def _sheet(ws, title: str, header, rows) -> None:
    ws.cell(1, 1).value = neutralise(title)
    ws.cell(1, 1).font = _BOLD
    _put(ws, 3, header)
    for col in range(1, len(header) + 1):
        ws.cell(3, col).font, ws.cell(3, col).fill = _BOLD, _HEAD
    for i, values in enumerate(rows, start=4):
        _put(ws, i, values)
    ws.freeze_panes = "C4"
    for col in range(1, len(header) + 1):
        ws.column_dimensions[ws.cell(3, col).column_letter].width = 18


def tracker_workbook(journeys: list[Journey], cfg: Config, as_of: date) -> bytes:
    names = {code: p.name for code, p in cfg.partnerships.items()}
    ordered = sorted(journeys, key=due_order)
    wb = Workbook()
    cases = wb.active
    cases.title = "Cases"
    case_rows = []
    for j in ordered:
        now, due = j.current(), j.next_due()
        case_rows.append((names.get(j.partnership_code, j.partnership_code), j.case_id, j.rapid_review_id,
                          j.review_id, STAGE_WORDS[now.stage] if now else "closed",
                          STATUS_WORDS.get(now.status, now.status) if now else "closed",
                          due.due if due else None, due.left if due else None,
                          DECISION_WORDS.get(j.decision, j.decision), j.flags, j.rejected, "\n".join(j.findings)))
    _sheet(cases, f"Case tracker as of {as_of.day} {as_of:%B %Y}: internal to the business unit, never circulated "
                  "(counts not suppressed)", CASE_HEADER, case_rows)
    stage_rows = [(names.get(j.partnership_code, j.partnership_code), j.case_id, STAGE_WORDS[s.stage],
                   STATUS_WORDS.get(s.status, s.status), s.due, s.done, s.left, s.detail, s.reason)
                  for j in ordered for s in j.stages]
    _sheet(wb.create_sheet("Stages"), f"Every stage of every case as of {as_of.day} {as_of:%B %Y}", STAGE_HEADER,
           stage_rows)
    return workbook_bytes(wb, f"Case tracker {as_of.isoformat()}", as_of)


def write_tracker(journeys: list[Journey], cfg: Config, as_of: date, folder: Path) -> Path:
    """`{folder}/case_tracker_{as_of}.xlsx` (replaced by a rerun); returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"case_tracker_{as_of.isoformat()}.xlsx"
    tmp = path.with_suffix(".xlsx.tmp")
    tmp.write_bytes(tracker_workbook(journeys, cfg, as_of))
    tmp.replace(path)
    return path
