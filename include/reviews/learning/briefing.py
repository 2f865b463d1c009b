"""7-minute briefings: one page per review published in the period, for practitioners.

The format partnerships already use: background, why it matters, what we found (the review's
findings), what needs to change (its recommendations and the state of their actions),
questions for practitioners, and links. Everything comes from the summary (screened free text
only) and the config; "why it matters" and the questions come from the review's themes, with
the defaults below unless the config's `briefings` section gives a partnership's own words
(`cfg.briefings`); a partnership's page of published reviews is its `published_reviews_url`.

Nothing about the child or family is shown: no incident, age, sex or dates of events, only the
review's own milestones (decided, completed, published), which are public once it is published.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

from reviews.core.config import BriefingSettings, Config
from reviews.core.reporting_periods import MONTHS, long_date
from reviews.learning.summary import theme_label

REVIEW_TYPES = {
    "lcspr": "local child safeguarding practice review (LCSPR)",
    "national": "national child safeguarding practice review",
    "local_multi_agency": "local multi-agency review",
    "single_agency": "single-agency review",
}
ACTION_STATE_LABELS = {
    "open": "Open",
    "in_progress": "In progress",
    "completed": "Completed",
    "overdue": "Overdue",
}

WHY_IT_MATTERS = {
    "information_sharing": "Reviews keep finding that agencies each held part of the picture. Risk is only seen when information is put together, and sharing it to protect a child is lawful.",
    "risk_assessment": "Assessments that look only at the latest incident miss how risk builds over time. Cumulative harm is often clearest in the history.",
    "decision_making": "Decisions to close, step down or not act shape what happens next for a child; they need to be made together and recorded with reasons.",
    "professional_curiosity": "Accepting explanations at face value lets harm go unseen. Respectful curiosity, checking and asking again, protects children.",
    "voice_of_child": "A child who is not seen alone or heard cannot tell us what life is like for them. Their words should shape the plan.",
    "disguised_compliance": "Families can appear to engage while nothing changes for the child. Progress should be judged by the child's experience, not attendance.",
    "multi_agency_working": "No single agency sees the whole child. Working as one system, with clear roles and shared plans, is what keeps children safe.",
    "whole_family_assessment": "Children live in families: the needs and risks of every adult in the household affect them.",
    "neglect": "Neglect is the most common reason for child protection plans, and its harm builds slowly and is easy to normalise.",
    "domestic_abuse": "Children who live with domestic abuse are victims in their own right (Domestic Abuse Act 2021).",
    "parental_mental_health": "Parental mental ill health can affect a parent's capacity to meet a child's needs; adult services are part of the child's safety net.",
    "parental_substance_misuse": "Drug and alcohol misuse by carers affects supervision, routines and safety, often alongside other risks.",
    "child_mental_health": "Children's distress may show as behaviour; self-harm and emotional need must be met with a coordinated response.",
    "extrafamilial_harm": "Harm outside the home, from peers or adults in the community or online, needs a response that looks beyond the family.",
    "criminal_exploitation": "Children drawn into criminal exploitation are victims first, even when they are also offending.",
    "vulnerability_of_babies": "Babies are the most vulnerable to serious harm; any bruising in a non-mobile baby needs urgent multi-agency response.",
    "sudi_safer_sleep": "Sudden unexpected deaths in infancy are often linked to unsafe sleep, especially with alcohol, drugs or smoking.",
    "intrafamilial_child_sexual_abuse": "Sexual abuse within the family is under-identified; children rarely tell, so professionals must notice the signs.",
    "disabled_children": "Disabled children are at greater risk of abuse and their communication needs can hide it.",
    "children_not_in_school": "A child not in school loses a place where they are seen every day by professionals.",
    "race_ethnicity_culture": "A child's identity, culture and experience of racism shape their needs and how they experience services.",
    "leadership_culture": "Good practice depends on leaders: supervision, workload and a culture where challenge is welcome.",
    "young_carers": "Children who care for family members can carry hidden burdens that affect their health and education.",
    "men_in_childrens_lives": "Fathers and other men in a child's life are too often unseen by services, both as risks and as protective adults.",
    "escalation": "When professionals disagree, escalation keeps the focus on the child. Unresolved concerns leave children at risk.",
}
QUESTIONS = {
    "information_sharing": ("Who else knows this family, and have you shared what you know with them?",
                            "Do you know how to share a safeguarding concern quickly in your agency?"),
    "risk_assessment": ("Does your assessment weigh the family's history, not only the latest incident?",),
    "decision_making": ("When you step down or close a case, who else agreed, and is the reason recorded?",),
    "professional_curiosity": ("When an explanation does not quite fit, what do you do next?",),
    "voice_of_child": ("When did you last see the child alone, and how are their words recorded in the plan?",),
    "disguised_compliance": ("What has actually changed for the child since the plan began?",),
    "multi_agency_working": ("Is everyone clear who is doing what in the plan, and by when?",),
    "whole_family_assessment": ("Have you considered every adult in the household, including those not in the room?",),
    "neglect": ("Are you using a neglect tool to see the pattern over time?",),
    "domestic_abuse": ("Have you asked about domestic abuse, and seen the child's experience of it?",),
    "parental_mental_health": ("Are adult mental health services part of the plan for this child?",),
    "parental_substance_misuse": ("Who is caring for the child when the carer is using substances?",),
    "child_mental_health": ("What might this child's behaviour be telling you?",),
    "extrafamilial_harm": ("Where does this child spend time, who with, and online?",),
    "criminal_exploitation": ("Are you treating the child as a victim first?",),
    "vulnerability_of_babies": ("Do you know and follow the bruising in non-mobile babies protocol?",),
    "sudi_safer_sleep": ("Have you talked about safer sleep, including when routines change?",),
    "intrafamilial_child_sexual_abuse": ("Would you recognise the signs of sexual abuse within a family?",),
    "disabled_children": ("How does this child communicate, and who can help you understand them?",),
    "children_not_in_school": ("Who sees this child every week, now they are not in school?",),
    "race_ethnicity_culture": ("How have you explored the child's identity and experience with them?",),
    "leadership_culture": ("Does your supervision give you room to reflect and challenge?",),
    "young_carers": ("Has anyone asked this child what they do at home to care for others?",),
    "men_in_childrens_lives": ("Who are the men in this child's life, and have you met them?",),
    "escalation": ("Do you know your escalation policy, and have you used it when worried?",),
}
GENERAL_QUESTION = "What will you do differently after reading this briefing?"
MAX_THEMES = 3
# A briefing is one A4 page: at most this many findings and recommendations are quoted (the rest
# are counted, pointing to the full report). The browser test prints one at the limits.
MAX_FINDINGS = 4
MAX_ACTIONS = 4
MAX_QUESTIONS = 3  # and the general one
NO_FINDINGS = "no findings were recorded for it, so there is nothing to brief practitioners on"


def n_found(item: dict) -> int:
    """The findings of a summary['briefings'] entry that have text."""
    return sum(1 for f in item["findings"] if (f.get("finding") or "").strip())


@dataclass(frozen=True)
class Briefing:
    """One review's briefing, ready for the templates (every value is plain text)."""

    partnership_code: str
    partnership_name: str
    review_id: str
    title: str
    slug: str  # file name stem: {partnership}_{review}
    background: list[str]
    why_it_matters: list[tuple[str, str]]  # (theme label, text)
    findings: list[tuple[str, str]]  # (theme label, finding)
    actions: list[dict]  # recommendation, owner, due, state
    questions: list[str]
    links: list[tuple[str, str]]  # (label, https url)
    themes: list[str]  # labels
    more: str = ""  # what did not fit on the one page ("The full report has 2 more finding(s).")

    def digest(self) -> str:
        return hashlib.sha256(repr(self).encode("utf-8")).hexdigest()[:12]


