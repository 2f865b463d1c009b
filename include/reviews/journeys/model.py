"""What a case journey is made of: its stages in order, their statuses, and the words for them.

A stage's status is a timeliness status when the stage has a statutory timescale (it is read from
the `timeliness` row) and otherwise one of `done`, `waiting` or `delayed`: a Panel response or a
reviewer's appointment has no statutory due date, so it can only have happened or not. Keeping
one vocabulary for both lets the tracker filter every stage the same way.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

STAGES = ("notification", "rapid_review", "decision", "panel_response", "commissioning", "delay", "completion",
          "final_report", "publication")
STAGE_WORDS = {
    "notification": "Notification to the Panel",
    "rapid_review": "Rapid review",
    "decision": "Decision",
    "panel_response": "Panel's response",
    "commissioning": "Reviewer commissioned",
    "delay": "Delay",
    "completion": "Review completed",
    "final_report": "Final report sent to the Panel and Secretary of State",
    "publication": "Published",
}
# The statutory stages of `timeliness` each journey stage reads its status from (by record).
TIMELINESS_STAGE = {"notification": "notification", "rapid_review": "rapid_review",
                    "completion": "lcspr_completion", "final_report": "publication_notice"}

OPEN = ("open_on_track", "open_at_risk", "open_overdue")
DONE, WAITING, DELAYED, CLOSED = "done", "waiting", "delayed", "closed"
STATUSES = ("met", "late", *OPEN, DONE, WAITING, DELAYED, "not_applicable", "unknown")
STATUS_WORDS = {"met": "met", "late": "late", "open_on_track": "open, on track", "open_at_risk": "open, at risk",
                "open_overdue": "open, overdue", DONE: "done", WAITING: "waiting", DELAYED: "delayed",
                "not_applicable": "not applicable", "unknown": "unknown", CLOSED: "closed"}
FINISHED = ("met", "late", DONE, "not_applicable")  # nothing more to wait for at that stage
AWAITED = (*OPEN, WAITING)  # the case waits on it

DECISIONS = ("lcspr", "national_review", "other_review", "none", "pending")
DECISION_WORDS = {"lcspr": "LCSPR", "national_review": "national review recommended", "other_review": "other review",
                  "none": "no further review", "pending": "not decided yet"}
# A rapid review's outcome, or failing that its practice review's type, as the decision.
OUTCOME_DECISION = {"lcspr": "lcspr", "national_review_recommended": "national_review",
                    "other_review": "other_review", "no_further_review": "none"}
REVIEW_TYPE_DECISION = {"lcspr": "lcspr", "national": "national_review", "local_multi_agency": "other_review",
                        "single_agency": "other_review"}
REVIEW_TYPE_WORDS = {"lcspr": "LCSPR", "national": "national review", "local_multi_agency": "local multi-agency review",
                     "single_agency": "single-agency review"}
PANEL_DECISION_WORDS = {"agree": "agreed", "disagree": "disagreed", "national_review": "national review"}
DELAY_WORDS = {"criminal_proceedings": "criminal proceedings", "parallel_process": "a parallel process",
               "family_engagement": "engaging the family", "capacity": "capacity", "other": "another reason"}
NOT_PUBLISHED_WORDS = {"child_welfare": "the welfare of the child or family", "legal_advice": "legal advice",
                       "other": "another reason"}


@dataclass
class Stage:
    """One stage of a journey. `due` only where a timescale sets one; `left`: working days from
    the as-of day to `due` while the stage is open (negative when overdue)."""

    stage: str
    status: str
    due: date | None = None
    done: date | None = None
    left: int | None = None
    detail: str = ""  # what happened, in words (reviewer named, the Panel's decision, the delay's reason)
    reason: str | None = None  # why a status is unknown (from timeliness), in words

    def to_json(self) -> dict[str, Any]:
        return {"stage": self.stage, "status": self.status, "due_date": _iso(self.due), "done_date": _iso(self.done),
                "working_days_left": self.left, "detail": self.detail, "reason": self.reason}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Stage:
        return cls(d["stage"], d["status"], _day(d.get("due_date")), _day(d.get("done_date")),
                   d.get("working_days_left"), d.get("detail") or "", d.get("reason"))


@dataclass
class Journey:
    """A case as of a day: its records' ids (case references, never a child's key), its stages,
    where it is now, and what contradicts itself."""

    partnership_code: str
    case_id: str  # the notification_id, or the review_id of a review with no notification
    as_of: date
    rapid_review_id: str | None = None
    review_id: str | None = None
    decision: str = "pending"
    stages: list[Stage] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    flags: int = 0  # current row_flags of the case's records
    rejected: int = 0  # unresolved quarantined rows of the case's records

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.stage == name), None)

    def current(self) -> Stage | None:
        """The stage the case waits on: the first one awaited (a Panel response only blocks a
        national review, which the Panel decides); else the first unknown; None when closed."""
        for s in self.stages:
            if s.status in AWAITED and (s.stage != "panel_response" or self.decision == "national_review"):
                return s
        return next((s for s in self.stages if s.status == "unknown"), None)

    def next_due(self) -> Stage | None:
        """The open stage due first (overdue ones come first)."""
        dated = [s for s in self.stages if s.status in OPEN and s.due is not None]
        return min(dated, key=lambda s: s.due) if dated else None

    def to_row(self) -> dict[str, Any]:
        """The `case_journeys` row."""
        now, due = self.current(), self.next_due()
        last = next((s for s in reversed(self.stages) if s.status != "not_applicable"), None)
        return {
            "partnership_code": self.partnership_code, "notification_id": self.case_id, "as_of_date": self.as_of,
            "rapid_review_id": self.rapid_review_id, "review_id": self.review_id,
            "current_stage": (now or last or self.stages[0]).stage, "current_status": now.status if now else CLOSED,
            "next_due_date": due.due if due else None, "working_days_left": due.left if due else None,
            "decision": self.decision, "stages_json": json.dumps([s.to_json() for s in self.stages]),
            "findings": "\n".join(self.findings) or None, "flags": self.flags, "rejected": self.rejected,
        }


def stages_from_json(text: str | None) -> list[Stage]:
    return [Stage.from_json(d) for d in json.loads(text or "[]")]


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None
