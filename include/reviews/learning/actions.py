"""Action plans: the register of each partnership's learning actions, and reminders, once each.

Every finding of a review (`learning`) may carry an action: `owner_agency`, `action_due_date`,
`action_status` and `action_completed_date`. As of a day (a run's as-of date, never the wall
clock) each action has the bulletin's state (reviews.core.views.actions, the same rule as
learning.summary): completed, else overdue (due before the day), else in progress, else open.

The register. One XLSX per partnership and as-of date,
`{data_dir}/actions/{code}/action_register_{code}_{as_of}.xlsx`: every finding with a
recommendation or an action (v_actions' rows), whatever its review's state, with its review,
theme, owner agency, due date, status, completion date, its state as of the day and the working
days left. Internal: sent to nobody (the task logs where it is). **No evidence column**: evidence
that an action was done is often free text about a child and stays with the partnership; the
register records the status and the completion date only. The findings' and recommendations'
text is left out for the same reason. The bytes are the same for the same rows (fixed document
dates and zip entry times, as learning.exports), and an unchanged file is not rewritten.

The reminders. An action not completed is `due_soon` when it falls due within
`actions.remind_working_days_before` working days (the due day counting as 0 left, so the default
10 gives two working weeks' notice), and `overdue` once its due day has passed. The partnership's
`learning_contact` (else the business unit) is emailed once per action and state, through the
ledger `action_reminders` (the pattern of reviews.timeliness.alerts):

    (none)            -> pending    an action seen in a state it was never told for
                                    (unique: partnership_code, finding_id, state); a due_soon
                                    state is not recorded for an action already told overdue
    pending | failed  -> sending    claimed, attempt + 1, Message-ID recorded, committed BEFORE the send
    sending           -> sent       the server (or the outbox) accepted the email listing it
    sending           -> failed     certainly not delivered; the next run (or a task retry) tries again
    pending | failed  -> withdrawn  as of a day on or after it was first seen, the action has moved
                                    on (completed, overdue instead of due soon, or no longer due soon)
    sending           -> (stays)    delivery unknown: never resent automatically; reported

So a rerun, or a run about another day, never sends the same reminder twice; a run about an
earlier day than a pending row was seen on leaves that row for a later run. One email per
partnership and run lists its new reminders and overdue notices: finding id, review id, owner
agency (screened), due date, status and working days left. Never the finding or recommendation
text, never a child's key. Logs and return values hold counts and paths only.

A once-per-state reminder has a limit: an action whose due date the partnership moves is not
reminded again for the same state (the ledger is keyed on the action and state, not the date).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from sqlalchemy import Engine, and_, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from reviews.core import warehouse as wh
from reviews.core.audit import audit_now
from reviews.core.config import Config
from reviews.core import ledger
from reviews.core.ledger import FAILED, PENDING, SENDING, WITHDRAWN
from reviews.core.mail import MailError, Message, Transport, check_recipients, describe_error
from reviews.core.rendering import templates
from reviews.core.views import actions as actions_select
from reviews.core.working_days import OutsideCalendarError, working_days_between
from reviews.learning.exports import neutralise, workbook_bytes

DUE_SOON, OVERDUE = "due_soon", "overdue"
REMINDER_STATES = (DUE_SOON, OVERDUE)
FOLDER = "actions"
NOT_RECORDED = "Not recorded"
STATUS_NAMES = {"open": "Open", "in_progress": "In progress", "completed": "Completed", None: "Not recorded"}
STATE_NAMES = {"open": "Open", "in_progress": "In progress", "completed": "Completed", "overdue": "Overdue"}
REGISTER_COLUMNS = (
    ("finding_id", "Finding"), ("review_id", "Review"), ("review_type", "Review type"),
    ("review_completed_date", "Review completed"), ("theme", "Theme"), ("owner_agency", "Owner agency"),
    ("action_due_date", "Due date"), ("action_status", "Status (as returned)"),
    ("action_completed_date", "Completed date"), ("action_state", "State as of the register's date"),
    ("working_days_left", "Working days left"), ("reminder_state", "Reminder due"),
)
PRIVACY_NOTE = ("Findings are the partnership's own finding and review ids; no child is named, and no finding, "
                "recommendation or evidence text is included.")
_KEY = ("partnership_code", "finding_id", "state")
_BOLD = Font(bold=True)

Clock = Callable[[], datetime]


# --------------------------------------------------------------------------------------------
# Owner agencies


def agency_label(text: str | None) -> str:
    """An owner agency as written, spaces tidied ('Not recorded' when blank)."""
    words = " ".join(str(text or "").split())
    return words or NOT_RECORDED


def agency_key(text: str | None) -> str:
    """What makes two spellings the same agency: case and spacing ignored."""
    return agency_label(text).casefold()


def agency_names(texts: Sequence[str | None]) -> dict[str, str]:
    """agency_key -> the label shown for it: its most frequent spelling (then the first in order)."""
    seen: dict[str, dict[str, int]] = {}
    for t in texts:
        spelled = agency_label(t)
        by = seen.setdefault(agency_key(t), {})
        by[spelled] = by.get(spelled, 0) + 1
    return {k: sorted(v.items(), key=lambda kv: (-kv[1], kv[0]))[0][0] for k, v in seen.items()}


# --------------------------------------------------------------------------------------------
# The judgement


def working_days_left(as_of: date, due: date | None) -> int | None:
    """Working days from as_of (day 0) to the due date; negative once past; None when unknown
    (no due date, or a date outside the bank-holiday calendar)."""
    if due is None:
        return None
    try:
        return working_days_between(as_of, due)
    except OutsideCalendarError:
        return None


def reminder_state(action_state: str, due: date | None, as_of: date, days_left: int | None,
                   remind_before: int) -> str | None:
    """`overdue` (not completed, due before as_of), `due_soon` (not completed, due on or after as_of
    within `remind_before` working days), else None."""
    if action_state == "overdue":
        return OVERDUE
    if action_state in ("open", "in_progress") and due is not None and due >= as_of and days_left is not None \
            and days_left <= remind_before:
        return DUE_SOON
    return None


def action_rows(engine: Engine, cfg: Config, as_of: date, codes: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Every action (v_actions' rows) of the partnerships in config, judged as of as_of: the
    bulletin's state, working days left and the reminder state. Ordered by partnership, due date, finding."""
    codes = list(codes if codes is not None else cfg.partnerships)
    stmt = actions_select(as_of)
    col = stmt.selected_columns
    stmt = stmt.where(col.partnership_code.in_(codes))
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(stmt).mappings()]
    remind = cfg.actions.remind_working_days_before
    for r in rows:
        for k in ("action_due_date", "action_completed_date", "review_completed_date", "state_as_of"):
            if isinstance(r.get(k), datetime):
                r[k] = r[k].date()
            elif isinstance(r.get(k), str):  # SQLite hands a literal date back as text
                r[k] = date.fromisoformat(r[k][:10])
        r["working_days_left"] = working_days_left(as_of, r["action_due_date"])
        r["reminder_state"] = reminder_state(r["action_state"], r["action_due_date"], as_of,
                                             r["working_days_left"], remind)
    rows.sort(key=lambda r: (codes.index(r["partnership_code"]), r["action_due_date"] or date.max, r["finding_id"]))
    return rows