def _month_year(iso: str | None) -> str | None:
    if not iso:
        return None
    d = date.fromisoformat(iso)
    return f"{MONTHS[d.month]} {d.year}"


def _lower_first(text: str) -> str:
    """'Voice of the child' -> 'voice of the child'; 'SUDI and safer sleep' stays as it is."""
    return text if text[:2].isupper() else text[:1].lower() + text[1:]


def _slug(text: str) -> str:
    keep = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "-" for ch in text)
    return "-".join(p for p in keep.split("-") if p)[:80] or "review"


def briefing_slug(item: dict) -> str:
    """The file name stem of the briefing of one entry of summary['briefings']: {partnership}_{review}.

    When the safe form is not the id itself (a `/`, a space, a non-ASCII letter, a run of dashes,
    over 80 characters), a short hash of the exact id is added, so ids that only differ there
    (`KNO-R-100`, `KNO/R/100`, `KNO R 100`) get files of their own; the same id always gets the
    same name. An id that is already safe keeps its plain name; a hashed name has a `~`, which a
    plain one never has, so no id can be chosen to take another's file."""
    raw = f"{item['partnership_code']}_{item['review_id']}"
    slug = _slug(raw)
    if slug == raw:
        return slug
    digest = hashlib.sha256(raw.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"{slug[:63]}~{digest}"


def build_briefing(item: dict, partnership_name: str, settings: BriefingSettings,
                   page: str | None = None) -> Briefing:
    """A briefing from one entry of summary['briefings'] (`page`: the partnership's published reviews)."""
    kind = REVIEW_TYPES.get(item["review_type"] or "", "practice review")
    published = long_date(date.fromisoformat(item["published_date"])) if item.get("published_date") else "not yet"
    title = f"{partnership_name}: {kind[0].upper() + kind[1:]} (ref. {item['review_id']}), published {published}"
    if item["review_type"] == "national":  # the Panel commissions national reviews; the partnership takes part
        who = (f"The Child Safeguarding Practice Review Panel commissioned this {kind}; "
               f"{partnership_name} Safeguarding Children Partnership shares its learning here.")
    else:
        who = f"{partnership_name} Safeguarding Children Partnership carried out this {kind}."
    background = [
        who
        + (f" It was decided on in {_month_year(item['decision_date'])}" if item.get("decision_date") else "")
        + (f", completed in {_month_year(item['completed_date'])}" if item.get("completed_date") else "")
        + f" and published on {published}.",
    ]
    if item.get("methodology"):
        background.append(f"How the review was done: {item['methodology']}.")
    if item.get("author"):
        background.append(f"Reviewer: {item['author']}.")
    n = len(item["findings"])
    background.append(
        f"It made {n} finding{'s' if n != 1 else ''}"
        + (f" about {', '.join(_lower_first(theme_label(t)) for t in item['themes'])}." if item["themes"] else ".")
    )
    themes = item["themes"][:MAX_THEMES]
    why = [(theme_label(t), settings.why_it_matters.get(t) or WHY_IT_MATTERS.get(t)
            or f"Learning about {theme_label(t).lower()} recurs in reviews across England.") for t in themes]
    questions: list[str] = []
    for t in item["themes"]:
        for q in settings.questions.get(t) or QUESTIONS.get(t, ()):
            if q not in questions:
                questions.append(q)
    questions = questions[:MAX_QUESTIONS] + [GENERAL_QUESTION]
    shown = [f for f in item["findings"] if f["finding"]][:MAX_FINDINGS]
    actions = [
        {
            "recommendation": f["recommendation"],
            "owner": f["owner_agency"] or "not recorded",
            "due": long_date(date.fromisoformat(f["action_due_date"])) if f["action_due_date"] else "no date set",
            "state": ACTION_STATE_LABELS.get(f["action_state"], f["action_state"]),
        }
        for f in item["findings"] if f["recommendation"]
    ]
    more_actions = max(0, len(actions) - MAX_ACTIONS)
    actions = actions[:MAX_ACTIONS]
    more = []
    if len(shown) < n_found(item):
        more.append(f"{n_found(item) - len(shown)} more finding(s)")
    if more_actions:
        more.append(f"{more_actions} more recommendation(s)")
    links = list(settings.links)
    if page:
        links.insert(0, (f"{partnership_name} Safeguarding Children Partnership: published reviews", page))
    return Briefing(
        partnership_code=item["partnership_code"],
        partnership_name=partnership_name,
        review_id=item["review_id"],
        title=title,
        slug=briefing_slug(item),
        background=background,
        why_it_matters=why,
        findings=[(f["theme_label"], f["finding"]) for f in shown],
        actions=actions,
        more=(f"The full report has {' and '.join(more)}." if more else ""),
        questions=questions,
        links=links,
        themes=[theme_label(t) for t in item["themes"]],
    )


def briefings_for(summary: dict, cfg: Config, audience: str) -> list[Briefing]:
    """The briefings an audience gets: all for the region, a partnership's own otherwise; a review
    with no findings gets none (withheld_briefings: the business unit is told instead)."""
    names = {p["code"]: p["name"] for p in summary["partnerships"]}
    pages = {code: p.published_reviews_url for code, p in cfg.partnerships.items()}
    return [
        build_briefing(item, names[item["partnership_code"]], cfg.briefings, pages.get(item["partnership_code"]))
        for item in summary.get("briefings", [])
        if (audience == "region" or item["partnership_code"] == audience) and n_found(item)
    ]


def withheld_briefings(summary: dict, audience: str = "region") -> list[dict]:
    """The reviews published in the period whose 7-minute briefing is not sent, with the reason:
    {partnership_code, partnership, review_id, reason}. Only the business unit sees these (the
    sign-off request, and each version's stored data_status)."""
    names = {p["code"]: p["name"] for p in summary["partnerships"]}
    return [
        {"partnership_code": item["partnership_code"], "partnership": names[item["partnership_code"]],
         "review_id": item["review_id"], "reason": NO_FINDINGS}
        for item in summary.get("briefings", [])
        if (audience == "region" or item["partnership_code"] == audience) and not n_found(item)
    ]
