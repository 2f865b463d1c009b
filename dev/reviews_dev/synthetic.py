"""Seeded synthetic partnership returns, written into an inbox exactly as partnerships send them.

Why: the demo, the DAG tests and the ingest tests need returns that behave like the real thing
(each partnership's own headers, date format and words for codes, XLSX quirks, cumulative
quarterly restatements, a known set of faults) without going near real case data. Nothing here
describes a real child, family, practitioner or review: ids, names and postcodes are made up.

Volumes. Realistic is about 3 serious incident notifications per partnership per year
(docs/domain.md; Liverpool about twice that, see VOLUME_WEIGHT): single digits, which is why small-number
suppression matters. `inflate` multiplies every volume; the demo and the default use 10 so that
tables, charts and timeliness have enough rows to look at (about 30 notifications a year per
partnership, 60 for Liverpool). Use inflate=1 to see what suppression does to realistic numbers.

The story of each case is drawn once (true dates), then every quarterly return shows it AS KNOWN
at that quarter end: later dates are blank, codes that depend on them (outcome, panel decision,
status, action status) are as they stood. A return restates every case whose story is not over
(a story ends with its last event: the Panel's response when there is no review, otherwise
publication or the decision not to publish and the last learning action closed), plus those that
changed during the quarter. Cases drawn in the year before `start` are the backlog a partnership
carries into its first return (only the ones still open appear).

What the stories show the business unit (issue 16), all drawn from the seed:
  - rapid reviews late about a quarter of the time (notifications about one in seven);
  - LCSPR authors: blank while commissioned (the reviewer not yet appointed), for some LCSPRs
    still blank for months after the review is in progress, and a few written as reviewers who
    are not on the regional approved list;
  - delays with a reason (template column delay_reason: criminal proceedings, a parallel process,
    family engagement, capacity, other) for some LCSPRs, known a few months into the review;
  - reviews not published, with not_published_reason and, usually, improvements_published_date;
  - learning actions due in the future (a due date is a plan: it is returned as soon as the
    action is agreed, PLANNED_COLUMNS), most done on time and some late;
  - rapid reviews whose outcome is an LCSPR but whose LCSPR record the partnership sends months
    later (LATE_LISTED_SHARE), and at least one with no LCSPR record yet in the last return;
  - with fault_rate > 0, a rapid review whose completed_date, returned earlier as a date, is
    written `n/a` in a later return (the last one: it is still so at the end), logged as an
    `unparseable_date` fault;
  - with late_and_missing_returns=True (the demo), returns dated after their due date and a
    return never sent (the next return then restates what the missing one would have). The
    last two returns are always on time, so the latest period's bulletins can be built.

Faults (FAULT_KINDS) are injected at write time into about `fault_rate` of rows, one per row, and
only into rows whose record the next return restates (or rows of the last return), so the next
return restates the same record cleanly, as a corrected return would (a flagged row is loaded with
its bad cell blank: a fault on a record's last appearance would never be corrected):
  missing_required_date  blank aware_date (notifications) or decision_date (practice_reviews)
  aware_after_notified   aware_date and notified_date swapped (notifications)
  unknown_incident_type  "accident", "near miss" (notifications)
  duplicate_id           a near copy of a row, same notification_id, just below it (notifications)
  unknown_theme          "weather", "see notes" (learning)
  unparseable_date       "31/02/yyyy", "30/02/yyyy" or "n/a" in any date column (all datasets)
  age_out_of_range       19 or 21 (notifications)
Every fault is listed in `GenerationReport.fault_log` with its file, 1-based data row (the header
is line/row 1, so data row n is line/row n + 1), record id and column. With fault_rate > 0 each
kind appears at least once when the returns hold a row it fits.

CLI: python -m reviews_dev.synthetic --inbox DIR --start 2023-10-01 --end 2026-09-30 --seed 2024 --inflate 10
     [--late-and-missing]
"""
from __future__ import annotations

import argparse
import csv
import gc
import io
import random
import re
import sys
import zipfile
from bisect import bisect, bisect_left, bisect_right
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from itertools import accumulate
from pathlib import Path
from typing import Any

from reviews.core.config import Config, load_config
from reviews.core.template import DATASETS, DATASET_ORDER
# The one calendar, so synthetic lateness matches timeliness.
from reviews.core.working_days import CALENDAR_START, working_day_index
from reviews.core.working_days import add_working_days as _calendar_add_working_days

BASE_NOTIFICATIONS_PER_YEAR = 3.0  # per partnership, before `inflate` (docs/domain.md)
BASE_LOCAL_REVIEWS_PER_YEAR = 0.7  # local multi-agency and single-agency reviews, before `inflate`
VOLUME_WEIGHT = {"liverpool": 2.0}  # relative size; partnerships not listed weigh 1
RETURN_LAG_DAYS = 10  # a return is dated this many days after its quarter end
BACKLOG_DAYS = 365  # cases drawn this long before `start`, so the first return has open work
XLSX_TEXT_DATE_SHARE = 0.08  # share of XLSX date cells typed as text rather than real dates
THEME_WORD_SHARE = 0.25  # share of learning themes written in the partnership's own words
EXTRA_HEADERS = ("Child Name", "Home Postcode")  # non-template columns ingest must drop

FAULT_KINDS = (
    "missing_required_date",
    "aware_after_notified",
    "unknown_incident_type",
    "duplicate_id",
    "unknown_theme",
    "unparseable_date",
    "age_out_of_range",
)

OWNER_AGENCIES = ("police", "health", "children's social care", "education")
REVIEWERS = tuple(f"Independent reviewer {c} (regional list)" for c in "ABCDEFGH")
# Reviewers a partnership engaged who are not (yet) on the regional approved list (config approved_authors).
UNLISTED_REVIEWERS = ("Independent reviewer J", "Independent reviewer K")
UNLISTED_AUTHOR_SHARE = 0.06  # LCSPRs written by an unlisted reviewer
LATE_AUTHOR_SHARE = 0.2  # LCSPRs in progress for months before the reviewer's name is returned
# Why an LCSPR is delayed (template delay_reason), and how often; None: not delayed.
DELAY_REASONS = ((None, 62), ("criminal_proceedings", 14), ("parallel_process", 8), ("family_engagement", 6),
                 ("capacity", 8), ("other", 2))
