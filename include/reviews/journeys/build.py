"""Build every case's journey as of a day.

Inputs: the case tables (never `child_key`: a journey carries case references only), that day's
`timeliness` rows, current `row_flags` and unresolved `quarantine` rows. The statutory stages
(notification, rapid review, LCSPR completion, the publication notice behind "final report sent")
take their status, due date and reason from `timeliness`, so the journey and the alerts never
disagree; the other stages have no statutory due date and are `done` or `waiting`.

Which records make a case: a notification, its rapid review (the earliest completed, when a
partnership restated it under another id), and its practice review (an LCSPR first, then a
national, local multi-agency or single-agency review; any others are named on the decision
stage). A practice review with no notification, or whose notification is not loaded, is a case of
its own keyed by its review id. As for timeliness, a case whose clock starts after the as-of day is
left out, and a date after it has not happened yet.
"""
from __future__ import annotations

import json
from collections import defaultdict
from datetime import date
from functools import lru_cache

from sqlalchemy import func, select

from reviews.core import warehouse as wh
from reviews.core.config import Config
from reviews.core.working_days import working_days_between
from reviews.journeys.findings import case_findings
from reviews.journeys.model import (
    DECISION_WORDS,
    DELAY_WORDS,
    DELAYED,
    DONE,
    NOT_PUBLISHED_WORDS,
    OPEN,
    OUTCOME_DECISION,
    PANEL_DECISION_WORDS,
    REVIEW_TYPE_DECISION,
    REVIEW_TYPE_WORDS,
    WAITING,
    Journey,
    Stage,
)

NOTIFICATION_COLUMNS = ("partnership_code", "notification_id", "incident_date", "aware_date", "notified_date")
RAPID_REVIEW_COLUMNS = ("partnership_code", "rapid_review_id", "notification_id", "completed_date", "outcome",
                        "panel_response_date", "panel_decision")
PRACTICE_REVIEW_COLUMNS = ("partnership_code", "review_id", "notification_id", "review_type", "decision_date", "author",
                           "completed_date", "final_report_sent_date", "published_date", "delay_reason",
                           "not_published_reason", "improvements_published_date", "status")
REVIEW_PRIORITY = {"lcspr": 0, "national": 1, "local_multi_agency": 2, "single_agency": 3}
PUBLISHED_TYPES = ("lcspr", "national")  # reviews whose report goes to the Panel and is published


class _Inputs:
    """Everything one day's journeys are built from, read once."""

    def __init__(self, conn, as_of: date):
        self.as_of = as_of
        self.notifications = _rows(conn, wh.notifications, NOTIFICATION_COLUMNS)
        self.rapid_reviews = _rows(conn, wh.rapid_reviews, RAPID_REVIEW_COLUMNS)
        self.practice_reviews = _rows(conn, wh.practice_reviews, PRACTICE_REVIEW_COLUMNS)
        t = wh.timeliness.c
        self.timeliness = {(r.partnership_code, r.stage, r.record_id): r for r in conn.execute(
            select(t.partnership_code, t.stage, t.record_id, t.due_date, t.completed_date, t.status, t.reason)
            .where(t.as_of_date == as_of))}
        f = wh.row_flags.c
        self.flags = {(p, d, r): n for p, d, r, n in conn.execute(
            select(f.partnership_code, f.dataset, f.record_id, func.count())
            .where(f.superseded_by_file_id.is_(None)).group_by(f.partnership_code, f.dataset, f.record_id))}
        self.rejected, self.rejected_naming = _unresolved(conn)


def _rows(conn, table, columns) -> list:
    keys = [c for c in table.primary_key.columns]
    return conn.execute(select(*(table.c[c] for c in columns)).order_by(*keys)).all()


def _unresolved(conn) -> tuple[dict[tuple[str, str, str], int], dict[tuple[str, str], list[tuple[str, str]]]]:
    """Unresolved quarantined rows: counts per (partnership, dataset, record id), and per
    (partnership, notification id) the (dataset, record id) of each rejected rapid or practice
    review row naming it: its record may never have loaded, and the case should still say that
    its latest row was rejected."""
    q = wh.quarantine.c
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    named: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for p, dataset, record, raw in conn.execute(
            select(q.partnership_code, q.dataset, q.record_id, q.raw_values).where(q.resolved_by_file_id.is_(None))):
        if record:
            counts[(p, dataset, record)] += 1
        if dataset in ("rapid_reviews", "practice_reviews"):
            try:
                nid = json.loads(raw or "{}").get("notification_id")
            except (ValueError, AttributeError):
                nid = None
            if isinstance(nid, str) and nid.strip():
                named[(p, nid.strip())].append((dataset, record))
    return counts, named


def build_journeys(engine, cfg: Config, as_of: date) -> list[Journey]:
    """Every case's journey as of `as_of` (timeliness must have been judged as of that day),
    ordered by partnership and case id."""
    with engine.connect() as conn:
        data = _Inputs(conn, as_of)
    return journeys_from(data, cfg)


