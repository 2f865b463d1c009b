"""Tell the business unit, once, about each case that became at risk or overdue.

After `statutory_timeliness` has judged the cases as of a day, `run_alerts` compares that day's
`timeliness` rows with the ledger `timeliness_alerts` and emails the business unit a short list
of what is new: cases whose stage is now `open_at_risk` (due within the configured working
days) or `open_overdue`, with partnership, stage, case reference, due date and working days
left. The email says it in words (how many of each stage, what to do next) and is styled like the
bulletins (templates alert_timeliness.*.j2); it links the status page when the caller knows its
address. Record ids are the partnerships' case references (notification_id, review_id), never a
child's key; logs and return values hold counts only.

Exactly once per case and status change, the same pattern as bulletin circulation
(reviews.circulation.bulletin_sends), on its own ledger:

    (none)            -> pending    a case/stage seen in a status it was never alerted for
                                    (unique: partnership_code, stage, record_id, status)
    pending | failed  -> sending    claimed, attempt + 1, Message-ID recorded, committed BEFORE the send
    sending           -> sent       the server (or the outbox) accepted the email listing it
    sending           -> failed     certainly not delivered; the next run (or task retry) tries again
    pending | failed  -> withdrawn  by the time it could be sent the case had moved on (done, back
                                    on track, or now in the other alert status): old news is not sent
    sending           -> sent|failed  only by an analyst (`resolve_unconfirmed`), when the connection
                                    died during DATA: never resent automatically (at most once)

So a case that goes at risk and then overdue is told twice, once per status; a rerun for the
same day, or any later day on which nothing changed, sends nothing. All the rows of one run go
in one email. The first run on a warehouse lists every case already at risk or overdue.

Sending is the caller's choice (`send=False`): backfills judge the past and must not alert about
it, so the DAG skips this step for backfill runs unless asked (see dags/statutory_timeliness.py).
A skipped run writes nothing to the ledger, so the next run about the present still alerts.

Alerts say what they do not know (`data_notes`): when the latest return row behind a listed case
was rejected (an unresolved quarantine row for one of its records, from a file at least as new as
the row that loaded) or loaded with a flag (a current row_flags row), the case carries a note
naming the file, the row and the rule in plain words, e.g. "Its latest return row
(liverpool_2026-10-10.csv, row 14) was rejected (rule: completed_date is not a date): ... This
status is from the earlier return." A stage whose own dates were flagged is judged `unknown`
(timeliness.compute), and unknown is never alerted.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, and_, func, insert, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from reviews.core import warehouse as wh
from reviews.core.audit import audit_now
from reviews.core.config import Config
from reviews.core.rendering import templates
from reviews.core import ledger
from reviews.core.ledger import FAILED, PENDING, SENDING, SENT, WITHDRAWN
from reviews.core.mail import MailError, Message, Transport, check_recipients, describe_error
from reviews.timeliness.compute import STAGES
from reviews.core.working_days import working_days_between

ALERT_STATUSES = ("open_at_risk", "open_overdue")
SEND_STATUSES = (PENDING, SENDING, SENT, FAILED, WITHDRAWN)
STAGE_NAMES = {
    "notification": "Notification to the Panel",
    "rapid_review": "Rapid review",
    "lcspr_completion": "LCSPR completion",
    "publication_notice": "Publication notice",
}
STATUS_NAMES = {"open_at_risk": "at risk", "open_overdue": "overdue"}
_KEY = ("partnership_code", "stage", "record_id", "status")

Clock = Callable[[], datetime]


@dataclass
class AlertReport:
    """What one run did; counts and Message-IDs only (safe for logs and XCom)."""

    as_of: str
    at_risk: int = 0  # cases/stages open_at_risk as of as_of
    overdue: int = 0  # ... open_overdue
    new: int = 0  # ledger rows this run wrote (status changes not alerted before)
    already_alerted: int = 0  # at risk/overdue, but told before
    listed: int = 0  # rows in the email this run sent
    emails: int = 0  # emails accepted by the server (0 or 1)
    failed: int = 0  # rows whose email certainly failed (left to the next run or a task retry)
    withdrawn: int = 0  # unsent rows dropped because the case moved on
    unconfirmed: int = 0  # rows left `sending` (delivery unknown): an analyst must resolve them
    skipped: str | None = None  # why nothing was recorded or sent
    message_ref: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.failed or self.unconfirmed or self.problems)

    def summary(self) -> str:
        if self.skipped:
            return (f"as of {self.as_of}: alerts not sent ({self.skipped}); {self.at_risk} at risk, "
                    f"{self.overdue} overdue")
        return (f"as of {self.as_of}: {self.at_risk} at risk, {self.overdue} overdue; {self.new} new, "
                f"{self.already_alerted} already alerted; {self.emails} email(s) listing {self.listed}, "
                f"{self.failed} failed, {self.withdrawn} withdrawn, {self.unconfirmed} unconfirmed; "
                f"{len(self.problems)} problem(s)")


# --------------------------------------------------------------------------------------------
# What is at risk or overdue now


def current_alert_rows(engine: Engine, as_of: date) -> list[dict[str, Any]]:
    """The `timeliness` rows for as_of in an alert status, with working days left (signed)."""
    t = wh.timeliness.c
    with engine.connect() as conn:
        rows = [
            dict(r) for r in conn.execute(
                select(t.partnership_code, t.stage, t.record_id, t.status, t.due_date, t.rule_set)
                .where(t.as_of_date == as_of, t.status.in_(ALERT_STATUSES))
                .order_by(t.partnership_code, t.stage, t.record_id)
            ).mappings()
        ]
    known = [r for r in rows if r["due_date"] is not None]
    if known:
        left = working_days_between([as_of] * len(known), [r["due_date"] for r in known])
        for r, n in zip(known, left.tolist()):
            r["working_days_left"] = int(n)
    for r in rows:
        r.setdefault("working_days_left", None)
    return rows


def _current_statuses(conn, as_of: date, keys: Sequence[tuple]) -> dict[tuple, str]:
    """(partnership, stage, record) -> status as of as_of, for the given cases."""
    t = wh.timeliness.c
    out: dict[tuple, str] = {}
    for i in range(0, len(keys), 500):
        chunk = keys[i : i + 500]
        stmt = select(t.partnership_code, t.stage, t.record_id, t.status).where(
            t.as_of_date == as_of, tuple_(t.partnership_code, t.stage, t.record_id).in_(chunk))
        out.update({(p, s, r): st for p, s, r, st in conn.execute(stmt)})
    return out


# --------------------------------------------------------------------------------------------
# The ledger


def _insert_new(conn, rows: list[dict]) -> int:
    """Insert alert rows whose (partnership, stage, record, status) is not in the ledger yet."""
    if not rows:
        return 0
    name = conn.dialect.name
    if name in ("sqlite", "postgresql"):
        mod = sqlite if name == "sqlite" else postgresql
        stmt = mod.insert(wh.timeliness_alerts).on_conflict_do_nothing(index_elements=list(_KEY))
        return sum(conn.execute(stmt, row).rowcount == 1 for row in rows)
    inserted = 0
    for row in rows:  # other dialects: a savepoint per row
        try:
            with conn.begin_nested():
                conn.execute(insert(wh.timeliness_alerts), [row])
            inserted += 1
        except IntegrityError:
            pass
    return inserted


def record_alerts(engine: Engine, as_of: date, report: AlertReport | None = None, *, clock: Clock = audit_now) -> AlertReport:
    """Write a `pending` ledger row for every case/stage newly at risk or overdue as of as_of."""
    report = report or AlertReport(as_of.isoformat())
    current = current_alert_rows(engine, as_of)
    report.at_risk = sum(r["status"] == "open_at_risk" for r in current)
    report.overdue = sum(r["status"] == "open_overdue" for r in current)
    a = wh.timeliness_alerts.c
    with engine.begin() as conn:
        seen = set()
        keys = [tuple(r[k] for k in _KEY) for r in current]
        for i in range(0, len(keys), 500):
            stmt = select(a.partnership_code, a.stage, a.record_id, a.status).where(
                tuple_(a.partnership_code, a.stage, a.record_id, a.status).in_(keys[i : i + 500]))
            seen.update(tuple(r) for r in conn.execute(stmt))
        now = clock()
        new = [
            {**{k: r[k] for k in _KEY}, "first_seen_as_of": as_of, "due_date": r["due_date"],
             "working_days_left": r["working_days_left"], "rule_set": r["rule_set"], "send_status": PENDING,
             "attempt": 0, "created_at": now}
            for r in current if tuple(r[k] for k in _KEY) not in seen
        ]
        report.new = _insert_new(conn, new)
    report.already_alerted = len(current) - report.new
    return report


def _withdraw_stale(conn, as_of: date, rows: list[dict]) -> list[dict]:
    """Unsent rows whose case is no longer in that status as of as_of become `withdrawn`."""
    a = wh.timeliness_alerts.c
    now_status = _current_statuses(conn, as_of, [(r["partnership_code"], r["stage"], r["record_id"]) for r in rows])
    keep = []
    for r in rows:
        status_now = now_status.get((r["partnership_code"], r["stage"], r["record_id"]))
        if status_now == r["status"]:
            keep.append(r)
            continue
        conn.execute(
            update(wh.timeliness_alerts)
            .where(a.alert_id == r["alert_id"], a.send_status.in_((PENDING, FAILED)))
            .values(send_status=WITHDRAWN,
                    error=f"not sent: as of {as_of.isoformat()} the case is {status_now or 'no longer judged'}")
        )
        r["send_status"] = WITHDRAWN
    return keep


# --------------------------------------------------------------------------------------------
# What the data behind a case does not say: rejected and flagged rows


# The records a stage's judgement reads, by dataset (the rapid review stage: the notification and
# the case's rapid reviews, found through their notification_id).
STAGE_DATASETS = {
    "notification": ("notifications",),
    "rapid_review": ("notifications", "rapid_reviews"),
    "lcspr_completion": ("practice_reviews",),
    "publication_notice": ("practice_reviews",),
}
RECORD_WORDS = {"notifications": "notification", "rapid_reviews": "rapid review", "practice_reviews": "review"}


def _rule_titles(dataset: str, rule_ids: Sequence[str]) -> str:
    """The rules, in plain words (quality.rule_title), each once."""
    from reviews.returns.quality import rule_title  # the rules live with the returns

    return "; ".join(dict.fromkeys(rule_title(r, dataset) for r in rule_ids if r))


def _sentence(text: str) -> str:
    text = " ".join(str(text).split()).rstrip(".")
    return text + "."


def data_notes(engine: Engine, rows: Sequence[dict]) -> dict[tuple[str, str, str], list[str]]:
    """(partnership, stage, record) -> sentences saying that the latest return row behind the case
    was rejected or flagged, naming the file, the row and the rule; cases with neither are left out.

    Rejected: an unresolved quarantine row for one of the records the stage reads, from a file at
    least as new as the one the loaded row came from (lineage columns return_date and
    source_file_id), or, for a rapid review never loaded, naming the case's notification. Flagged:
    a current row_flags row (superseded_by_file_id null) for one of those records. Quarantined
    values are never quoted beyond what the quality rules' sentences say (they withhold anything
    that could be personal); record ids are case references.
    """
    notes: dict[tuple[str, str, str], list[str]] = {}
    if not rows:
        return notes
    q, rf, f = wh.quarantine.c, wh.return_files.c, wh.row_flags.c
    rr = wh.rapid_reviews.c
    by_partnership: dict[str, list[dict]] = {}
    for r in rows:
        by_partnership.setdefault(r["partnership_code"], []).append(r)
    with engine.connect() as conn:
        for code, mine in by_partnership.items():
            # the records each case reads: (dataset, record id) -> the cases it belongs to
            wanted: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
            case_ids = {r["record_id"] for r in mine if r["stage"] == "rapid_review"}
            rapid_of: dict[str, list[str]] = {}
            for i in range(0, len(case_ids), 500):
                chunk = sorted(case_ids)[i : i + 500]
                for rid, nid in conn.execute(select(rr.rapid_review_id, rr.notification_id).where(
                        rr.partnership_code == code, rr.notification_id.in_(chunk))):
                    rapid_of.setdefault(nid, []).append(rid)
            for r in mine:
                key = (code, r["stage"], r["record_id"])
                for dataset in STAGE_DATASETS.get(r["stage"], ()):
                    ids = rapid_of.get(r["record_id"], []) if dataset == "rapid_reviews" else [r["record_id"]]
                    for rid in ids:
                        wanted.setdefault((dataset, rid), []).append(key)
            if not wanted and not case_ids:
                continue
            lineage = _lineage(conn, code, {k for k in wanted})
            # rejected rows of the records read (and of rapid reviews not loaded, by their notification)
            datasets = {d for d, _ in wanted} | ({"rapid_reviews"} if case_ids else set())
            rejected = conn.execute(
                select(q.dataset, q.record_id, q.file_id, q.file_name, q.row_number, q.failed_checks, q.failed_rules,
                       q.raw_values, rf.return_date)
                .join(wh.return_files, rf.file_id == q.file_id)
                .where(q.partnership_code == code, q.dataset.in_(sorted(datasets)), q.resolved_by_file_id.is_(None))
                .order_by(rf.return_date, q.file_id, q.row_number)
            ).mappings().all()
            for qr in rejected:
                loaded = lineage.get((qr["dataset"], qr["record_id"]))
                if (qr["dataset"], qr["record_id"]) in wanted:
                    if loaded is not None and (qr["return_date"], qr["file_id"]) < loaded:
                        continue  # older than the row that loaded: that row replaced it
                    cases = wanted[(qr["dataset"], qr["record_id"])]
                    if loaded is None:
                        continue  # a record never loaded is judged from nothing: no status to qualify
                    tail = "This status is from the earlier return."
                    lead = "Its latest return row" if qr["dataset"] != "rapid_reviews" else "The latest rapid review row"
                elif qr["dataset"] == "rapid_reviews" and loaded is None:
                    nid = _raw_value(qr["raw_values"], "notification_id")
                    cases = [(code, "rapid_review", nid)] if nid in case_ids else []
                    lead = "A rapid review row for this case"
                    tail = "Until it is corrected, that rapid review is not counted."
                else:
                    continue
                checks = [c for c in str(qr["failed_checks"] or "").splitlines() if c.strip()]
                rules = str(qr["failed_rules"] or "").splitlines()
                titles = _rule_titles(qr["dataset"], rules)
                said = (f"{lead} ({qr['file_name']}, row {qr['row_number']}) was rejected"
                        f"{f' (rule: {titles})' if titles else ''}: {_sentence('; '.join(checks) or 'see its quality report')} "
                        f"{tail}")
                for key in cases:
                    notes.setdefault(key, []).append(said)
            # current flags of the records read
            flagged = conn.execute(
                select(f.dataset, f.record_id, f.file_name, f.row_number, f.rule_id, f.message)
                .where(f.partnership_code == code, f.superseded_by_file_id.is_(None),
                       f.dataset.in_(sorted({d for d, _ in wanted})))
                .order_by(f.file_id, f.row_number, f.rule_id)
            ).mappings().all()
            for fl in flagged:
                for key in wanted.get((fl["dataset"], fl["record_id"]), ()):
                    lead = "Its latest return row" if fl["dataset"] != "rapid_reviews" else "The latest rapid review row"
                    notes.setdefault(key, []).append(
                        f"{lead} ({fl['file_name']}, row {fl['row_number']}) was loaded with a flag "
                        f"(rule: {_rule_titles(fl['dataset'], [fl['rule_id']])}): {_sentence(fl['message'])}")
    return {k: list(dict.fromkeys(v)) for k, v in notes.items()}


def _lineage(conn, code: str, records: set[tuple[str, str]]) -> dict[tuple[str, str], tuple[date, int]]:
    """(dataset, record id) -> (return_date, source_file_id) of the row that loaded it."""
    out: dict[tuple[str, str], tuple[date, int]] = {}
    for dataset in sorted({d for d, _ in records}):
        table = wh.CASE_TABLES[dataset]
        id_column = table.c[[c.name for c in table.primary_key.columns if c.name != "partnership_code"][0]]
        ids = sorted(r for d, r in records if d == dataset)
        for i in range(0, len(ids), 500):
            for rid, when, file_id in conn.execute(select(id_column, table.c.return_date, table.c.source_file_id).where(
                    table.c.partnership_code == code, id_column.in_(ids[i : i + 500]))):
                out[(dataset, rid)] = (when, file_id)
    return out


def _raw_value(raw_values: str | None, column: str) -> str | None:
    try:
        value = json.loads(raw_values or "{}").get(column)
    except (ValueError, AttributeError):
        return None
    return None if value is None else str(value).strip()


# --------------------------------------------------------------------------------------------
# The email


def _left_words(n: int | None) -> str:
    if n is None:
        return "unknown"
    if n < 0:
        return f"overdue by {-n} working day{'s' if n != -1 else ''}"
    if n == 0:
        return "due today"
    return f"{n} working day{'s' if n != 1 else ''} left"


def _long_date(d: date | None) -> str:
    return f"{d.day} {d:%B %Y}" if d else "-"


def _ordered(rows: Sequence[dict]) -> list[dict]:
    """Overdue first, then at risk; each by due date, partnership, stage and case reference."""
    return sorted(rows, key=lambda r: (
        0 if r["status"] == "open_overdue" else 1, r["due_date"] or date.max, r["partnership_code"],
        STAGES.index(r["stage"]) if r["stage"] in STAGES else len(STAGES), r["record_id"]))


STAGE_NOUNS = {  # (one, many), for sentences: "3 rapid reviews are overdue"
    "notification": ("notification to the Panel", "notifications to the Panel"),
    "rapid_review": ("rapid review", "rapid reviews"),
    "lcspr_completion": ("LCSPR completion", "LCSPR completions"),
    "publication_notice": ("publication notice", "publication notices"),
}
PRIVACY_NOTE = "Case references are the partnerships' own notification and review ids; no child is named."


def _stage_sentence(n: int, stage: str, status: str, at_risk_days: int) -> str:
    """E.g. "2 rapid reviews are at risk (due within 3 working days)": the stage's own window."""
    one, many = STAGE_NOUNS.get(stage, (stage.replace("_", " "), stage.replace("_", " ") + "s"))
    verb = "is" if n == 1 else "are"
    state = "overdue" if status == "open_overdue" else f"at risk (due within {at_risk_days} working days)"
    return f"{n} {one if n == 1 else many} {verb} {state}"


