"""Consistency findings: where a case's records contradict each other, in words.

Each timeliness stage is judged on its own record, so a step that never got a record is invisible
to it: a rapid review that chose an LCSPR whose LCSPR never arrives is flagged nowhere. These
checks look across a case's records (config `journeys`, in working days):

- `lcspr_missing`: a rapid review with outcome `lcspr` and no LCSPR record, from working day
  `lcspr_record_after_working_days` after the Panel's response (after the review's completion
  when no response is recorded; neither date: not judged);
- `no_rapid_review`: an LCSPR with no rapid review (at once: the decision comes from one);
- `panel_decision_missing`: a rapid review recommending a national review with no Panel decision,
  from working day `panel_decision_after_working_days` after its completion.

A date after the as-of day has not happened yet, as everywhere else. The sentence names record
ids only (case references); never a child's key.
"""
from __future__ import annotations

from datetime import date

from reviews.core.config import Config
from reviews.core.working_days import working_days_between

FINDINGS = ("lcspr_missing", "no_rapid_review", "panel_decision_missing")


def _day(d: date) -> str:
    return f"{d.day} {d:%b %Y}"


def _elapsed(since: date | None, as_of: date) -> int | None:
    """Working days from `since` (day 0) to `as_of`; None when `since` is unknown or later."""
    if since is None or since > as_of:
        return None
    return working_days_between(since, as_of)


def case_findings(cfg: Config, as_of: date, has_notification: bool, rr_rows: list, pr_rows: list) -> list[str]:
    """The findings of one case, each a sentence beginning with its code (`lcspr_missing: ...`)."""
    out = []
    settings = cfg.journeys
    lcsprs = [r for r in pr_rows if r.review_type == "lcspr"]
    for rr in rr_rows:
        if rr.outcome == "lcspr" and not lcsprs:
            responded = rr.panel_response_date if rr.panel_response_date and rr.panel_response_date <= as_of else None
            since = responded or rr.completed_date
            n = _elapsed(since, as_of)
            if n is not None and n >= settings.lcspr_record_after_working_days:
                what = "the Panel's response" if responded else "its completion (no Panel response recorded)"
                out.append(f"lcspr_missing: rapid review {rr.rapid_review_id} chose an LCSPR, but no LCSPR record "
                           f"has arrived {n} working days after {what} on {_day(since)} "
                           f"(expected within {settings.lcspr_record_after_working_days})")
        if rr.outcome == "national_review_recommended" and not rr.panel_decision:
            n = _elapsed(rr.completed_date, as_of)
            if n is not None and n >= settings.panel_decision_after_working_days:
                out.append(f"panel_decision_missing: rapid review {rr.rapid_review_id} recommended a national review "
                           f"on {_day(rr.completed_date)}; no Panel decision is recorded {n} working days later "
                           f"(expected within {settings.panel_decision_after_working_days})")
    if lcsprs and not rr_rows:
        for r in lcsprs:
            why = "it names no notification" if not has_notification else "its notification has no rapid review"
            out.append(f"no_rapid_review: LCSPR {r.review_id} has no rapid review ({why}); an LCSPR is decided "
                       "at the end of one")
    return out