def journeys_from(data: _Inputs, cfg: Config) -> list[Journey]:
    as_of = data.as_of

    @lru_cache(maxsize=None)
    def left(due: date) -> int:
        return working_days_between(as_of, due)

    rrs, prs = defaultdict(list), defaultdict(list)
    for r in data.rapid_reviews:
        rrs[(r.partnership_code, r.notification_id)].append(r)
    for r in data.practice_reviews:
        prs[(r.partnership_code, r.notification_id)].append(r)
    known = {(n.partnership_code, n.notification_id) for n in data.notifications}
    out = []
    for n in data.notifications:
        key = (n.partnership_code, n.notification_id)
        if not any((n.partnership_code, s, n.notification_id) in data.timeliness for s in ("notification", "rapid_review")):
            continue  # its clock starts after as_of (timeliness left it out)
        out.append(_journey(data, cfg, left, n.partnership_code, n.notification_id, n, rrs.get(key, []),
                            prs.get(key, [])))
    for (p, nid), reviews in prs.items():
        if nid and (p, nid) in known:
            continue
        for r in reviews:  # no notification (or one not loaded): each review is its own case
            if _seen(r.decision_date, as_of) is not None:
                out.append(_journey(data, cfg, left, p, r.review_id, None, [], [r]))
    out.sort(key=lambda j: (j.partnership_code, j.case_id))
    return out


def _seen(d: date | None, as_of: date) -> date | None:
    """A date that has happened as of `as_of` (a later one is not yet)."""
    return d if d is not None and d <= as_of else None


def _timed(data: _Inputs, left, stage: str, p: str, t_stage: str, record: str, detail: str = "") -> Stage | None:
    """A statutory stage as the day's timeliness row judged it (None: no row)."""
    t = data.timeliness.get((p, t_stage, record))
    if t is None:
        return None
    days = left(t.due_date) if t.status in OPEN and t.due_date is not None else None
    return Stage(stage, t.status, t.due_date, t.completed_date, days, detail, t.reason)


def _journey(data: _Inputs, cfg: Config, left, p: str, case_id: str, n, rr_rows: list, pr_rows: list) -> Journey:
    as_of = data.as_of
    rr = min(rr_rows, key=lambda r: (r.completed_date is None, r.completed_date or as_of, r.rapid_review_id)) \
        if rr_rows else None
    ordered = sorted(pr_rows, key=lambda r: (REVIEW_PRIORITY.get(r.review_type, 9), r.decision_date or as_of, r.review_id))
    pr = ordered[0] if ordered else None
    j = Journey(p, case_id, as_of, rapid_review_id=rr.rapid_review_id if rr else None,
                review_id=pr.review_id if pr else None)
    outcome = OUTCOME_DECISION.get(rr.outcome) if rr is not None and rr.outcome else None
    j.decision = outcome or (REVIEW_TYPE_DECISION.get(pr.review_type) if pr is not None else None) or "pending"
    j.stages = [
        _notification(data, left, p, n),
        _rapid_review(data, left, p, n, rr),
        _decision(j.decision, rr, pr, ordered[1:], outcome is not None, as_of, data, p, n),
        _panel_response(rr, as_of),
        _commissioning(j.decision, pr, cfg),
        _delay(pr, as_of),
        _completion(data, left, j.decision, pr, p),
        _final_report(data, left, j.decision, pr, p),
        _publication(j.decision, pr, as_of),
    ]
    records = [("notifications", case_id if n is not None else None)] + \
        [("rapid_reviews", r.rapid_review_id) for r in rr_rows] + [("practice_reviews", r.review_id) for r in pr_rows]
    j.flags = sum(data.flags.get((p, ds, rid), 0) for ds, rid in records if rid)
    j.rejected = sum(data.rejected.get((p, ds, rid), 0) for ds, rid in records if rid)
    if n is not None:  # rejected rows naming the notification whose record is not one of the case's
        j.rejected += sum(1 for ds_rid in data.rejected_naming.get((p, case_id), ()) if ds_rid not in records)
    j.findings = case_findings(cfg, as_of, n is not None, rr_rows, pr_rows)
    return j


def _notification(data, left, p, n) -> Stage:
    if n is None:
        return Stage("notification", "not_applicable", detail="no notification (a review below the notification threshold)")
    s = _timed(data, left, "notification", p, "notification", n.notification_id)
    if s is None:
        return Stage("notification", "unknown", reason="not judged as of this day")
    s.detail = f"notified {s.done:%d %b %Y}" if s.done else "not notified yet"
    return s


def _rapid_review(data, left, p, n, rr) -> Stage:
    if n is None:
        return Stage("rapid_review", "not_applicable", detail="no notification, so no rapid review")
    s = _timed(data, left, "rapid_review", p, "rapid_review", n.notification_id)
    if s is None:
        return Stage("rapid_review", "unknown", reason="not judged as of this day")
    s.detail = (f"{rr.rapid_review_id}, sent to the Panel {s.done:%d %b %Y}" if rr is not None and s.done
                else f"{rr.rapid_review_id}, not sent yet" if rr is not None else "no rapid review recorded yet")
    return s