def alert_message(rows: Sequence[dict], cfg: Config, as_of: date, to: Sequence[str],
                  status_url: str | None = None) -> Message:
    """The business unit's email, in words and styled like the bulletins (templates
    alert_timeliness.*.j2): how many cases of each stage became overdue or at risk, what to do
    next, then the cases (overdue first), each with partnership, stage, case reference, due date
    and working days left (as of the day they were first seen), and under it the case's `notes`
    (data_notes: its latest return row rejected or flagged) when the row carries any; a link to
    the status page when the caller knows its address."""
    names = {code: p.name for code, p in cfg.partnerships.items()}
    rows = _ordered(rows)
    n_over = sum(r["status"] == "open_overdue" for r in rows)
    n_risk = len(rows) - n_over
    counts = ", ".join(part for part in (f"{n_over} now overdue" if n_over else "",
                                         f"{n_risk} now at risk" if n_risk else "") if part)
    subject = f"[reviews] Statutory timeliness as of {_long_date(as_of)}: {counts}"
    by_stage: dict[tuple[str, str], int] = {}
    for r in rows:
        by_stage[(r["status"], r["stage"])] = by_stage.get((r["status"], r["stage"]), 0) + 1
    summary = [_stage_sentence(n, stage, status, cfg.at_risk_days(stage)) + "."
               for (status, stage), n in sorted(by_stage.items(), key=lambda kv: (
                   ALERT_STATUSES[::-1].index(kv[0][0]), STAGES.index(kv[0][1]) if kv[0][1] in STAGES else 99))]
    many = len(rows) != 1
    intro = (f"As of {_long_date(as_of)}, {len(rows)} case{'s' if many else ''} "
             f"need{'' if many else 's'} attention:")
    next_steps = [
        "Ask the partnership concerned to complete the overdue stages, or to send the date each was done "
        "if it has been (its next return then closes the case).",
        "For a case at risk, check with the partnership that it will be done by its due date.",
        "Cases that are done or back on track are not told again; a case at risk that becomes overdue is told once more.",
    ]
    if any(r.get("notes") for r in rows):
        next_steps.insert(0, "Where a case says its latest return row was rejected or flagged, ask the partnership to "
                             "correct and resend that row first: the status shown is from the data that could be used.")
    cases = [{"partnership": names.get(r["partnership_code"], r["partnership_code"]),
              "stage": STAGE_NAMES.get(r["stage"], r["stage"]), "record_id": r["record_id"],
              "status": r["status"], "due": _long_date(r["due_date"]), "left": _left_words(r["working_days_left"]),
              "notes": list(r.get("notes") or ())}
             for r in rows]
    windows = {stage: cfg.at_risk_days(stage) for stage in dict.fromkeys(r["stage"] for r in rows
                                                                          if r["status"] == "open_at_risk")}
    if len(set(windows.values())) <= 1:
        risk_caption = f"Cases due within {next(iter(windows.values()), cfg.at_risk_days('notification'))} working days"
    else:
        risk_caption = "Cases due within their stage's window (" + ", ".join(
            f"{STAGE_NOUNS.get(s, (s,))[0]} {n}" for s, n in windows.items()) + " working days)"
    groups = [{"heading": f"{heading} ({len(mine)})", "caption": caption, "cases": mine}
              for status, heading, caption in (
                  ("open_overdue", "Overdue", "Cases past their statutory due date, oldest due first"),
                  ("open_at_risk", "At risk", f"{risk_caption}, soonest first"))
              for mine in [[c for c in cases if c["status"] == status]] if mine]
    context = {"subject": subject, "banner": f"{cfg.region_name or 'Regional'} business unit: statutory timeliness",
               "heading": f"Statutory timeliness as of {_long_date(as_of)}", "intro": intro, "summary": summary,
               "next_steps": next_steps, "groups": groups, "privacy": PRIVACY_NOTE, "status_url": status_url,
               "header": ("Partnership", "Stage", "Case reference", "Due date", "Working days left")}
    html = templates().get_template("alert_timeliness.html.j2").render(context)
    text = templates().get_template("alert_timeliness.txt.j2").render(context)
    return Message(to=tuple(to), subject=subject, html=html, text=text)


