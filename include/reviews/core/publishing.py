"""Settings for the learning bulletins and their circulation, read from the same config file.

Kept apart from config.py so the bulletin side can grow without touching the shared loader:
`publishing_settings(cfg)` reads the `summary`, `circulation`, `briefings` sections and the
extra `suppression` key of the file `cfg` was loaded from. Every key is optional; the defaults
are what the business unit asked for (a monthly bulletin, sent on the first working Tuesday
after the month ends at 09:00 UK time, nothing rounded).

This module imports only the standard library and PyYAML, so a DAG file may call
`publishing_settings_from(path)` at parse time to build its timetable.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

PERIOD_KINDS = ("month", "quarter")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DEFAULT_LINKS = (
    ("Working Together to Safeguard Children 2023 (GOV.UK)",
     "https://www.gov.uk/government/publications/working-together-to-safeguard-children--2"),
    ("Child Safeguarding Practice Review Panel (GOV.UK)",
     "https://www.gov.uk/government/organisations/child-safeguarding-practice-review-panel"),
    ("NSPCC national case review repository",
     "https://learning.nspcc.org.uk/case-reviews/national-case-review-repository"),
)


def default_workers() -> int:
    """Two rendering processes, or one on a single-core machine."""
    return min(2, os.cpu_count() or 1)


class PublishingConfigError(ValueError):
    """A bulletin or circulation setting is wrong; the message names the key."""


@dataclass(frozen=True)
class SummarySettings:
    period: str = "month"  # month | quarter
    trend_periods: int = 4
    key_findings_per_partnership: int = 3
    recurring_min_partnerships: int = 2
    recurring_min_periods: int = 2
    pdf: bool = True  # print each bulletin to PDF with headless Chromium
    # Processes rendering the audiences' bulletins (1: in process). Not in repr: the bulletins are
    # the same whoever draws them, so it is no input of publication's inputs digest.
    workers: int = field(default_factory=lambda: default_workers(), repr=False)


@dataclass(frozen=True)
class CirculationSchedule:
    """When a period's bulletins go out: a working day after the period ends, at a local time.

    The send day is the first day after the period's last day that is a working day (England
    and Wales), is at least the `not_before_working_day`-th working day after the period ends,
    and falls on `weekday` (None: any weekday). The default is the first working Tuesday.
    """

    weekday: int | None = 1  # Monday is 0
    not_before_working_day: int = 1
    hour: int = 9
    minute: int = 0
    timezone: str = "Europe/London"

    def describe(self) -> str:
        day = f"working {WEEKDAYS[self.weekday].capitalize()}" if self.weekday is not None else "working day"
        nth = "" if self.not_before_working_day <= 1 else f", no earlier than working day {self.not_before_working_day},"
        return f"the first {day}{nth} after the period ends, at {self.hour:02d}:{self.minute:02d} {self.timezone}"


@dataclass(frozen=True)
class BriefingSettings:
    links: tuple[tuple[str, str], ...] = DEFAULT_LINKS
    why_it_matters: dict[str, str] = field(default_factory=dict)  # theme -> text (overrides)
    questions: dict[str, tuple[str, ...]] = field(default_factory=dict)  # theme -> questions
    partnership_pages: dict[str, str] = field(default_factory=dict)  # code -> published reviews page


@dataclass(frozen=True)
class PublishingSettings:
    summary: SummarySettings = SummarySettings()
    schedule: CirculationSchedule = CirculationSchedule()
    briefings: BriefingSettings = BriefingSettings()
    round_regional_totals_to: int | None = None  # regional notification totals, e.g. to 10
    xlsx_to_business_unit: bool = True  # attach the analysts' workbook to business unit copies
    late_send_window_days: int = 92  # a build this long after the send day still goes out when built


def _int(raw: dict, key: str, where: str, default: int, low: int = 0) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise PublishingConfigError(f"{where}.{key} must be a whole number of at least {low}, not {value!r}")
    return value


def _summary(raw: Any) -> SummarySettings:
    raw = raw or {}
    if not isinstance(raw, dict):
        raise PublishingConfigError("summary must be a mapping")
    period = str(raw.get("period", "month")).strip().lower()
    if period not in PERIOD_KINDS:
        raise PublishingConfigError(f"summary.period must be one of {', '.join(PERIOD_KINDS)}, not {period!r}")
    pdf = raw.get("pdf", True)
    if not isinstance(pdf, bool):
        raise PublishingConfigError(f"summary.pdf must be true or false, not {pdf!r}")
    return SummarySettings(
        period=period,
        trend_periods=_int(raw, "trend_periods", "summary", 4, low=1),
        key_findings_per_partnership=_int(raw, "key_findings_per_partnership", "summary", 3),
        recurring_min_partnerships=_int(raw, "recurring_theme_min_partnerships", "summary", 2, low=1),
        recurring_min_periods=_int(raw, "recurring_theme_min_periods", "summary", 2, low=1),
        pdf=pdf,
        workers=_int(raw, "workers", "summary", default_workers(), low=1),
    )


def _schedule(raw: Any) -> CirculationSchedule:
    raw = raw or {}
    where = "circulation.schedule"
    if not isinstance(raw, dict):
        raise PublishingConfigError(f"{where} must be a mapping")
    weekday = raw.get("weekday", "tuesday")
    if weekday is None or str(weekday).strip().lower() in ("", "any", "none"):
        day = None
    else:
        name = str(weekday).strip().lower()
        if name not in WEEKDAYS[:5]:
            raise PublishingConfigError(f"{where}.weekday must be a weekday name (monday to friday) or null, not {weekday!r}")
        day = WEEKDAYS.index(name)
    at = str(raw.get("time", "09:00"))
    m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", at)
    if not m:
        raise PublishingConfigError(f"{where}.time must be HH:MM (24-hour), not {at!r}")
    tz = str(raw.get("timezone", "Europe/London"))
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise PublishingConfigError(f"{where}.timezone {tz!r} is not a known time zone") from None
    return CirculationSchedule(
        weekday=day,
        not_before_working_day=_int(raw, "not_before_working_day", where, 1, low=1),
        hour=int(m.group(1)),
        minute=int(m.group(2)),
        timezone=tz,
    )


def _briefings(raw: Any, partnerships: dict) -> BriefingSettings:
    raw = raw or {}
    if not isinstance(raw, dict):
        raise PublishingConfigError("briefings must be a mapping")
    links = DEFAULT_LINKS
    if "links" in raw:
        links = []
        for i, item in enumerate(raw.get("links") or ()):
            if not isinstance(item, dict) or not item.get("label") or not item.get("url"):
                raise PublishingConfigError(f"briefings.links[{i}] needs a label and a url")
            url = str(item["url"])
            if not url.startswith("https://"):
                raise PublishingConfigError(f"briefings.links[{i}].url must start with https://")
            links.append((str(item["label"]), url))
        links = tuple(links)
    why = {str(k): str(v) for k, v in (raw.get("why_it_matters") or {}).items()}
    questions = {}
    for theme, qs in (raw.get("questions") or {}).items():
        if isinstance(qs, str):
            qs = [qs]
        questions[str(theme)] = tuple(str(q) for q in qs or ())
    pages = {}
    for code, body in (partnerships or {}).items():
        url = (body or {}).get("published_reviews_url") if isinstance(body, dict) else None
        if url:
            if not str(url).startswith("https://"):
                raise PublishingConfigError(f"partnerships.{code}.published_reviews_url must start with https://")
            pages[str(code)] = str(url)
    return BriefingSettings(links=links, why_it_matters=why, questions=questions, partnership_pages=pages)


def parse_publishing(raw: dict) -> PublishingSettings:
    raw = raw or {}
    sup = raw.get("suppression") or {}
    rounding = sup.get("round_regional_totals_to")
    if rounding is not None and (isinstance(rounding, bool) or not isinstance(rounding, int) or rounding < 2):
        raise PublishingConfigError(
            f"suppression.round_regional_totals_to must be a whole number of at least 2, or null, not {rounding!r}"
        )
    circ = raw.get("circulation") or {}
    if not isinstance(circ, dict):
        raise PublishingConfigError("circulation must be a mapping")
    xlsx = circ.get("xlsx_to_business_unit", True)
    if not isinstance(xlsx, bool):
        raise PublishingConfigError("circulation.xlsx_to_business_unit must be true or false")
    return PublishingSettings(
        summary=_summary(raw.get("summary")),
        schedule=_schedule(circ.get("schedule")),
        briefings=_briefings(raw.get("briefings"), raw.get("partnerships") or {}),
        round_regional_totals_to=rounding,
        xlsx_to_business_unit=xlsx,
        late_send_window_days=_int(circ, "late_send_window_days", "circulation", 92),
    )


def publishing_settings_from(path: str | Path) -> PublishingSettings:
    """Read the settings from a config file (used at DAG parse time: YAML only, no database)."""
    with Path(path).open(encoding="utf-8") as fh:
        return parse_publishing(yaml.safe_load(fh) or {})


def publishing_settings(cfg) -> PublishingSettings:
    """The settings of the file a Config was loaded from."""
    return publishing_settings_from(cfg.path)