NOT_PUBLISHED_REASONS = (("child_welfare", 60), ("legal_advice", 30), ("other", 10))
IMPROVEMENTS_PUBLISHED_SHARE = 0.75  # of reviews not published, those whose improvements are published instead
LATE_LISTED_SHARE = 0.05  # LCSPRs chosen at rapid review whose record first comes months later
PLANNED_COLUMNS = frozenset({"action_due_date"})  # dates returned before they come (as quality.PLANNED_DATES)
LATE_RETURN_SHARE, MISSING_RETURN_SHARE = 0.12, 0.03  # with late_and_missing_returns, per return
LATE_RETURN_DAYS = (3, 40)  # a late return is dated this many days after its due date
ON_TIME_LAST_RETURNS = 2  # the last returns are never late or missing
METHODOLOGIES = {
    "lcspr": (
        "Significant Incident Learning Process (SILP)",
        "Systems approach (Learning Together)",
        "Hybrid: practitioner event and chronology",
        "Appreciative inquiry",
    ),
    "local_multi_agency": ("Multi-agency practitioner learning event", "Rapid multi-agency audit"),
    "single_agency": ("Single-agency case review", "Internal management review"),
    "national": ("National review by the Panel",),
}
ETHNICITIES = (
    ("White British", 78), ("White Other", 4), ("Mixed", 6), ("Asian or Asian British", 3),
    ("Black or Black British", 4), ("Other ethnic group", 2), ("Not recorded", 3),
)
POSTCODE_AREAS = {
    "knowsley": ("L28", "L34", "L35", "L36"),
    "liverpool": ("L1", "L4", "L6", "L8", "L11", "L15", "L24"),
    "sefton": ("L20", "L21", "L30", "PR8", "PR9"),
    "st_helens": ("WA9", "WA10", "WA11"),
    "wirral": ("CH41", "CH42", "CH44", "CH46", "CH49"),
}
# Heavier weights for themes the Panel reports most often; config themes not listed weigh 1.
THEME_WEIGHT = {
    "multi_agency_working": 4, "information_sharing": 4, "professional_curiosity": 3,
    "voice_of_child": 3, "risk_assessment": 3, "domestic_abuse": 2, "neglect": 2,
    "whole_family_assessment": 2, "parental_mental_health": 2, "parental_substance_misuse": 2,
    "men_in_childrens_lives": 2, "sudi_safer_sleep": 2, "vulnerability_of_babies": 2,
}
# The agency that usually owns an action on a theme (used most of the time, not always).
THEME_OWNER = {
    "domestic_abuse": "police", "criminal_exploitation": "police", "extrafamilial_harm": "police",
    "sudi_safer_sleep": "health", "vulnerability_of_babies": "health", "parental_mental_health": "health",
    "child_mental_health": "health", "parental_substance_misuse": "health",
    "children_not_in_school": "education", "young_carers": "education",
}
THEME_TEXT = {
    "information_sharing": (
        "Information held by one agency about risks in the household was not shared with others working with the family.",
        "Partners should agree a single route for sharing safeguarding concerns and audit its use.",
    ),
    "risk_assessment": (
        "Assessments focused on the presenting incident and did not consider how risks had built up over time.",
        "Children's social care should refresh assessment guidance so that history and cumulative risk are weighed.",
    ),
    "decision_making": (
        "Decisions to step down support were made without a multi-agency discussion.",
        "Step-down decisions should be made at a multi-agency meeting and recorded with reasons.",
    ),
    "professional_curiosity": (
        "Practitioners accepted explanations for injuries and absences without seeking further information.",
        "Training on professional curiosity should use examples drawn from local reviews.",
    ),
    "voice_of_child": (
        "The child was rarely seen alone and their wishes and feelings were not recorded.",
        "Agencies should record the child's own words at each contact and show how they shaped the plan.",
    ),
    "disguised_compliance": (
        "Parents appeared to engage with services, which masked a lack of change for the child.",
        "Supervision should test whether engagement has led to real improvement for the child.",
    ),
    "multi_agency_working": (
        "Agencies worked in parallel rather than together and no one held an overview of the child's needs.",
        "The partnership should clarify lead professional responsibilities when several agencies are involved.",
    ),
    "whole_family_assessment": (
        "Assessments did not include all adults living in or visiting the household.",
        "Assessment templates should prompt practitioners to identify every adult in the child's life.",
    ),
    "neglect": (
        "Signs of long-standing neglect were seen by several agencies but were not brought together.",
        "Partners should use the neglect screening tool consistently and share its results.",
    ),
    "domestic_abuse": (
        "Police call-outs for domestic abuse were not linked to the children living in the home.",
        "Domestic abuse notifications should reach schools and health visitors by the next working day.",
    ),
    "parental_mental_health": (
        "The effect of a parent's mental ill health on their capacity to care was not assessed.",
        "Adult mental health services should ask about children in the household at every review.",
    ),
    "parental_substance_misuse": (
        "Parental drug and alcohol use was known but its effect on supervision of the child was not explored.",
        "Substance misuse services should share concerns about parenting with children's services.",
    ),
    "child_mental_health": (
        "The young person waited a long time for emotional health support after disclosing self-harm.",
        "Health commissioners should review waiting times for young people at risk of self-harm.",
    ),
    "extrafamilial_harm": (
        "Risks outside the home were treated as the parents' responsibility alone.",
        "The partnership should develop a contextual safeguarding response for places where young people gather.",
    ),
    "criminal_exploitation": (
        "Frequent missing episodes were not recognised as signs of criminal exploitation.",
        "Return home interviews should be shared with the exploitation panel within an agreed time.",
    ),
    "vulnerability_of_babies": (
        "Bruising to a non-mobile baby was not referred for a child protection medical.",
        "All agencies should follow the bruising in non-mobile babies protocol without exception.",
    ),
    "sudi_safer_sleep": (
        "Safer sleep advice was given once but not revisited when family circumstances changed.",
        "Health visitors and midwives should repeat safer sleep conversations at each key contact.",
    ),
    "intrafamilial_child_sexual_abuse": (
        "Indicators of sexual abuse within the family were not explored with the child.",
        "Practitioners should be trained to recognise and respond to child sexual abuse in the family.",
    ),
    "disabled_children": (
        "Changes in the child's behaviour were put down to their disability without considering abuse.",
        "Assessments of disabled children should consider safeguarding explanations for changes in presentation.",
    ),
    "children_not_in_school": (
        "Elective home education removed the last professional who saw the child regularly.",
        "Education should check on children newly home educated who are known to services.",
    ),
    "race_ethnicity_culture": (
        "The family's cultural background was not explored and interpreters were not always used.",
        "Agencies should record language needs and book interpreters for every assessment visit.",
    ),
    "leadership_culture": (
        "High caseloads and staff turnover meant the family had several changes of worker.",
        "Leaders should monitor how often children on plans change worker.",
    ),
    "young_carers": (
        "The young person's caring role for a parent was not identified by school or health services.",
        "Schools should ask the young carers screening questions at enrolment and every year after.",
    ),
    "men_in_childrens_lives": (
        "The mother's partner was not assessed although he often cared for the baby.",
        "Practitioners should identify and engage every man who has a caring role for the child.",
    ),
    "escalation": (
        "Professional disagreements about thresholds were not escalated.",
        "The partnership should remind staff of the escalation policy and report on its use.",
    ),
}


class Raw(str):
    """A value written exactly as given (a fault): rendering must not reformat or translate it."""


@dataclass
class InjectedFault:
    """One deliberately broken cell or row, so tests can check ingest quarantines exactly these."""

    kind: str
    partnership: str
    dataset: str
    record_id: str
    column: str
    value: str
    path: Path | None = None
    row: int = 0  # 1-based data row (header excluded); spreadsheet row / CSV line is row + 1


