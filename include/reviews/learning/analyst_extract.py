"""The analysts' extract: the reporting views as one XLSX workbook, for the business unit's analysts only.

Pseudonymised (case and file ids, codes and dates; never `child_key` or free text: the views'
own rule, reviews.core.views) but **not suppressed**: small counts are as they are. It is
written under the data folder, `{data_dir}/analyst/analyst_extract_{period_end}.xlsx`, and never
circulated: no sending code attaches it, and reviews.core.mail refuses any attachment whose
name starts with `analyst_extract_` (mail.NEVER_ATTACHED).

One sheet per view (`v_case_journeys`, `v_latest_timeliness`, `v_actions`, `v_themes_by_period`,
`v_returns_quality`), a header row then one row per view row in a fixed order, then an `About`
sheet. Each sheet runs the view's own select (so the definitions are shared), with the period
end where a view uses a date of today: timeliness is each case's newest judgement on or before
the period end, and action states are as at the period end (the bulletin's rule). Everything
else is the warehouse as it stands when the extract is written.

Dates are Excel dates, counts numbers, the rest text cells (never formulas). The bytes are the
same for the same rows (fixed document dates and zip entry times, as learning.exports), and an
unchanged extract is not rewritten.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from sqlalchemy import Engine

from reviews.core.mail import NEVER_ATTACHED
from reviews.core.views import VIEWS
from reviews.learning.exports import workbook_bytes

FOLDER = "analyst"
_BOLD = Font(bold=True)


@dataclass
class ExtractReport:
    path: Path
    rows: dict[str, int] = field(default_factory=dict)  # view -> rows written
    written: bool = False  # False when the file already held these bytes

    def to_xcom(self) -> dict:
        return {"path": str(self.path), "rows": dict(self.rows), "written": self.written}


def extract_path(data_dir: str | Path, period_end: date) -> Path:
    return Path(data_dir) / FOLDER / f"{NEVER_ATTACHED}{period_end.isoformat()}.xlsx"


def _cell_value(value):
    """What goes in a cell: dates and numbers as they are, times as naive UTC (Excel has no zones),
    text without the control characters a workbook cannot hold."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(timezone.utc).replace(tzinfo=None)
    if isinstance(value, str):
        return ILLEGAL_CHARACTERS_RE.sub("", value)
    return value


def build_extract(engine: Engine, period_end: date) -> tuple[bytes, dict[str, int]]:
    """The workbook's bytes and the rows per sheet."""
    wb = Workbook()
    first = wb.active
    wb.remove(first)
    counts: dict[str, int] = {}
    with engine.connect() as conn:
        for view in VIEWS.values():
            stmt = view.query(as_of=period_end)
            stmt = stmt.order_by(*(stmt.selected_columns[c] for c in view.order))
            result = conn.execute(stmt)
            names = list(result.keys())
            ws = wb.create_sheet(view.name)
            ws.append(names)
            for cell in ws[1]:
                cell.font = _BOLD
            n = 0
            for row in result:
                n += 1
                ws.append([_cell_value(v) for v in row])
                for cell in ws[n + 1]:
                    if isinstance(cell.value, str):
                        cell.data_type = "s"  # text, never a formula, whatever it begins with
                    elif isinstance(cell.value, datetime):
                        cell.number_format = "yyyy-mm-dd hh:mm:ss"
                    elif isinstance(cell.value, date):
                        cell.number_format = "yyyy-mm-dd"
            ws.freeze_panes = "A2"
            for j, name in enumerate(names, start=1):
                ws.column_dimensions[ws.cell(1, j).column_letter].width = max(12, min(30, len(name) + 2))
            counts[view.name] = n
    about = wb.create_sheet("About")
    for line in (
        ["Merseyside practice reviews: analysts' extract"],
        [f"Period end: {period_end.isoformat()}"],
        ["INTERNAL: pseudonymised, NOT suppressed (small counts are shown). Never circulate or attach."],
        ["One sheet per reporting view (docs/design.md, 'Reporting views'; docs/analysts.md)."],
        ["v_latest_timeliness: each case's newest judgement on or before the period end."],
        ["v_actions: action states as at the period end (state_as_of)."],
        ["Other sheets: the warehouse as it stood when the extract was written."],
        [],
        ["sheet", "rows"],
        *([name, n] for name, n in counts.items()),
    ):
        about.append(line)
    about["A1"].font = _BOLD
    about.column_dimensions["A"].width = 30
    return workbook_bytes(wb, f"Analysts' extract to {period_end.isoformat()} (internal)", period_end), counts


def write_extract(engine: Engine, data_dir: str | Path, period_end: date) -> ExtractReport:
    """Write the period's extract (replacing an older one atomically; the same bytes are left alone)."""
    path = extract_path(data_dir, period_end)
    data, counts = build_extract(engine, period_end)
    report = ExtractReport(path, counts)
    if path.is_file() and path.read_bytes() == data:
        return report
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    report.written = True
    return report