# --------------------------------------------------------------------------------------------
# Sending


def send_alerts(
    engine: Engine,
    cfg: Config,
    transport: Transport,
    as_of: date,
    report: AlertReport | None = None,
    *,
    max_attempts: int = 5,
    clock: Clock = audit_now,
    status_url: str | None = None,
) -> AlertReport:
    """Send one email listing every `pending` row (and `failed` ones with attempts left) that is
    still the case's status as of as_of; withdraw the others. Rows left `sending` by an earlier
    run are reported as unconfirmed, never resent."""
    report = report or AlertReport(as_of.isoformat())
    a = wh.timeliness_alerts.c
    with engine.begin() as conn:
        rows = [dict(r) for r in conn.execute(
            select(wh.timeliness_alerts)
            .where(or_(a.send_status.in_((PENDING, SENDING)), and_(a.send_status == FAILED, a.attempt < max_attempts)))
            .order_by(a.alert_id)
        ).mappings()]
        report.unconfirmed = sum(r["send_status"] == SENDING for r in rows)
        candidates = [r for r in rows if r["send_status"] != SENDING]
        todo = _withdraw_stale(conn, as_of, candidates)
        gave_up = conn.execute(select(func.count()).select_from(wh.timeliness_alerts).where(
            a.send_status == FAILED, a.attempt >= max_attempts)).scalar_one()
    if gave_up:
        report.problems.append(f"{gave_up} alert(s) failed {max_attempts} times and are no longer retried; "
                               "see timeliness_alerts (send_status 'failed')")
    report.withdrawn += len(candidates) - len(todo)
    for r in rows:
        if r["send_status"] == SENDING:
            report.problems.append(
                f"alert {r['alert_id']} left 'sending' at attempt {r['attempt']} via {r['transport']} "
                f"(Message-ID {r['message_ref']}); check the mail server's log, then "
                f"resolve_unconfirmed(message_ref=..., delivered=...)")
    if not todo:
        return report

    notes = data_notes(engine, todo)
    todo = [{**r, "notes": notes.get((r["partnership_code"], r["stage"], r["record_id"]), [])} for r in todo]
    allowed, refused = check_recipients(cfg.business_unit_email, cfg.allowed_domains)
    for _addr, why in refused:
        report.problems.append(f"business unit address refused: {why}")
    if not allowed:
        report.problems.append("no allowed business unit address to send alerts to; left pending")
        return report
    try:
        out = ledger.send_once(engine, wh.timeliness_alerts, "alert_id", todo, transport, cfg.sender,
                               lambda rows: alert_message(rows, cfg, as_of, allowed, status_url), clock)
    except MailError as exc:
        report.problems.append(f"alert email not built: {describe_error(exc)}")
        return report
    if out.status == "unconfirmed":
        report.unconfirmed += len(out.rows)
        report.problems.append(f"alert email (Message-ID {out.ref}): {out.error}")
    elif out.status == "failed":
        report.failed += len(out.rows)
        report.problems.append(f"alert email not sent: {out.error}")
    elif out.status == "sent":
        report.emails, report.listed, report.message_ref = 1, len(out.rows), out.ref
    return report