@dataclass
class GenerationReport:
    """What was written, so callers and tests need not re-read the inbox to know."""

    inbox: Path
    seed: int
    inflate: int
    start: date
    end: date
    files: list[Path] = field(default_factory=list)
    rows: dict[str, dict[str, int]] = field(default_factory=dict)  # partnership -> dataset -> rows
    records: dict[str, dict[str, int]] = field(default_factory=dict)  # distinct ids per dataset
    faults: dict[str, int] = field(default_factory=dict)  # kind -> count
    fault_log: list[InjectedFault] = field(default_factory=list)
    return_dates: dict[str, list[date]] = field(default_factory=dict)  # the dates of the returns written
    extra_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    late_returns: dict[str, list[tuple[date, date]]] = field(default_factory=dict)  # (due date, date sent)
    missing_returns: dict[str, list[date]] = field(default_factory=dict)  # due dates of returns never sent
    # (partnership, rapid_review_id): the RR chose an LCSPR whose record the last return does not hold
    lcspr_not_listed: list[tuple[str, str]] = field(default_factory=list)

    def describe(self) -> str:
        """A few lines for the demo log and the CLI."""
        total_rows = sum(sum(d.values()) for d in self.rows.values())
        dates = sorted({d for ds in self.return_dates.values() for d in ds})
        span = f"{dates[0]}..{dates[-1]}" if dates else "none"
        lines = [
            f"Synthetic returns in {self.inbox}: {len(self.files)} files, {total_rows} rows, "
            f"{len(self.rows)} partnerships, return dates {span} "
            f"(seed {self.seed}, volumes x{self.inflate})",
        ]
        for code, per in self.rows.items():
            cases = self.records.get(code, {}).get("notifications", 0)
            parts = ", ".join(f"{ds} {n}" for ds, n in per.items())
            lines.append(f"  {code}: {cases} notifications; rows {parts}")
        faults = ", ".join(f"{k} {n}" for k, n in self.faults.items() if n)
        lines.append(f"Faults injected: {sum(self.faults.values())} ({faults or 'none'})")
        late = [f"{code} {sent} (due {due})" for code, pairs in self.late_returns.items() for due, sent in pairs]
        if late:
            lines.append(f"Late returns: {', '.join(late)}")
        missing = [f"{code} (due {due})" for code, dues in self.missing_returns.items() for due in dues]
        if missing:
            lines.append(f"Returns never sent: {', '.join(missing)}")
        if self.lcspr_not_listed:
            who = ", ".join(rid for _, rid in self.lcspr_not_listed)
            lines.append(f"Rapid reviews that chose an LCSPR with no LCSPR record in the last return: {who}")
        if self.extra_columns:
            who = ", ".join(self.extra_columns)
            cols = ", ".join(EXTRA_HEADERS)
            lines.append(f"Non-template columns ({cols}) in notifications from: {who}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- calendar


@lru_cache(maxsize=1)
def _working_day_tables() -> tuple[int, list[int], list[date]]:
    """The calendar's lookup tables (reviews.core.working_days.working_day_index) as Python lists."""
    before, days = working_day_index()
    return CALENDAR_START.item().toordinal(), before.tolist(), days.tolist()


def add_working_days(start: date, n: int) -> date:
    """reviews.core.working_days.add_working_days for one date: the generator asks for thousands of
    single dates, so it looks them up in the calendar's tables instead of going through numpy
    arrays; other inputs, and dates outside the calendar, go to the real function."""
    if type(start) is date and type(n) is int:
        first, before, days = _working_day_tables()
        i = start.toordinal() - first
        if 0 <= i < len(before) - 1:
            k = before[i] + n
            if 0 <= k < len(days):
                return days[k]
    return _calendar_add_working_days(start, n)


def _add_months(d: date, months: float) -> date:
    return d + timedelta(days=round(months * 30.44))


def return_schedule(start: date, end: date) -> list[tuple[date, date]]:
    """(quarter end, return date) for each quarter end in [start, end] whose return is due by `end`."""
    out = []
    q = _quarter_end(start)
    while q <= end:
        if q >= start and q + timedelta(days=RETURN_LAG_DAYS) <= end:
            out.append((q, q + timedelta(days=RETURN_LAG_DAYS)))
        q = _quarter_end(q + timedelta(days=1))
    return out


def _quarter_end(d: date) -> date:
    month = ((d.month - 1) // 3 + 1) * 3
    nxt = date(d.year + (month == 12), month % 12 + 1, 1)
    return nxt - timedelta(days=1)


# --------------------------------------------------------------------------- cases


@dataclass
class _Case:
    """One story: a notification with its rapid review, review and learning, or a local review."""

    start: date  # first day the partnership knows of it
    end: date  # its last event (date.max when something never finishes)
    notification: dict | None = None
    rapid_review: dict | None = None
    review: dict | None = None
    findings: list[dict] = field(default_factory=list)


@lru_cache(maxsize=1024)
def _cumulative(pairs: tuple) -> tuple[tuple, list, float]:
    """(values, cumulative weights, total) of (value, weight) pairs, worked out once per table."""
    values, weights = zip(*pairs)
    cum = list(accumulate(weights))
    return values, cum, cum[-1] + 0.0


def _weighted(rng: random.Random, pairs: tuple) -> Any:
    """rng.choices(values, weights)[0], drawn the same way (one rng.random()) without summing
    the weights again on every call."""
    values, cum, total = _cumulative(pairs)
    return values[bisect(cum, rng.random() * total, 0, len(cum) - 1)]


def _prefix(code: str) -> str:
    """'st_helens' -> 'STH': the partnership prefix of every synthetic id."""
    return re.sub(r"[^a-z]", "", code)[:3].upper()


def _child(rng: random.Random, code: str, used: set[int], number: int) -> dict:
    """A synthetic child: stable reference, display name and postcode for the extra columns."""
    while True:
        n = rng.randrange(1, 1_000_000)
        if n not in used:
            used.add(n)
            break
    area = rng.choice(POSTCODE_AREAS.get(code, ("L1",)))
    inward = f"{rng.randint(1, 9)}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}"
    pre = _prefix(code)
    return {"child_ref": f"{pre}-C-{n:06d}", "Child Name": f"Child {pre}-{number}", "Home Postcode": f"{area} {inward}"}


def _age(rng: random.Random) -> int:
    band = _weighted(rng, (((0, 0), 35), ((1, 5), 20), ((6, 10), 10), ((11, 15), 25), ((16, 17), 10)))
    return rng.randint(*band)


def _yes_no(rng: random.Random, p_yes: float, p_unknown: float = 0.05) -> str:
    r = rng.random()
    return "Y" if r < p_yes else "unknown" if r < p_yes + p_unknown else "N"


def _notification(rng: random.Random, aware: date, child: dict, age: int) -> dict:
    """The notification as it truly happened (ids are given later, in date order)."""
    incident = aware - timedelta(days=_weighted(rng, ((0, 70), (rng.randint(1, 3), 20), (rng.randint(4, 30), 10))))
    late = rng.random() < 0.15
    notified = add_working_days(aware, rng.randint(6, 12) if late else rng.randint(1, 5))
    looked_after = _yes_no(rng, 0.25 if age >= 1 else 0.08, 0.02)
    return {
        **child,
        "incident_date": incident,
        "aware_date": aware,
        "notified_date": notified,
        "incident_type": _weighted(rng, (("death", 48), ("serious_harm", 48), ("other", 4))),
        "age_years": age,
        "sex": _weighted(rng, (("female", 48), ("male", 50), ("unknown", 2))),
        "ethnicity": _weighted(rng, ETHNICITIES),
        "disability": _yes_no(rng, 0.12, 0.08),
        "looked_after": looked_after,
        "cp_plan": "N" if looked_after == "Y" else _yes_no(rng, 0.22),
        "cin_plan": _yes_no(rng, 0.2),
        "known_to_csc": "Y" if looked_after == "Y" else _yes_no(rng, 0.5, 0.05),
    }


def _rapid_review(rng: random.Random, aware: date) -> dict:
    """Sent ~8-15 working days after awareness, late (16-35) about a quarter of the time (the
    statutory 15 working days; synthetic lateness uses the same calendar); the Panel answers
    ~1-3 weeks on."""
    days = rng.randint(16, 35) if rng.random() < 0.25 else rng.randint(8, 15)
    completed = add_working_days(aware, days)
    outcome = _weighted(rng, (("lcspr", 25), ("no_further_review", 57), ("other_review", 14), ("national_review_recommended", 4)))
    if outcome == "national_review_recommended":
        decision = _weighted(rng, (("national_review", 70), ("disagree", 30)))
    elif outcome == "lcspr":
        decision = _weighted(rng, (("agree", 90), ("disagree", 10)))
    else:
        decision = _weighted(rng, (("agree", 85), ("disagree", 11), ("national_review", 4)))
    panel = add_working_days(completed, rng.randint(5, 15))
    return {
        "completed_date": completed,
        "outcome": outcome,
        "panel_response_date": panel,
        "panel_decision": decision,
        "_known_from": {"outcome": completed, "panel_decision": panel},
    }


def _review(rng: random.Random, review_type: str, decision: date) -> dict:
    """A practice review's life: commissioned, in progress, completed, then published or not."""
    staffed = decision + timedelta(days=rng.randint(10, 40))
    delay = _weighted(rng, DELAY_REASONS) if review_type == "lcspr" else None
    months = {"lcspr": (4, 9), "national": (9, 15), "local_multi_agency": (2, 5), "single_agency": (1, 4)}[review_type]
    if delay:  # paused for a trial, an inquest, ...: well past the 6 months
        months = (7, 15) if delay in ("criminal_proceedings", "parallel_process") else (6.5, 10)
    completed = _add_months(decision, rng.uniform(*months))
    publish_share = {"lcspr": 0.75, "national": 1.0, "local_multi_agency": 0.3, "single_agency": 0.1}[review_type]
    publishes = rng.random() < publish_share
    sent = published = None
    if review_type in ("lcspr", "national") or publishes:
        sent = add_working_days(completed, rng.randint(5, 30))
    if publishes:
        gap = rng.randint(2, 6) if rng.random() < 0.2 else rng.randint(7, 20)  # some too close
        published = add_working_days(sent, gap)
        last = (published, "published")
    else:
        last = ((sent or completed) + timedelta(days=rng.randint(20, 60)), "not_published")
    author = "Child Safeguarding Practice Review Panel" if review_type == "national" else (
        rng.choice(REVIEWERS) if review_type == "lcspr" else rng.choice(
            ("Partnership business unit", "Multi-agency review group")
            if review_type == "local_multi_agency" else tuple(f"{a.capitalize()} safeguarding lead" for a in OWNER_AGENCIES)
        )
    )
    known_from = {"author": staffed, "methodology": staffed}
    extra: dict[str, Any] = {}
    end = last[0]  # the story's last event
    if review_type == "lcspr":
        if rng.random() < UNLISTED_AUTHOR_SHARE:
            author = rng.choice(UNLISTED_REVIEWERS)
        if rng.random() < LATE_AUTHOR_SHARE:  # in progress, the reviewer's name not returned for months
            known_from["author"] = min(staffed + timedelta(days=rng.randint(45, 150)), completed - timedelta(days=1))
        if delay:  # the delay and its reason are returned a few months in (never after completion)
            extra["delay_reason"] = delay
            known_from["delay_reason"] = min(_add_months(decision, rng.uniform(2, 5)), completed - timedelta(days=1))
        if last[1] == "not_published":  # why not, and (usually) the improvements published instead
            extra["not_published_reason"] = _weighted(rng, NOT_PUBLISHED_REASONS)
            known_from["not_published_reason"] = last[0]
            if rng.random() < IMPROVEMENTS_PUBLISHED_SHARE:
                end = last[0] + timedelta(days=rng.randint(14, 90))
                extra["improvements_published_date"] = end
    return {
        "review_type": review_type,
        "decision_date": decision,
        "author": author,
        "methodology": rng.choice(METHODOLOGIES[review_type]),
        "completed_date": completed,
        "final_report_sent_date": sent,
        "published_date": published,
        **extra,
        "_known_from": known_from,
        "_timeline": {"status": [(decision, "commissioned"), (staffed, "in_progress"), (completed, "completed"), last]},
        "_last": end,
    }


def _owner(rng: random.Random, theme: str) -> str:
    usual = THEME_OWNER.get(theme, "children's social care")
    return usual if rng.random() < 0.6 else rng.choice(OWNER_AGENCIES)


@lru_cache(maxsize=8)
def _theme_weights(themes: tuple[str, ...]) -> list[int]:
    """Cumulative THEME_WEIGHT over the config's themes, for rng.choices(cum_weights=)."""
    return list(accumulate(THEME_WEIGHT.get(t, 1) for t in themes))


def _findings(rng: random.Random, cfg: Config, completed: date) -> list[dict]:
    """2-5 findings from a completed review, each with one owned action."""
    themes = list(cfg.themes)
    cum = _theme_weights(tuple(themes))
    chosen: list[str] = []
    wanted = min(rng.randint(2, 5), len(themes))
    while len(chosen) < wanted:  # distinct themes, the common ones more often
        t = rng.choices(themes, cum_weights=cum)[0]
        if t not in chosen:
            chosen.append(t)
    out = []
    for theme in chosen:
        text = THEME_TEXT.get(theme) or (
            f"Practice on {theme.replace('_', ' ')} was inconsistent across agencies.",
            f"Partners should agree shared practice guidance on {theme.replace('_', ' ')}.",
        )
        due = _add_months(completed, rng.uniform(3, 9))
        begun = completed + timedelta(days=rng.randint(10, 60))
        if rng.random() < 0.7:  # most actions close by their due date, the rest up to a year late
            done = max(begun + timedelta(days=14), due - timedelta(days=rng.randint(0, 60)))
        else:
            done = due + timedelta(days=rng.randint(1, 365))
        timeline = [(completed, "open"), (begun, "in_progress"), (done, "completed")]
        out.append({
            "theme": theme,
            "finding": text[0],
            "recommendation": text[1],
            "owner_agency": _owner(rng, theme),
            "action_due_date": due,
            "action_completed_date": done,
            "_timeline": {"action_status": timeline},
            "_last": done,
        })
    return out


def _attach_review(rng: random.Random, cfg: Config, case: _Case, review_type: str, decision: date) -> None:
    case.review = _review(rng, review_type, decision)
    if review_type != "national":  # the Panel's own findings are not the partnership's to return
        case.findings = _findings(rng, cfg, case.review["completed_date"])
    ends = [case.review["_last"]] + [f["_last"] for f in case.findings]
    case.end = max([case.end, *ends])


def _notification_case(rng: random.Random, cfg: Config, aware: date, child: dict, age: int) -> _Case:
    """A notification and what follows from it: rapid review, maybe an LCSPR or national review."""
    rr = _rapid_review(rng, aware)
    case = _Case(start=aware, end=rr["panel_response_date"], notification=_notification(rng, aware, child, age), rapid_review=rr)
    if rr["outcome"] == "lcspr":
        _attach_review(rng, cfg, case, "lcspr", add_working_days(rr["completed_date"], rng.randint(0, 3)))
        if rng.random() < LATE_LISTED_SHARE:  # decided at once, but first returned months later
            review = case.review
            listed = review["decision_date"] + timedelta(days=rng.randint(90, 250))
            review["_listed_from"] = min(listed, review["completed_date"] - timedelta(days=1))
    elif rr["panel_decision"] == "national_review":
        _attach_review(rng, cfg, case, "national", rr["panel_response_date"])
    return case


def _arrivals(rng: random.Random, first: date, last: date, per_year: float) -> list[date]:
    """A Poisson process of days: realistic clumping, deterministic for a seed."""
    out: list[date] = []
    if per_year <= 0:
        return out
    t = 0.0
    span = (last - first).days
    while True:
        t += rng.expovariate(per_year / 365.25)
        if t > span:
            return out
        out.append(first + timedelta(days=int(t)))


def _draw_cases(cfg: Config, code: str, seed: int, inflate: int, first: date, last: date) -> list[_Case]:
    """Every case of one partnership in [first, last], with ids given in date order."""
    rng = random.Random(f"{seed}:{code}:cases")
    weight = VOLUME_WEIGHT.get(code, 1.0)
    used: set[int] = set()
    children: list[tuple[dict, int, date]] = []  # who may be notified again
    cases: list[_Case] = []
    drawn = 0
    for aware in _arrivals(rng, first, last, BASE_NOTIFICATIONS_PER_YEAR * inflate * weight):
        earlier = _seen_before(children, aware)
        if earlier and rng.random() < 0.03:  # the same child notified again (a repeat serious harm)
            child, age0, first_seen = rng.choice(children[:earlier])
            age = min(17, age0 + (aware - first_seen).days // 365)
        else:
            drawn += 1
            child, age = _child(rng, code, used, drawn), _age(rng)
            children.append((child, age, aware))
        case = _notification_case(rng, cfg, aware, child, age)
        if case.notification["incident_type"] == "death":  # nobody is notified twice after a death
            if children and children[-1][0] is child:  # usually the child just drawn
                children.pop()
            else:
                children[:] = [c for c in children if c[0] is not child]
        cases.append(case)
    for decision in _arrivals(rng, first, last, BASE_LOCAL_REVIEWS_PER_YEAR * inflate * weight):
        case = _Case(start=decision, end=decision)
        _attach_review(rng, cfg, case, _weighted(rng, (("local_multi_agency", 70), ("single_agency", 30))), decision)
        cases.append(case)
    _number(cases, _prefix(code))
    return cases


def _seen_before(children: list[tuple[dict, int, date]], aware: date) -> int:
    """How many children were first seen before `aware`: they are listed in the order first
    seen, so those form the front of the list and only its tail (seen on `aware`) is walked."""
    k = len(children)
    while k and children[k - 1][2] >= aware:
        k -= 1
    return k


def _number(cases: list[_Case], pre: str) -> None:
    """Partnership-prefixed ids in date order, as a partnership's own register would give them."""
    notified = sorted((c for c in cases if c.notification), key=lambda c: c.start)
    for i, c in enumerate(notified, 1):
        c.notification["notification_id"] = f"{pre}-N-{i:04d}"
        c.rapid_review["rapid_review_id"] = f"{pre}-RR-{i:04d}"
        c.rapid_review["notification_id"] = c.notification["notification_id"]
    reviewed = sorted((c for c in cases if c.review), key=lambda c: c.review["decision_date"])
    for i, c in enumerate(reviewed, 1):
        c.review["review_id"] = f"{pre}-R-{i:03d}"
        c.review["notification_id"] = c.notification["notification_id"] if c.notification else None
    found = sorted((c for c in cases if c.findings), key=lambda c: (c.review["completed_date"], c.review["review_id"]))
    n = 0
    for c in found:
        for f in c.findings:
            n += 1
            f["finding_id"] = f"{pre}-F-{n:04d}"
            f["review_id"] = c.review["review_id"]


# --------------------------------------------------------------------------- snapshots


def _value_at(timeline: list[tuple[date, str]], q: date) -> str | None:
    value = None
    for when, v in timeline:
        if when <= q:
            value = v
    return value


@lru_cache(maxsize=16)
def _known_columns(dataset: str, extra: tuple[str, ...]) -> tuple[str, ...]:
    """The keys of a record as known: the dataset's columns, then the extra ones."""
    return (*DATASETS[dataset].column_names, *extra)


def _known_value(rec: dict, col: str, q: date, timeline: dict, known_from: dict) -> Any:
    """One value of a record as the partnership knew it at quarter end `q`."""
    v = rec.get(col)
    if col in timeline:
        return _value_at(timeline[col], q)
    if isinstance(v, date) and v > q and col not in PLANNED_COLUMNS:
        return None
    if col in known_from and known_from[col] > q:
        return None
    return v


def _as_known(rec: dict, dataset: str, q: date, extra: tuple[str, ...] = ()) -> dict:
    """One record as the partnership knew it at quarter end `q`: later facts are blank."""
    timeline = rec.get("_timeline", {})
    known_from = rec.get("_known_from", {})
    return {col: _known_value(rec, col, q, timeline, known_from) for col in _known_columns(dataset, extra)}


class _Row(dict):
    """A record as known at one quarter end (_as_known). The same object stands in every return
    that restates the record in that state, so it is built and rendered once (`plan`, for
    `style`). Never changed in place: a fault breaks a plain-dict copy."""

    __slots__ = ("record", "plan", "style")


class _Record:
    """One record's states over time. Every rule of _as_known compares the quarter end with one
    of the record's own dates, so the record reads the same at every quarter end with the same
    number of those dates on or before it: `changes` holds them, and `at` builds each state's
    row once (kept in the caller's `states`, so that rows and records hold no reference cycle)."""

    __slots__ = ("base", "moving", "changes", "style", "static", "fill")

    def __init__(self, rec: dict, dataset: str, extra: tuple[str, ...]) -> None:
        timeline, known_from = rec.get("_timeline", {}), rec.get("_known_from", {})
        columns = _known_columns(dataset, extra)
        self.base = base = dict(zip(columns, map(rec.get, columns)))
        self.moving = [c for c in columns if c in timeline or c in known_from
                       or (isinstance(base[c], date) and c not in PLANNED_COLUMNS)]
        self.style = None
        dates: set[date] = set()
        for col in self.moving:
            if col in timeline:
                dates.update(when for when, _ in timeline[col])
                continue
            if isinstance(base[col], date) and col not in PLANNED_COLUMNS:
                dates.add(base[col])
            if col in known_from:
                dates.add(known_from[col])
        self.changes = sorted(dates)

    def at(self, rec: dict, q: date, states: dict) -> _Row:
        """Record `rec` as known at `q` (_as_known), built on first use of its state."""
        state = (self, bisect_right(self.changes, q))
        row = states.get(state)
        if row is None:
            row = states[state] = _Row(self.base)
            row.record, row.plan, row.style = self, None, None
            timeline, known_from = rec.get("_timeline", {}), rec.get("_known_from", {})
            for col in self.moving:  # as _known_value, starting from the value itself
                if col in timeline:
                    row[col] = _value_at(timeline[col], q)
                elif (isinstance(row[col], date) and row[col] > q and col not in PLANNED_COLUMNS) or (
                        col in known_from and known_from[col] > q):
                    row[col] = None
        return row

    def fields(self, row: _Row, cells: list[tuple[str, dict | None, Any]], style: _Style) -> list:
        """_csv_value of each cell of one of this record's rows: the cells that never change are
        worked out once, on the record's first row."""
        if self.style is not style:
            self.style, self.static, self.fill = style, [], []
            for i, (col, memo, make) in enumerate(cells):
                if col in self.moving:
                    self.static.append(None)
                    self.fill.append((i, col, memo, make))
                else:
                    self.static.append(_csv_value(row.get(col), memo, make))
        out = self.static.copy()
        for i, col, memo, make in self.fill:  # dates and codes: never ids, never Raw
            value = row[col]
            cell = memo.get(value)
            if cell is None:
                cell = memo[value] = make(value)
            out[i] = cell
        return out


def _snapshot(rec: dict, dataset: str, q: date, extra: tuple[str, ...], states: dict) -> _Row:
    """_as_known(rec, dataset, q, extra), one shared row per state of the record, kept in
    `states` (its _Record is kept on it under '_snapshots', which no dataset column is called)."""
    record = rec.get("_snapshots")
    if record is None:
        record = rec["_snapshots"] = _Record(rec, dataset, extra)
    return record.at(rec, q, states)


def _return_rows(
    cases: list[_Case], q: date, prev: date, extra: tuple[str, ...], states: dict | None = None,
) -> dict[str, list[dict]]:
    """A cumulative return: every case known by `q` whose story had not ended by `prev`.

    Rows are shared with other returns that pass the same `states` (see _snapshot)."""
    states = {} if states is None else states
    out: dict[str, list[dict]] = {ds: [] for ds in DATASET_ORDER}
    for c in cases:
        if c.start > q or c.end <= prev:
            continue
        if c.notification:
            out["notifications"].append(_snapshot(c.notification, "notifications", q, extra, states))
            out["rapid_reviews"].append(_snapshot(c.rapid_review, "rapid_reviews", q, (), states))
        if c.review and c.review["decision_date"] <= q and c.review.get("_listed_from", c.review["decision_date"]) <= q:
            out["practice_reviews"].append(_snapshot(c.review, "practice_reviews", q, (), states))
            if c.review["completed_date"] <= q:
                out["learning"].extend(_snapshot(f, "learning", q, (), states) for f in c.findings)
    for ds, rows in out.items():
        rows.sort(key=lambda r, k=DATASETS[ds].id_column: r[k])
    return out


# --------------------------------------------------------------------------- faults


@dataclass
class _Table:
    """The rows of one dataset in one return, before rendering."""

    code: str
    dataset: str
    quarter_end: date
    return_date: date
    rows: list[dict]
    path: Path


def _date_cols(row: dict, dataset: str) -> list[str]:
    return [c for c in DATASETS[dataset].of_kind("date") if isinstance(row.get(c), date)]


def _required_date_col(dataset: str) -> str | None:
    return {"notifications": "aware_date", "practice_reviews": "decision_date"}.get(dataset)


def _can(kind: str, row: dict, dataset: str) -> bool:
    """Whether a fault of `kind` makes sense on this row (a blank cannot be made blank)."""
    if kind == "missing_required_date":
        col = _required_date_col(dataset)
        return col is not None and isinstance(row.get(col), date)
    if kind == "aware_after_notified":
        return dataset == "notifications" and all(isinstance(row.get(c), date) for c in ("aware_date", "notified_date"))
    if kind in ("unknown_incident_type", "duplicate_id", "age_out_of_range"):
        return dataset == "notifications" and (kind != "age_out_of_range" or row.get("age_years") is not None)
    if kind == "unknown_theme":
        return dataset == "learning"
    if kind == "unparseable_date":
        return bool(_date_cols(row, dataset))
    raise ValueError(kind)


def _break(kind: str, row: dict, dataset: str, rng: random.Random) -> tuple[str, Any]:
    """Apply one fault in place; return (column, new value). No date moves past the quarter end."""
    if kind == "missing_required_date":
        col = _required_date_col(dataset)
        row[col] = None
    elif kind == "aware_after_notified":
        col = "aware_date"
        aware, notified = row["aware_date"], row["notified_date"]
        if notified == aware:
            notified = aware - timedelta(days=rng.randint(1, 5))
        row["aware_date"], row["notified_date"] = notified, aware  # the classic swapped columns
    elif kind == "unknown_incident_type":
        col = "incident_type"
        row[col] = Raw(rng.choice(("accident", "Accident", "near miss")))
    elif kind == "unknown_theme":
        col = "theme"
        row[col] = Raw(rng.choice(("weather", "Weather", "see notes")))
    elif kind == "unparseable_date":
        col = rng.choice(_date_cols(row, dataset))
        year = row[col].year  # a slip on the real date's day, not a random year
        row[col] = Raw(rng.choice((f"31/02/{year}", "n/a", f"30/02/{year}")))
    elif kind == "age_out_of_range":
        col = "age_years"
        row[col] = rng.choice((19, 21))
    else:
        raise ValueError(kind)
    return col, row[col]


def _inject(table: _Table, i: int, kind: str, rng: random.Random) -> InjectedFault:
    """Break row i of `table` (a duplicate is inserted after it) and record the fault."""
    ds, id_col = table.dataset, DATASETS[table.dataset].id_column
    if kind == "duplicate_id":  # keyed twice with a small difference, as after a copy-paste
        copy = dict(table.rows[i])
        copy["ethnicity"] = "Not recorded" if copy.get("ethnicity") != "Not recorded" else "Mixed"
        table.rows.insert(i + 1, copy)
        target, col, value = copy, id_col, copy[id_col]
    else:
        target = table.rows[i] = dict(table.rows[i])  # rows are shared between returns: break a copy
        col, value = _break(kind, target, ds, rng)
    fault = InjectedFault(kind, table.code, ds, str(table.rows[i][id_col]), col, "" if value is None else str(value))
    target["_fault"] = fault
    return fault


def _restated_next(tables: list[_Table]) -> dict[int, set[str] | None]:
    """id(table) -> the record ids the partnership's next return of that dataset restates (None
    for its last return): a record broken in a return is sent again, correct, in the next one
    only if its story goes on, so faults go where the next return corrects them."""
    out: dict[int, set[str] | None] = {}
    later: dict[tuple[str, str], set[str] | None] = {}
    for t in reversed(tables):  # a partnership's tables are in return order
        key = (t.code, t.dataset)
        out[id(t)] = later.get(key)
        id_col = DATASETS[t.dataset].id_column
        later[key] = {str(r[id_col]) for r in t.rows}
    return out


def _inject_faults(tables: list[_Table], fault_rate: float, seed: int) -> list[InjectedFault]:
    """Break about `fault_rate` of all rows, chosen among the rows the next return restates (and
    the last returns' rows), then make sure every kind appears at least once. Rows on a record's
    last appearance before its story ends are left alone: with flags (rows loaded, the bad cell
    blank) nothing would ever correct them."""
    rng = random.Random(f"{seed}:faults")
    faults: list[InjectedFault] = []
    if fault_rate <= 0:
        return faults
    restated = _restated_next(tables)

    def correctable(t: _Table, row: dict) -> bool:
        ids = restated[id(t)]
        return ids is None or str(row[DATASETS[t.dataset].id_column]) in ids

    rows = sum(len(t.rows) for t in tables)
    spots = sum(correctable(t, r) for t in tables for r in t.rows)
    rate = min(0.5, fault_rate * rows / spots) if spots else 0.0  # still about fault_rate of all rows
    for t in tables:
        i = 0
        while i < len(t.rows):
            row = t.rows[i]
            if "_fault" not in row and correctable(t, row) and rng.random() < rate:
                kinds = [k for k in FAULT_KINDS if _can(k, row, t.dataset)]
                if kinds:
                    kind = rng.choice(kinds)
                    faults.append(_inject(t, i, kind, rng))
                    i += kind == "duplicate_id"
            i += 1
    seen = {f.kind for f in faults}
    for kind in FAULT_KINDS:
        if kind in seen:
            continue
        spots = [(t, i) for t in tables for i, r in enumerate(t.rows)
                 if "_fault" not in r and _can(kind, r, t.dataset) and correctable(t, r)]
        if spots:
            t, i = rng.choice(spots)
            faults.append(_inject(t, i, kind, rng))
    faults += _completed_date_na(tables, rng)
    return faults


def _completed_date_na(tables: list[_Table], rng: random.Random, partnerships: int = 2) -> list[InjectedFault]:
    """In the last return of up to `partnerships` partnerships, a rapid review whose completed_date
    an earlier return gave as a date is written `n/a` (an `unparseable_date` fault that no later
    return corrects)."""
    last: dict[str, list[_Table]] = defaultdict(list)
    for t in tables:
        if t.dataset == "rapid_reviews":
            last[t.code].append(t)
    spots = []
    for rr in last.values():
        if len(rr) < 2:
            continue
        rr.sort(key=lambda t: t.return_date)
        table, before = rr[-1], rr[-2].quarter_end
        rows = [i for i, r in enumerate(table.rows)
                if "_fault" not in r and isinstance(r.get("completed_date"), date) and r["completed_date"] <= before]
        if rows:
            spots.append((table, rows))
    out = []
    for table, rows in rng.sample(spots, min(partnerships, len(spots))):
        i = rng.choice(rows)
        target = table.rows[i] = dict(table.rows[i])  # rows are shared between returns: break a copy
        target["completed_date"] = Raw("n/a")
        fault = InjectedFault("unparseable_date", table.code, table.dataset, str(target["rapid_review_id"]),
                              "completed_date", "n/a")
        target["_fault"] = fault
        out.append(fault)
    return out


# --------------------------------------------------------------------------- rendering


def _display(word: str, spelled: dict[str, str]) -> str:
    if word in spelled:
        return spelled[word]
    return word.upper() if len(word) <= 3 else word[:1].upper() + word[1:]


def _word_lists(cfg: Config) -> dict[str, dict[str, list[str]]]:
    """Template column -> code -> the words partnerships use for it (theme synonyms included)."""
    spelled = cfg.code_synonym_spellings  # 'serious harm' -> 'Serious Harm', as partnerships type it
    out: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for col, mapping in cfg.code_synonyms.items():
        for word, code in sorted(mapping.items()):
            out[col][code].append(_display(word, spelled))
    for code, words in cfg.themes.items():
        out["theme"][code].extend(words)
    return out


@dataclass
class _Style:
    """How one partnership writes a file: its headers, date format and habits."""

    headers: dict[str, list[str]]  # dataset -> header row
    columns: dict[str, list[str]]  # dataset -> row keys in header order
    date_format: str
    xlsx: bool
    word_share: float
    words: dict[str, dict[str, list[str]]]
    csv_cells: dict[str, Any] = field(default_factory=dict, repr=False)  # _csv_cells' memo


def _style(cfg: Config, code: str, extra: tuple[str, ...], seed: int, words: dict) -> _Style:
    p = cfg.partnership(code)
    headers, columns = {}, {}
    for ds in DATASET_ORDER:
        theirs: dict[str, str] = {}
        for header, col in p.header_map(ds).items():
            theirs.setdefault(col, header)
        cols = list(DATASETS[ds].column_names)
        hdr = [theirs.get(c, c) for c in cols]
        if ds == "notifications" and extra:  # name after the reference, postcode at the end
            cols.insert(2, extra[0])
            hdr.insert(2, extra[0])
            cols.extend(extra[1:])
            hdr.extend(extra[1:])
        headers[ds], columns[ds] = hdr, cols
    share = random.Random(f"{seed}:{code}:style").choice((0.05, 0.1, 0.2, 0.35))
    return _Style(headers, columns, p.date_format, p.file_format == "xlsx", share, words)


def _cell(value: Any, col: str, dataset: str, style: _Style, rng: random.Random) -> Any:
    """One value as the partnership would type it: own date format, sometimes own words."""
    if value is None:
        return None
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, date):
        if style.xlsx and rng.random() >= XLSX_TEXT_DATE_SHARE:
            return datetime(value.year, value.month, value.day)
        return value.strftime(style.date_format)
    if isinstance(value, int):
        return value if style.xlsx else str(value)
    if col in style.words and col in DATASETS[dataset].column_names and DATASETS[dataset].column(col).kind == "code":
        share = THEME_WORD_SHARE if col == "theme" else style.word_share
        choices = style.words[col].get(value)
        if choices and rng.random() < share:
            return rng.choice(choices)
    return value


def _render(table: _Table, style: _Style, seed: int) -> list[list[Any]]:
    """Rows as lists in header order; also stamps each fault with its file and row number."""
    rng = random.Random(f"{seed}:{table.code}:{table.return_date}:{table.dataset}:render")
    out = []
    for n, row in enumerate(table.rows, 1):
        if "_fault" in row:
            row["_fault"].path, row["_fault"].row = table.path, n
        out.append([_cell(row.get(c), c, table.dataset, style, rng) for c in style.columns[table.dataset]])
    return out


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    """UTF-8, CRLF line ends and minimal quoting, as Excel's 'CSV UTF-8' save gives."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    w.writerows([["" if v is None else v for v in r] for r in rows])
    path.write_bytes(buf.getvalue().encode("utf-8"))


def _csv_field(text: str) -> str:
    """One cell as csv.writer's minimal quoting writes it: quoted when it holds a comma, a
    quote or a line break, quotes doubled."""
    if '"' in text:
        return '"' + text.replace('"', '""') + '"'
    if "," in text or "\n" in text or "\r" in text:
        return '"' + text + '"'
    return text


def _csv_text(table: _Table, style: _Style, seed: int) -> str:
    """The CSV file _write_csv(path, header, _render(table, style, seed)) writes, as text.

    Each row is cut into its cells' texts, and slots for the cells _cell may put in the
    partnership's own words (_csv_plan); a row restated unchanged in several returns is cut
    once. Only the slots draw from the render rng, row by row in column order, as _cell does."""
    rng = random.Random(f"{seed}:{table.code}:{table.return_date}:{table.dataset}:render")
    draw, pick = rng.random, rng.choice
    cells = _csv_cells(style, table.dataset)
    lines = [",".join(map(_csv_field, style.headers[table.dataset]))]
    for n, row in enumerate(table.rows, 1):
        if type(row) is _Row:
            if row.style is not style:
                row.plan, row.style = _csv_plan(row.record.fields(row, cells, style)), style
            plan = row.plan
        else:  # broken by a fault: its own copy
            if "_fault" in row:
                row["_fault"].path, row["_fault"].row = table.path, n
            plan = _csv_plan([_csv_value(row.get(col), memo, make) for col, memo, make in cells])
        if type(plan) is str:
            lines.append(plan)
        else:
            lines.append(",".join([f if type(f) is str else pick(f[2]) if draw() < f[1] else f[0] for f in plan]))
    lines.append("")
    return "\r\n".join(lines)


def _csv_plan(fields: list) -> Any:
    """The row's line (without its line break) when none of its cells is a slot, else the cells."""
    return fields if tuple in map(type, fields) else ",".join(fields)


def _csv_value(value: Any, memo: dict | None, make: Any) -> Any:
    """One cell's text or slot (see _csv_cells); `memo` keeps those of the column's values.
    A Raw value (a fault) is written as it is, and not remembered: it equals its plain text."""
    if memo is None or isinstance(value, Raw):
        return make(value)
    cell = memo.get(value)
    if cell is None:
        cell = memo[value] = make(value)
    return cell


def _csv_cells(style: _Style, dataset: str) -> list[tuple[str, dict | None, Any]]:
    """(column, memo, make) per column: make(value) is the cell's CSV text, or a slot (text,
    share, other words' texts) for a code the partnership may type in its own words (as _cell
    decides). Memo keeps each value's for columns whose values repeat (None for ids and the
    extra columns). Kept on the style, one list per dataset."""
    if dataset in style.csv_cells:
        return style.csv_cells[dataset]
    spec = DATASETS[dataset]
    kinds = {c: spec.column(c).kind for c in spec.column_names}
    dates = style.csv_cells.setdefault("", {})  # date -> text, shared by the datasets

    def maker(col: str) -> Any:
        words = style.words[col] if kinds.get(col) == "code" and col in style.words else {}
        share = THEME_WORD_SHARE if col == "theme" else style.word_share
        date_format = style.date_format  # not the style itself: no reference cycle through its memo

        def make(value: Any) -> Any:
            if value is None:
                return ""
            if isinstance(value, date):
                text = dates.get(value)
                if text is None:
                    text = dates[value] = _csv_field(value.strftime(date_format))
                return text
            choices = words.get(value) if isinstance(value, str) and not isinstance(value, Raw) else None
            if choices:
                return _csv_field(value), share, [_csv_field(str(w)) for w in choices]
            return _csv_field(str(value))

        return make

    style.csv_cells[dataset] = [
        (col, {} if kinds.get(col, "id") != "id" else None, maker(col)) for col in style.columns[dataset]
    ]
    return style.csv_cells[dataset]


def _write_xlsx(path: Path, sheets: dict[str, tuple[list[str], list[list[Any]]]], stamp: datetime) -> None:
    """One sheet per dataset; real date cells shown dd/mm/yyyy; fixed properties and zip times."""
    from openpyxl import Workbook
    from openpyxl.writer.excel import ExcelWriter

    wb = Workbook()
    wb.remove(wb.active)
    for name, (header, rows) in sheets.items():
        ws = wb.create_sheet(name)
        ws.append(header)
        for r in rows:
            ws.append(r)
        for row in ws.iter_rows(min_row=2):
            for cell in row:
                if isinstance(cell.value, datetime):
                    cell.number_format = "DD/MM/YYYY"
    wb.properties.creator = "reviews_dev.synthetic"
    wb.properties.created = wb.properties.modified = stamp
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
        ExcelWriter(wb, archive).save()  # not save_workbook(): that stamps the wall clock
    path.write_bytes(_fixed_zip(raw.getvalue(), stamp))


def _fixed_zip(data: bytes, stamp: datetime) -> bytes:
    """Rewrite a zip with the same members but fixed timestamps, so bytes depend on inputs only."""
    out = io.BytesIO()
    when = (stamp.year, stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second)
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            member = zipfile.ZipInfo(info.filename, date_time=when)
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = 0o600 << 16
            member.create_system = 0
            dst.writestr(member, src.read(info.filename))
    return out.getvalue()


# --------------------------------------------------------------------------- public


def extra_column_partnerships(cfg: Config) -> list[str]:
    """Every other partnership in config order sends two non-template columns in notifications."""
    return list(cfg.partnerships)[1::2]


def generate_returns(
    inbox: Path,
    cfg: Config,
    *,
    start: date,
    end: date,
    seed: int = 2024,
    inflate: int = 10,
    fault_rate: float = 0.06,
    partnerships: list[str] | None = None,
    late_and_missing_returns: bool = False,
) -> GenerationReport:
    """Write every quarterly return due in [start, end] into `inbox`; same inputs, same bytes.

    With `late_and_missing_returns`, some returns are dated after their due date and some are
    never sent (the last ON_TIME_LAST_RETURNS always come on time); otherwise every return is
    dated on its due date. Existing files of the same name are overwritten; nothing else in
    `inbox` is touched."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    if inflate < 1 or not 0 <= fault_rate < 1:
        raise ValueError("inflate must be >= 1 and fault_rate in [0, 1)")
    inbox = Path(inbox)
    codes = list(partnerships) if partnerships is not None else list(cfg.partnerships)
    for code in codes:
        cfg.partnership(code)  # fails early, naming an unknown code
    schedule = return_schedule(start, end)
    report = GenerationReport(inbox=inbox, seed=seed, inflate=inflate, start=start, end=end)
    with _collector_paused():
        _generate(inbox, cfg, codes, schedule, seed, inflate, fault_rate, start, report, late_and_missing_returns)
    return report


@contextmanager
def _collector_paused():
    """Pause Python's cyclic garbage collector: generating builds tens of thousands of rows,
    plans and records that all stay alive to the end, and the collector would walk them over
    and over (about a fifth of the time). They hold no reference cycles; the few made meanwhile
    (openpyxl's workbooks, lru caches) are collected once it runs again."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _generate(
    inbox: Path, cfg: Config, codes: list[str], schedule: list[tuple[date, date]], seed: int, inflate: int,
    fault_rate: float, start: date, report: GenerationReport, late_and_missing: bool = False,
) -> None:
    """generate_returns' work: draw, restate, break and write every partnership's returns."""
    extras = set(extra_column_partnerships(cfg))
    words = _word_lists(cfg)
    tables: list[_Table] = []
    styles: dict[str, _Style] = {}
    plans = _arrival_plans(codes, schedule, seed) if late_and_missing else {c: [r for _, r in schedule] for c in codes}
    hold_rng = random.Random(f"{seed}:held back")
    for n, code in enumerate(codes):
        extra = EXTRA_HEADERS if code in extras else ()
        if extra:
            report.extra_columns[code] = extra
        styles[code] = _style(cfg, code, extra, seed, words)
        # at least one partnership's last return lacks an LCSPR its rapid review chose
        hold = hold_rng.random() < 0.3 or (n == len(codes) - 1 and not report.lcspr_not_listed)
        tables.extend(_partnership_tables(cfg, code, schedule, seed, inflate, start, extra, inbox, plans[code],
                                          hold, report))
        report.return_dates[code] = [r for r in plans[code] if r is not None]
        late = [(due, sent) for (_, due), sent in zip(schedule, plans[code]) if sent is not None and sent != due]
        missing = [due for (_, due), sent in zip(schedule, plans[code]) if sent is None]
        if late:
            report.late_returns[code] = late
        if missing:
            report.missing_returns[code] = missing
    report.fault_log = _inject_faults(tables, fault_rate, seed)
    _write_all(tables, styles, seed, report)
    report.faults = {k: sum(f.kind == k for f in report.fault_log) for k in FAULT_KINDS}


def _arrival_plans(codes: list[str], schedule: list[tuple[date, date]], seed: int) -> dict[str, list[date | None]]:
    """Per partnership, the date each scheduled return is sent (None: never sent): LATE_RETURN_SHARE
    of the returns that may be (all but the last ON_TIME_LAST_RETURNS) are late, MISSING_RETURN_SHARE
    never sent, at least one of each when any may be; the rest on their due date."""
    rng = random.Random(f"{seed}:arrivals")
    plans: dict[str, list[date | None]] = {c: [due for _, due in schedule] for c in codes}
    spots = [(c, i) for c in codes for i in range(len(schedule) - ON_TIME_LAST_RETURNS)]
    if not spots:
        return plans
    late = max(1, round(LATE_RETURN_SHARE * len(spots)))
    missing = max(1, round(MISSING_RETURN_SHARE * len(spots))) if len(spots) > late else 0
    for n, (c, i) in enumerate(rng.sample(spots, min(len(spots), late + missing))):
        plans[c][i] = None if n < missing else schedule[i][1] + timedelta(days=rng.randint(*LATE_RETURN_DAYS))
    return plans


def _hold_back_lcspr(cases: list[_Case], last_q: date, rng: random.Random) -> _Case | None:
    """One rapid review that chose an LCSPR a while before `last_q` whose LCSPR record first comes
    after it (the review still in progress then): the last return has the RR and no LCSPR."""
    spots = [c for c in cases if c.review and c.rapid_review and c.rapid_review["outcome"] == "lcspr"
             and "_listed_from" not in c.review and c.review["decision_date"] <= last_q
             and last_q - timedelta(days=200) <= c.rapid_review["panel_response_date"] <= last_q - timedelta(days=45)
             and c.review["completed_date"] > last_q + timedelta(days=30)]
    if not spots:
        return None
    case = rng.choice(spots)
    case.review["_listed_from"] = last_q + timedelta(days=rng.randint(1, 30))
    return case


def _partnership_tables(
    cfg: Config, code: str, schedule: list[tuple[date, date]], seed: int, inflate: int,
    start: date, extra: tuple[str, ...], inbox: Path, plan: list[date | None] | None = None,
    hold_back: bool = False, report: GenerationReport | None = None,
) -> list[_Table]:
    """All the tables one partnership returns over the window, in return order. `plan`: the date
    each scheduled return is sent, None for one never sent (default: each on its due date); a
    return after a missing one restates what that one would have. `hold_back`: an LCSPR chosen at
    rapid review is not yet in the last return (_hold_back_lcspr; noted in `report`)."""
    if not schedule:
        return []
    cases = _draw_cases(cfg, code, seed, inflate, start - timedelta(days=BACKLOG_DAYS), schedule[-1][0])
    if hold_back:
        held = _hold_back_lcspr(cases, schedule[-1][0], random.Random(f"{seed}:{code}:held back"))
        if held is not None and report is not None:
            report.lcspr_not_listed.append((code, held.rapid_review["rapid_review_id"]))
    xlsx = cfg.partnership(code).file_format == "xlsx"
    tables = []
    plan = [r for _, r in schedule] if plan is None else plan
    sent = [(q, returned) for (q, _), returned in zip(schedule, plan) if returned is not None]
    prevs = [_quarter_end(schedule[0][0] - timedelta(days=92))] + [q for q, _ in sent[:-1]]
    quarters = [(q, prev) for (q, _), prev in zip(sent, prevs)]
    states: dict = {}  # one row per state of each record, shared by the returns
    for (q, returned), (_, prev), live in zip(sent, quarters, _cases_by_quarter(cases, quarters)):
        for ds, rows in _return_rows(live, q, prev, extra, states).items():
            name = f"return_{returned.isoformat()}.xlsx" if xlsx else f"{ds}_{returned.isoformat()}.csv"
            tables.append(_Table(code, ds, q, returned, rows, inbox / code / name))
    return tables


def _cases_by_quarter(cases: list[_Case], quarters: list[tuple[date, date]]) -> list[list[_Case]]:
    """For each (quarter end q, previous quarter end): the cases _return_rows keeps (known by q,
    not over by the previous quarter end), in order. Each case's first and last quarter are
    found by bisection, rather than every case tested in every quarter (quarters ascending)."""
    ends, prevs = [q for q, _ in quarters], [prev for _, prev in quarters]
    out: list[list[_Case]] = [[] for _ in quarters]
    for c in cases:
        for i in range(bisect_left(ends, c.start), bisect_left(prevs, c.end)):
            out[i].append(c)
    return out


def _write_all(tables: list[_Table], styles: dict[str, _Style], seed: int, report: GenerationReport) -> None:
    """Render and write every file, and count rows and distinct records for the report."""
    workbooks: dict[Path, dict[str, tuple[list[str], list[list[Any]]]]] = {}
    stamps: dict[Path, datetime] = {}
    ids: dict[str, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    for t in tables:
        style = styles[t.code]
        counts = report.rows.setdefault(t.code, {ds: 0 for ds in DATASET_ORDER})
        counts[t.dataset] += len(t.rows)
        ids[t.code][t.dataset].update(str(r[DATASETS[t.dataset].id_column]) for r in t.rows)
        t.path.parent.mkdir(parents=True, exist_ok=True)
        if style.xlsx:
            workbooks.setdefault(t.path, {})[t.dataset] = (style.headers[t.dataset], _render(t, style, seed))
            stamps[t.path] = datetime(t.return_date.year, t.return_date.month, t.return_date.day, 9, 0)
        else:
            t.path.write_bytes(_csv_text(t, style, seed).encode("utf-8"))
            report.files.append(t.path)
        t.rows = []  # written: its rows (most of the memory) can go as soon as no later table shares them
    for path, sheets in workbooks.items():
        _write_xlsx(path, sheets, stamps[path])
        report.files.append(path)
    report.records = {code: {ds: len(per[ds]) for ds in DATASET_ORDER} for code, per in ids.items()}


def main(argv: list[str] | None = None) -> int:
    """`python -m reviews_dev.synthetic --inbox DIR ...`: write returns and print what was written."""
    ap = argparse.ArgumentParser(prog="python -m reviews_dev.synthetic", description=__doc__.splitlines()[0])
    ap.add_argument("--inbox", required=True, type=Path, help="folder to write inbox/{partnership}/... into")
    ap.add_argument("--start", type=date.fromisoformat, default=date(2023, 10, 1))
    ap.add_argument("--end", type=date.fromisoformat, default=date(2026, 9, 30))
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--inflate", type=int, default=10, help="volume multiplier (realistic is 1)")
    ap.add_argument("--fault-rate", type=float, default=0.06)
    ap.add_argument("--partnership", action="append", dest="partnerships", help="repeat to choose several")
    ap.add_argument("--late-and-missing", action="store_true", help="some returns late, some never sent (as the demo)")
    ap.add_argument("--config", type=Path, default=None, help="config file (default: the project's own)")
    args = ap.parse_args(argv)
    report = generate_returns(
        args.inbox, load_config(args.config), start=args.start, end=args.end, seed=args.seed,
        inflate=args.inflate, fault_rate=args.fault_rate, partnerships=args.partnerships,
        late_and_missing_returns=args.late_and_missing,
    )
    print(report.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