# --------------------------------------------------------------------------------------------
# The register


def register_path(data_dir: str | Path, code: str, as_of: date) -> Path:
    return Path(data_dir) / FOLDER / code / f"action_register_{code}_{as_of.isoformat()}.xlsx"


def _cell(value: Any) -> Any:
    if isinstance(value, str):
        return neutralise(ILLEGAL_CHARACTERS_RE.sub("", value))
    return value


def build_register(rows: Sequence[dict], cfg: Config, code: str, as_of: date) -> bytes:
    """The register's bytes: a sheet `Actions` (one row per action) and an `About` sheet."""
    from reviews.learning.summary import theme_label

    name = cfg.partnership(code).name
    wb = Workbook()
    ws = wb.active
    ws.title = "Actions"
    ws.append([h for _, h in REGISTER_COLUMNS])
    for c in ws[1]:
        c.font = _BOLD
    for i, r in enumerate(rows, start=2):
        values = {**r, "theme": theme_label(r["theme"]) if r.get("theme") else None,
                  "owner_agency": agency_label(r.get("owner_agency")),
                  "action_status": STATUS_NAMES.get(r.get("action_status"), r.get("action_status")),
                  "action_state": STATE_NAMES.get(r["action_state"], r["action_state"]),
                  "reminder_state": {DUE_SOON: "Due soon", OVERDUE: "Overdue"}.get(r.get("reminder_state"), "")}
        ws.append([_cell(values.get(k)) for k, _ in REGISTER_COLUMNS])
        for c in ws[i]:
            if isinstance(c.value, str):
                c.data_type = "s"  # text, never a formula
            elif isinstance(c.value, date):
                c.number_format = "yyyy-mm-dd"
    ws.freeze_panes = "B2"
    for j, (_, h) in enumerate(REGISTER_COLUMNS, start=1):
        ws.column_dimensions[ws.cell(1, j).column_letter].width = max(12, min(30, len(h) + 2))
    overdue = sum(r["action_state"] == "overdue" for r in rows)
    due_soon = sum(r.get("reminder_state") == DUE_SOON for r in rows)
    about = wb.create_sheet("About")
    for line in (
        [f"{name}: learning action register as of {as_of.isoformat()}"],
        ["INTERNAL: for the partnership's business unit; not suppressed; not circulated."],
        ["Every finding with a recommendation or an action, whatever its review's state."],
        ["State: completed (completed on or before the date, or status completed with no date), else overdue "
         "(due before the date), else in progress, else open."],
        [f"Reminder due: due soon (not completed, due within {cfg.actions.remind_working_days_before} working days) "
         "or overdue; each is emailed once to the learning contact."],
        ["Evidence that an action was done stays with the partnership: the register records status and "
         "completion date only. Finding and recommendation text is not included."],
        [],
        ["actions", len(rows)],
        ["overdue", overdue],
        ["due soon", due_soon],
    ):
        about.append(line)
    about["A1"].font = _BOLD
    about.column_dimensions["A"].width = 40
    return workbook_bytes(wb, f"{name} action register, {as_of.isoformat()} (internal)", as_of)