def run_alerts(
    engine: Engine,
    cfg: Config,
    transport: Transport | None,
    as_of: date,
    *,
    send: bool = True,
    skip_reason: str | None = None,
    clock: Clock = audit_now,
    status_url: str | None = None,
) -> AlertReport:
    """Record and send the alerts for as_of; with send=False only count (nothing is written).
    `status_url`: the status page's address, linked from the email when known."""
    report = AlertReport(as_of.isoformat())
    if not send or transport is None:
        current = current_alert_rows(engine, as_of)
        report.at_risk = sum(r["status"] == "open_at_risk" for r in current)
        report.overdue = len(current) - report.at_risk
        report.skipped = skip_reason or "sending not asked for"
        return report
    record_alerts(engine, as_of, report, clock=clock)
    return send_alerts(engine, cfg, transport, as_of, report, clock=clock, status_url=status_url)


def resolve_unconfirmed(engine: Engine, message_ref: str, *, delivered: bool, note: str = "",
                        clock: Clock = audit_now) -> int:
    """An analyst's verdict on an alert email left `sending`: delivered -> sent; not -> failed
    (sent again by the next run). Returns the number of rows changed."""
    a = wh.timeliness_alerts.c
    verdict = "confirmed delivered by an analyst" if delivered else "confirmed NOT delivered by an analyst"
    values: dict[str, Any] = {"send_status": SENT if delivered else FAILED,
                              "error": f"{verdict}{': ' + ' '.join(note.split()) if note else ''}"}
    if delivered:
        values["sent_at"] = clock()
    with engine.begin() as conn:
        res = conn.execute(update(wh.timeliness_alerts)
                           .where(a.message_ref == message_ref, a.send_status == SENDING).values(**values))
    if res.rowcount == 0:
        raise ValueError(f"no timeliness alert with Message-ID {message_ref!r} is in status 'sending'")
    return res.rowcount