def _decision(decision, rr, pr, others, from_outcome, as_of, data, p, n) -> Stage:
    extra = "; also " + ", ".join(f"{REVIEW_TYPE_WORDS.get(r.review_type, r.review_type)} {r.review_id}"
                                  for r in others) if others else ""
    if decision == "pending":
        rr_done = rr is not None and _seen(rr.completed_date, as_of) is not None
        if rr_done:
            return Stage("decision", "unknown", done=None, detail="the rapid review gives no outcome" + extra,
                         reason="the rapid review was sent to the Panel with no outcome")
        return Stage("decision", WAITING, detail="decided at the end of the rapid review" + extra)
    when = _seen(rr.completed_date, as_of) if from_outcome else _seen(pr.decision_date, as_of) if pr is not None else None
    source = "the rapid review's outcome" if from_outcome else "the review's type"
    return Stage("decision", DONE, done=when, detail=f"{DECISION_WORDS[decision]} ({source}){extra}")


def _panel_response(rr, as_of) -> Stage:
    if rr is None or _seen(rr.completed_date, as_of) is None:
        return Stage("panel_response", "not_applicable", detail="after the rapid review is sent")
    responded = _seen(rr.panel_response_date, as_of)
    if responded is None:
        return Stage("panel_response", WAITING, detail="no response from the Panel recorded yet")
    said = PANEL_DECISION_WORDS.get(rr.panel_decision or "", "decision not recorded")
    return Stage("panel_response", DONE, done=responded, detail=f"the Panel {said}" if rr.panel_decision else said)


def _commissioning(decision, pr, cfg: Config) -> Stage:
    if pr is None:
        if decision == "lcspr":
            return Stage("commissioning", WAITING, detail="no LCSPR record yet")
        return Stage("commissioning", "not_applicable")
    kind = REVIEW_TYPE_WORDS.get(pr.review_type, pr.review_type)
    if not (pr.author or "").strip():
        return Stage("commissioning", WAITING, detail=f"{kind} {pr.review_id}: reviewer not yet named")
    listed = pr.review_type != "lcspr" or pr.author.strip() in cfg.approved_authors
    return Stage("commissioning", DONE, detail=f"{kind} {pr.review_id}: reviewer named"
                 + ("" if listed else " (not on the regional list of approved authors)"))


def _delay(pr, as_of) -> Stage:
    if pr is None or not pr.delay_reason:
        return Stage("delay", "not_applicable")
    why = DELAY_WORDS.get(pr.delay_reason, pr.delay_reason)
    if _seen(pr.completed_date, as_of) is not None:
        return Stage("delay", DONE, detail=f"was delayed by {why}")
    return Stage("delay", DELAYED, detail=f"delayed by {why}")


def _completion(data, left, decision, pr, p) -> Stage:
    if pr is None:
        return Stage("completion", WAITING if decision == "lcspr" else "not_applicable",
                     detail="no LCSPR record yet" if decision == "lcspr" else "")
    s = _timed(data, left, "completion", p, "lcspr_completion", pr.review_id) if pr.review_type == "lcspr" else None
    done = _seen(pr.completed_date, data.as_of)
    if s is None:
        s = Stage("completion", DONE if done else WAITING, done=done)
    s.detail = f"completed {s.done:%d %b %Y}" if s.done else "not completed yet"
    return s


def _final_report(data, left, decision, pr, p) -> Stage:
    sent = _seen(pr.final_report_sent_date, data.as_of) if pr is not None else None
    if pr is None or (pr.review_type not in PUBLISHED_TYPES and sent is None
                      and _seen(pr.published_date, data.as_of) is None):
        return Stage("final_report", WAITING if pr is None and decision == "lcspr" else "not_applicable")
    s = _timed(data, left, "final_report", p, "publication_notice", pr.review_id)
    if s is None or s.status == "not_applicable":  # judged once published; until then, sent or not
        s = Stage("final_report", DONE if sent else WAITING, done=sent)
    s.detail = f"sent {sent:%d %b %Y}" if sent else "not sent yet"
    return s


def _publication(decision, pr, as_of) -> Stage:
    if pr is None:
        return Stage("publication", WAITING if decision == "lcspr" else "not_applicable")
    published = _seen(pr.published_date, as_of)
    if published:
        return Stage("publication", DONE, done=published, detail="published")
    instead = _seen(pr.improvements_published_date, as_of)
    why = NOT_PUBLISHED_WORDS.get(pr.not_published_reason or "", "")
    reason = f" because of {why}" if why else ""
    if instead:
        return Stage("publication", DONE, done=instead, detail=f"not published{reason}; improvements published instead")
    if pr.status == "not_published" or pr.not_published_reason:
        return Stage("publication", WAITING, detail=f"not to be published{reason}; improvements not published yet")
    if pr.review_type not in PUBLISHED_TYPES:
        return Stage("publication", "not_applicable")
    return Stage("publication", WAITING, detail="not published yet")