def write_register(rows: Sequence[dict], cfg: Config, data_dir: str | Path, code: str, as_of: date) -> tuple[Path, bool]:
    """Write one partnership's register (atomically; the same bytes are left alone): (path, written)."""
    path = register_path(data_dir, code, as_of)
    data = build_register(rows, cfg, code, as_of)
    if path.is_file() and path.read_bytes() == data:
        return path, False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path, True


# --------------------------------------------------------------------------------------------
# The report


@dataclass
class ActionReport:
    """What one run did; counts and paths only (safe for logs and XCom)."""

    as_of: str
    registers: dict[str, dict] = field(default_factory=dict)  # code -> {path, actions, overdue, due_soon, written}
    due_soon: int = 0
    overdue: int = 0
    new: int = 0
    already_told: int = 0
    emails: int = 0
    listed: int = 0
    failed: int = 0
    withdrawn: int = 0
    unconfirmed: int = 0
    skipped: str | None = None
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        head = f"as of {self.as_of}: {self.due_soon} due soon, {self.overdue} overdue"
        if self.skipped:
            return f"{head}; reminders not sent ({self.skipped})"
        return (f"{head}; {self.new} new, {self.already_told} already told; {self.emails} email(s) listing "
                f"{self.listed}, {self.failed} failed, {self.withdrawn} withdrawn, {self.unconfirmed} unconfirmed; "
                f"{len(self.problems)} problem(s)")

    def to_xcom(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


# --------------------------------------------------------------------------------------------
# The ledger


def _insert_new(conn, rows: list[dict]) -> int:
    if not rows:
        return 0
    mod = sqlite if conn.dialect.name == "sqlite" else postgresql
    stmt = (mod.insert(wh.action_reminders).on_conflict_do_nothing(index_elements=list(_KEY))
            .returning(wh.action_reminders.c.reminder_id))  # rowcount is not reliable here on PostgreSQL
    return sum(conn.execute(stmt.values(**row)).first() is not None for row in rows)


def record_reminders(engine: Engine, rows: Sequence[dict], as_of: date, report: ActionReport,
                     *, clock: Clock = audit_now) -> None:
    """A `pending` ledger row for every action newly due soon or overdue as of as_of."""
    current = [r for r in rows if r["reminder_state"]]
    report.due_soon = sum(r["reminder_state"] == DUE_SOON for r in current)
    report.overdue = sum(r["reminder_state"] == OVERDUE for r in current)
    a = wh.action_reminders.c
    with engine.begin() as conn:
        told: set[tuple] = set()
        actions = sorted({(r["partnership_code"], r["finding_id"]) for r in current})
        for i in range(0, len(actions), 500):
            told.update(tuple(x) for x in conn.execute(
                select(a.partnership_code, a.finding_id, a.state)
                .where(tuple_(a.partnership_code, a.finding_id).in_(actions[i : i + 500]))))
        now = clock()
        new = []
        for r in current:
            key = (r["partnership_code"], r["finding_id"], r["reminder_state"])
            if key in told or (key[2] == DUE_SOON and (key[0], key[1], OVERDUE) in told):
                continue  # told already; or told overdue, so "due soon" is old news
            new.append({"partnership_code": key[0], "finding_id": key[1], "state": key[2],
                        "review_id": r["review_id"], "owner_agency": r["owner_agency"],
                        "action_due_date": r["action_due_date"], "action_status": r["action_status"],
                        "first_seen_as_of": as_of, "working_days_left": r["working_days_left"],
                        "send_status": PENDING, "attempt": 0, "created_at": now})
        report.new = _insert_new(conn, new)
    report.already_told = len(current) - report.new


# --------------------------------------------------------------------------------------------
# The email


def _long_date(d: date | None) -> str:
    return f"{d.day} {d:%B %Y}" if d else "-"


def _left_words(n: int | None) -> str:
    if n is None:
        return "unknown"
    if n < 0:
        return f"overdue by {-n} working day{'s' if n != -1 else ''}"
    if n == 0:
        return "due today"
    return f"{n} working day{'s' if n != 1 else ''} left"


def reminder_message(rows: Sequence[dict], cfg: Config, code: str, as_of: date, to: Sequence[str]) -> Message:
    """The learning contact's email (templates alert_actions.*.j2): how many actions are overdue or
    due soon, what to do next, then the actions (overdue first), each with finding and review id,
    owner agency, due date, status and working days left. No free text of the finding."""
    from reviews.privacy.screening import screen

    name = cfg.partnership(code).name
    rows = sorted(rows, key=lambda r: (0 if r["state"] == OVERDUE else 1, r["action_due_date"] or date.max,
                                       r["finding_id"]))
    n_over = sum(r["state"] == OVERDUE for r in rows)
    n_soon = len(rows) - n_over
    counts = ", ".join(p for p in (f"{n_over} overdue" if n_over else "", f"{n_soon} due soon" if n_soon else "") if p)
    subject = f"[reviews] {name} learning actions as of {_long_date(as_of)}: {counts}"
    days = cfg.actions.remind_working_days_before
    summary = []
    if n_over:
        summary.append(f"{n_over} action{'s are' if n_over != 1 else ' is'} now overdue (past the due date, not completed).")
    if n_soon:
        summary.append(f"{n_soon} action{'s fall' if n_soon != 1 else ' falls'} due within {days} working days.")
    items = [{"finding_id": r["finding_id"], "review_id": r["review_id"] or "-",
              "agency": screen(agency_label(r["owner_agency"]), names=False).text,
              "due": _long_date(r["action_due_date"]),
              "status": STATUS_NAMES.get(r["action_status"], str(r["action_status"])),
              "left": _left_words(r["working_days_left"]), "state": r["state"]} for r in rows]
    groups = [{"heading": f"{heading} ({len(mine)})", "caption": caption, "actions": mine}
              for state, heading, caption in (
                  (OVERDUE, "Overdue", "Actions past their due date, oldest due first"),
                  (DUE_SOON, "Due soon", f"Actions due within {days} working days, soonest first"))
              for mine in [[i for i in items if i["state"] == state]] if mine]
    context = {
        "subject": subject, "banner": f"{cfg.region_name or 'Regional'} safeguarding partnerships: learning actions",
        "heading": f"{name} learning actions as of {_long_date(as_of)}",
        "intro": f"As of {_long_date(as_of)}, {len(rows)} action{'s' if len(rows) != 1 else ''} from "
                 f"{name}'s practice reviews need{'s' if len(rows) == 1 else ''} attention:",
        "summary": summary,
        "next_steps": [
            "Ask each owner agency to complete its action, or to agree a new due date with the partnership.",
            "When an action is done, record its completion date and status in the next return; the evidence "
            "stays with the partnership.",
            "Each action is told once when it falls due soon and once when it becomes overdue.",
        ],
        "groups": groups, "privacy": PRIVACY_NOTE, "status_url": None,
        "header": ("Finding", "Review", "Owner agency", "Due date", "Status", "Working days left"),
    }
    html = templates().get_template("alert_actions.html.j2").render(context)
    text = templates().get_template("alert_actions.txt.j2").render(context)
    return Message(to=tuple(to), subject=subject, html=html, text=text)


# --------------------------------------------------------------------------------------------
# Sending


def send_reminders(engine: Engine, cfg: Config, transport: Transport, rows_now: Sequence[dict], as_of: date,
                   report: ActionReport, *, max_attempts: int = 5, clock: Clock = audit_now) -> None:
    """One email per partnership listing its `pending` rows (and `failed` ones with attempts left)
    that are still the action's state as of as_of; withdraw the others. Rows first seen after
    as_of are left to a later run; rows left `sending` are reported, never resent."""
    a = wh.action_reminders.c
    state_now = {(r["partnership_code"], r["finding_id"]): r["reminder_state"] for r in rows_now}
    with engine.begin() as conn:
        rows = [dict(r) for r in conn.execute(
            select(wh.action_reminders)
            .where(a.partnership_code.in_(list(cfg.partnerships)),
                   or_(a.send_status.in_((PENDING, SENDING)), and_(a.send_status == FAILED, a.attempt < max_attempts)))
            .order_by(a.reminder_id)).mappings()]
        todo = []
        for r in rows:
            if r["send_status"] == SENDING:
                report.unconfirmed += 1
                report.problems.append(f"action reminder {r['reminder_id']} left 'sending' at attempt {r['attempt']} "
                                       f"(Message-ID {r['message_ref']}); check the mail server's log")
            elif r["first_seen_as_of"] > as_of:
                continue  # about a later day than this run's: left for a run about that day
            elif state_now.get((r["partnership_code"], r["finding_id"])) != r["state"]:
                now = state_now.get((r["partnership_code"], r["finding_id"]))
                conn.execute(update(wh.action_reminders)
                             .where(a.reminder_id == r["reminder_id"], a.send_status.in_((PENDING, FAILED)))
                             .values(send_status=WITHDRAWN, error=f"not sent: as of {as_of.isoformat()} the action "
                                                                  f"is {now or 'neither due soon nor overdue'}"))
                report.withdrawn += 1
            else:
                todo.append(r)
    by_code: dict[str, list[dict]] = {}
    for r in todo:
        by_code.setdefault(r["partnership_code"], []).append(r)
    for code, mine in by_code.items():
        allowed, refused = check_recipients(cfg.learning_contact(code), cfg.allowed_domains)
        for _addr, why in refused:
            report.problems.append(f"{code} learning contact refused: {why}")
        if not allowed:
            report.problems.append(f"{code}: no allowed learning contact or business unit address; left pending")
            continue
        try:
            out = ledger.send_once(engine, wh.action_reminders, "reminder_id", mine, transport, cfg.sender,
                                   lambda rows, code=code, allowed=allowed: reminder_message(rows, cfg, code, as_of,
                                                                                             allowed),
                                   clock, recipients="\n".join(allowed))
        except MailError as exc:
            report.problems.append(f"{code} reminder email not built: {describe_error(exc)}")
            continue
        if out.status in ("unconfirmed", "failed"):
            if out.status == "unconfirmed":
                report.unconfirmed += len(out.rows)
            else:
                report.failed += len(out.rows)
            report.problems.append(f"{code} reminder email not sent: {out.error}")
        elif out.status == "sent":
            report.emails += 1
            report.listed += len(out.rows)


def run_actions(engine: Engine, cfg: Config, data_dir: str | Path, transport: Transport | None, as_of: date,
                *, send: bool = True, skip_reason: str | None = None, clock: Clock = audit_now) -> ActionReport:
    """Write every partnership's register as of as_of, then record and send the reminders (with
    send=False, or no transport, the ledger is left alone: backfills are about the past)."""
    report = ActionReport(as_of.isoformat())
    rows = action_rows(engine, cfg, as_of)
    for code in cfg.partnerships:
        mine = [r for r in rows if r["partnership_code"] == code]
        path, written = write_register(mine, cfg, data_dir, code, as_of)
        report.registers[code] = {
            "path": str(path), "actions": len(mine), "written": written,
            "overdue": sum(r["action_state"] == "overdue" for r in mine),
            "due_soon": sum(r["reminder_state"] == DUE_SOON for r in mine)}
    if not send or transport is None:
        report.due_soon = sum(r["reminder_state"] == DUE_SOON for r in rows)
        report.overdue = sum(r["reminder_state"] == OVERDUE for r in rows)
        report.skipped = skip_reason or "sending not asked for"
        return report
    record_reminders(engine, rows, as_of, report, clock=clock)
    send_reminders(engine, cfg, transport, rows, as_of, report, clock=clock)
    return report
