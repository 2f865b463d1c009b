"""The configuration: one YAML file, one loader, one typed `Config` handed to every stage.

Everything a business-unit officer may need to change lives in `config/reviews.yaml`.
`load_config` reads it once and checks it with frozen pydantic models; what is wrong is a
`ConfigError` naming the file and the key, one line per problem:

    config/reviews.yaml: partnerships.knowsley.name: field required
    config/reviews.yaml: summary.period: input should be 'month' or 'quarter', not 'week'

The Config carries every section - partnerships, codes, themes, timescales, suppression, returns,
retention, limits, rule severities (`quality`), the learning bulletins' `summary`, `circulation` and `briefings`, and the
learning `actions` - so no
business function reads the file itself: each is handed the Config, or a part of it.

Keys the loader does not know are ignored, as they always were, except under `limits` (a
misspelt bound must not silently fall back to its default). The models are pydantic dataclasses:
`dataclasses.replace(cfg, ...)` gives a checked copy, and `repr(cfg)` is deterministic (the
timeliness and bulletin digests hash it).

This module imports only pydantic, PyYAML and the template, never pandas: the DAG files build
their timetables from `load_config(...).summary` and `.circulation` at parse time.
"""
from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    AliasPath,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass

from reviews.core.template import DATASETS

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "reviews.yaml"
_CODE_RE = re.compile(r"^[a-z][a-z0-9_]{1,40}$")
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, ten times faster (DAG parse time)

SOURCE_KINDS = ("folder", "sftp", "sql")
RETURN_FREQUENCIES = ("monthly", "quarterly")
STAGES = ("notification", "rapid_review", "lcspr_completion", "publication_notice")
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


class ConfigError(ValueError):
    """The configuration file is missing something or contradicts itself; the message names the
    file and the key (`path` and `problems`, a list of (key, message), when the loader raised it)."""

    def __init__(self, message: str, *, path: Path | None = None, problems: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.path = path
        self.problems = problems or []


# --------------------------------------------------------------------------------------------
# Building blocks: how values written in YAML become typed ones


class _At(ValueError):
    """A check failing on a key below the one being validated: `key` is appended to its location."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


# Unknown keys are ignored (as they always were); validate_by_name lets dataclasses.replace work
# on fields whose YAML key differs from their name.
_LOOSE = ConfigDict(extra="ignore", validate_by_name=True, validate_by_alias=True)


def _text(value: Any) -> Any:
    """A number or a date written where text is meant ('ons_code: 2024') is that text."""
    if isinstance(value, (int, float, date)) and not isinstance(value, bool):
        return str(value)
    return value


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"must be a number, not {value!r}")
    return value


def _listed(value: Any) -> Any:
    """Nothing is an empty list, and one item written alone is a list of one."""
    if value is None:
        return ()
    if isinstance(value, (str, int, float, date)) and not isinstance(value, bool):
        return (value,)
    return value


def _iso_date(value: Any) -> Any:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO date (YYYY-MM-DD)") from None


def _mapping(value: Any) -> Any:
    return {} if value is None else value


def _https(value: Any) -> Any:
    if not value:
        return None
    if not str(value).startswith("https://"):
        raise ValueError(f"must start with https://, not {value!r}")
    return str(value)


DEFAULT_AT_RISK_DAYS = 3  # working days, when config `timeliness.at_risk_working_days` does not say


def _window(value: Any) -> int:
    """An at-risk window: a whole number of working days, 0 or more (3, 3.0 or "3"; not true)."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"must be a number, not {value!r}")
    try:
        number = float(value)
        whole = number == int(number)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"must be a whole number of working days, not {value!r}") from None
    if not whole or number < 0:
        raise ValueError(f"must be a whole number of working days, 0 or more, not {value!r}")
    return int(number)


Text = Annotated[str, BeforeValidator(_text)]
Int = Annotated[int, BeforeValidator(_no_bool)]  # 3, 3.0 or "3"; not true/false
Words = Annotated[tuple[Text, ...], BeforeValidator(_listed)]
IsoDate = Annotated[date, BeforeValidator(_iso_date)]
Domains = Annotated[Words, AfterValidator(lambda ds: tuple(d.lower() for d in ds))]
Authors = Annotated[tuple[str, ...], BeforeValidator(
    lambda v: tuple(str(a).strip() for a in _listed(v) if str(a).strip()))]
HttpsUrl = Annotated[str | None, BeforeValidator(_https)]
Positive = Annotated[StrictInt, Field(ge=1)]  # a whole number, 1 or more (not "3", not true)
NonNegative = Annotated[StrictInt, Field(ge=0)]


def normalise_word(text: str) -> str:
    """Fold case, spaces, hyphens and underscores so 'Serious-Harm' matches 'serious harm'."""
    return re.sub(r"[\s_\-]+", " ", str(text).strip().lower()).strip()


# --------------------------------------------------------------------------------------------
# Partnerships


@dataclass(frozen=True, config=_LOOSE)
class Partnership:
    code: str  # its key under `partnerships`
    name: Text
    ons_code: Text
    source: dict[str, Any] = Field(default_factory=lambda: {"kind": "folder"})
    file_format: Literal["csv", "xlsx"] = "csv"
    date_format: Text = "%d/%m/%Y"
    columns: dict[str, dict[Text, str]] = Field(default_factory=dict)  # dataset -> their header -> template column
    data_contact: Words = ()
    distribution: Words = ()
    # Receives the reminders of its learning actions (reviews.learning.actions); when empty they go
    # to the business unit (region.business_unit.email).
    learning_contact: Words = ()
    business_contact: Words = ()  # receives the yearly report (learning.yearly); empty: its distribution
    published_reviews_url: HttpsUrl = None  # its page of published reviews (linked from 7-minute briefings)

    def header_map(self, dataset: str) -> dict[str, str]:
        """Their header -> template column for one dataset (empty when they use the template)."""
        return dict(self.columns.get(dataset, {}))

    @field_validator("code")
    @classmethod
    def _code(cls, code: str) -> str:
        if not _CODE_RE.match(code):
            raise ValueError("code must be lower-case letters, digits and underscores")
        return code

    @field_validator("source", mode="before")
    @classmethod
    def _source(cls, raw: Any) -> Any:
        """folder (inbox/{code}); sftp: conn_id + path; sql: conn_id + one query per dataset."""
        raw = raw or {"kind": "folder"}
        if not isinstance(raw, dict):
            raise ValueError("must be a mapping (kind: folder, sftp or sql, and its settings)")
        kind = raw.get("kind", "folder")
        if kind not in SOURCE_KINDS:
            raise _At("kind", f"must be one of {', '.join(SOURCE_KINDS)}, not {kind!r}")
        if kind in ("sftp", "sql") and not str(raw.get("conn_id") or "").strip():
            raise ValueError(f"a {kind} source needs conn_id (an Airflow connection id)")
        if kind == "sftp" and not str(raw.get("path") or "").strip():
            raise ValueError("an sftp source needs path (the folder on the server)")
        if kind == "sql":
            queries = raw.get("queries")
            if not isinstance(queries, dict) or not queries:
                raise ValueError("a sql source needs queries (dataset: SQL)")
            for dataset, sql in queries.items():
                if dataset not in DATASETS:
                    raise _At("queries", f"unknown dataset {dataset!r}")
                if not isinstance(sql, str) or not sql.strip():
                    raise _At(f"queries.{dataset}", "the query is empty")
        return {**raw, "kind": kind}

    @field_validator("columns", mode="before")
    @classmethod
    def _columns_given(cls, raw: Any) -> Any:
        if isinstance(raw, dict):
            return {dataset: mapping or {} for dataset, mapping in raw.items()}
        return _mapping(raw)

    @field_validator("columns")
    @classmethod
    def _columns(cls, columns: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for dataset, mapping in columns.items():
            if dataset not in DATASETS:
                raise ValueError(f"unknown dataset {dataset!r}")
            known = set(DATASETS[dataset].column_names)
            for theirs, ours in mapping.items():
                if ours not in known:
                    raise _At(dataset, f"{theirs!r} maps to unknown column {ours!r}")
        return columns


# --------------------------------------------------------------------------------------------
# Returns, timescales, retention, limits


@dataclass(frozen=True, config=_LOOSE)
class ReturnsRule:
    """When returns are due: one per period (month or calendar quarter), N days after its end."""

    frequency: Literal["monthly", "quarterly"]
    due_days_after_period_end: NonNegative
    expected_from: IsoDate  # the first period end a return is expected for

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):  # as written in the file
            return {"frequency": "quarterly", "due_days_after_period_end": 10, **data}
        return data


@dataclass(frozen=True, config=_LOOSE)
class RetentionRule:
    """How long case records are kept, and what happens after (no statutory period exists)."""

    keep_years: Annotated[Int, Field(ge=1)]
    action: Literal["anonymise", "delete"] = "anonymise"


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class Limits:
    """What a single return may be, checked before it is read (config `limits`).

    A return is kilobytes; these bounds are far above any real one and far below what would
    hurt the workers: a file bigger than `max_file_bytes` is neither read nor copied, a table
    with more than `max_rows` rows is refused, and a workbook is refused before it is opened when
    its zip says it would unpack to more than `max_xlsx_uncompressed_bytes`, or when one of its
    parts (of 1 MiB or more unpacked) is compressed more than `max_xlsx_compression_ratio` times
    (a zip bomb).
    """

    max_file_bytes: Positive = 100 * 1024 * 1024
    max_rows: Positive = 100_000
    max_xlsx_uncompressed_bytes: Positive = 100 * 1024 * 1024
    max_xlsx_compression_ratio: Positive = 100
    max_line_bytes: Positive = 1024 * 1024  # a CSV line (or quoted record), in characters as read

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            known = ("max_file_bytes", "max_rows", "max_xlsx_uncompressed_bytes", "max_xlsx_compression_ratio",
                     "max_line_bytes")
            for key in data:
                if key not in known:
                    raise _At(str(key), f"unknown key (known: {', '.join(known)})")
        return data


@dataclass(frozen=True, config=_LOOSE)
class StageRule:
    start: Text
    working_days: Int | None = None
    calendar_months: Int | None = None
    working_days_before_publication: Int | None = None


@dataclass(frozen=True, config=_LOOSE)
class RuleSet:
    name: Text
    in_force_from: IsoDate
    stages: dict[str, StageRule]  # in the file, the four stages sit beside name and in_force_from

    @model_validator(mode="before")
    @classmethod
    def _stages(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        stages = {}
        for stage in STAGES:
            if stage not in data:
                raise _At(stage, "field required")
            stages[stage] = data[stage]
        return {**{k: data[k] for k in ("name", "in_force_from") if k in data}, "stages": stages}


# --------------------------------------------------------------------------------------------
# Data quality: what each rule's failure does to a row


# Kinds of quality rule (reviews.returns.quality: a rule id is `kind` or `kind:argument`).
RULE_KINDS = ("required", "date", "not_after_period_end", "code", "age", "order", "unique", "ragged_row",
              "identifier", "length", "storable", "reference", "cross_order", "approved_author", "author_needed")
SEVERITIES = ("reject", "flag")
# Rules whose failure leaves nothing that could be stored as the record: an id that is blank,
# withheld or twice in the file, values shifted off their columns, a character no warehouse text
# holds. They reject whatever the config says, and the config may not say `flag` for them.
REJECT_ONLY_KINDS = ("unique", "ragged_row", "identifier", "storable")
_ID_COLUMNS = frozenset(c.name for ds in DATASETS.values() for c in ds.columns if c.kind == "id")
# The shipped severities (docs/returns.md has the table and the reasons); `quality.severity` in
# the file overrides them key by key. `reject`: the row is quarantined. `flag`: the row is loaded,
# a bad cell stored blank, and the problem reported back (table row_flags).
DEFAULT_SEVERITY: dict[str, str] = {
    "default": "reject",
    "date": "flag", "not_after_period_end": "flag", "code": "flag", "age": "flag", "length": "flag",
    "order": "flag", "cross_order": "flag", "approved_author": "flag", "author_needed": "flag",
    # the dates that start the statutory clocks, and the codes that say what a case is
    "date:incident_date": "reject", "date:aware_date": "reject", "date:decision_date": "reject",
    "not_after_period_end:incident_date": "reject", "not_after_period_end:aware_date": "reject",
    "not_after_period_end:decision_date": "reject",
    "code:incident_type": "reject", "code:review_type": "reject", "practice_reviews.code:status": "reject",
    "code:theme": "reject",
}


def _severity_key(key: str) -> tuple[str, str]:
    """(dataset or "", rule id or kind) of a `quality.severity` key: `date`, `date:decision_date`,
    `practice_reviews.date:decision_date`; ValueError naming what is wrong."""
    head, dot, rest = key.partition(".")
    dataset, rule = (head, rest) if dot and ":" not in head else ("", key)
    if dataset and dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r} (known: {', '.join(DATASETS)})")
    kind = rule.partition(":")[0]
    if kind not in RULE_KINDS:
        raise ValueError(f"unknown rule kind {kind!r} (known: default, {', '.join(RULE_KINDS)})")
    return dataset, rule


def _reject_only(rule_id: str) -> bool:
    kind, _, arg = rule_id.partition(":")
    return kind in REJECT_ONLY_KINDS or (kind == "required" and arg in _ID_COLUMNS)


@dataclass(frozen=True, config=_LOOSE)
class QualitySettings:
    """Config `quality`: `severity`, each quality rule's severity, `reject` or `flag`.

    Keys: `default`, a rule kind (`date`), a rule (`date:decision_date`), either qualified by a
    dataset (`practice_reviews.date:decision_date`); the most specific key wins. The keys written
    in the file override the shipped ones (DEFAULT_SEVERITY) one by one.
    """

    severity: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_SEVERITY))

    @field_validator("severity", mode="before")
    @classmethod
    def _severities(cls, raw: Any) -> Any:
        raw = _mapping(raw)
        if not isinstance(raw, dict):
            raise ValueError("must be a mapping (rule: reject or flag)")
        out = dict(DEFAULT_SEVERITY)
        for key, value in raw.items():
            key = str(key).strip()
            if key != "default":
                try:
                    _dataset, rule = _severity_key(key)
                except ValueError as exc:
                    raise _At(key, str(exc)) from None
            word = value.strip().lower() if isinstance(value, str) else value
            if word not in SEVERITIES:
                raise _At(key, f"must be reject or flag, not {value!r}")
            if word == "flag" and key != "default" and _reject_only(rule):
                raise _At(key, "cannot be flag: a row failing it has no usable id or values, so it is always rejected")
            out[key] = word
        return out

    def severity_of(self, rule_id: str, dataset: str = "") -> str:
        """`reject` or `flag` for a rule of a dataset: the most specific key given (dataset and
        rule, rule, dataset and kind, kind, default). Reject-only rules always reject."""
        if _reject_only(rule_id):
            return "reject"
        kind = rule_id.partition(":")[0]
        s = self.severity
        for key in (f"{dataset}.{rule_id}", rule_id, f"{dataset}.{kind}", kind):
            if key in s:
                return s[key]
        return s.get("default", "reject")


# --------------------------------------------------------------------------------------------
# The learning bulletins: summary, circulation, briefings


def default_workers() -> int:
    """Two rendering processes, or one on a single-core machine."""
    return min(2, os.cpu_count() or 1)


@dataclass(frozen=True, config=_LOOSE)
class SummarySettings:
    """Config `summary`: the period of the bulletins and what their tables show."""

    period: Literal["month", "quarter"] = "quarter"
    trend_periods: Positive = 4
    # A period's bulletins are built once every partnership's return covering it has loaded, or
    # this many days after such a return was due (then the bulletin says whose data is missing).
    wait_for_returns_days: NonNegative = 7
    key_findings_per_partnership: NonNegative = 3
    recurring_min_partnerships: Positive = Field(2, validation_alias="recurring_theme_min_partnerships")
    recurring_min_periods: Positive = Field(2, validation_alias="recurring_theme_min_periods")
    pdf: StrictBool = True  # print each bulletin to PDF with headless Chromium
    # Processes rendering the audiences' bulletins (1: in process). Not in repr: the bulletins are
    # the same whoever draws them, so it is no input of publication's inputs digest.
    workers: Positive = Field(default_factory=default_workers, repr=False)

    @field_validator("period", mode="before")
    @classmethod
    def _period(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


@dataclass(frozen=True, config=_LOOSE)
class CirculationSchedule:
    """When a period's bulletins go out: a working day after the period ends, at a local time.

    The send day is the first day after the period's last day that is a working day (England
    and Wales), is at least the `not_before_working_day`-th working day after the period ends,
    and falls on `weekday` (None: any weekday). The default is the first working Tuesday.
    In the file: `weekday` (a name, or null), `not_before_working_day`, `time` (HH:MM), `timezone`.
    """

    weekday: Annotated[int, Field(ge=0, le=6)] | None = 1  # Monday is 0
    not_before_working_day: Positive = 15
    hour: Annotated[int, Field(ge=0, le=23)] = 9
    minute: Annotated[int, Field(ge=0, le=59)] = 0
    timezone: str = "Europe/London"

    def describe(self) -> str:
        day = f"working {WEEKDAYS[self.weekday].capitalize()}" if self.weekday is not None else "working day"
        n = self.not_before_working_day
        nth = "" if n <= 1 else f", no earlier than working day {n},"
        return f"the first {day}{nth} after the period ends, at {self.hour:02d}:{self.minute:02d} {self.timezone}"

    @model_validator(mode="before")
    @classmethod
    def _as_written(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        weekday = data.get("weekday", "tuesday")
        if weekday is None or str(weekday).strip().lower() in ("", "any", "none"):
            day = None
        else:
            name = str(weekday).strip().lower()
            if name not in WEEKDAYS[:5]:
                raise _At("weekday", f"must be a weekday name (monday to friday) or null, not {weekday!r}")
            day = WEEKDAYS.index(name)
        at = str(data.get("time", "09:00"))
        m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", at)
        if not m:
            raise _At("time", f"must be HH:MM (24-hour), not {at!r}")
        out = {"weekday": day, "hour": int(m.group(1)), "minute": int(m.group(2))}
        for key in ("not_before_working_day", "timezone"):
            if key in data:
                out[key] = data[key]
        return out

    @field_validator("timezone", mode="before")
    @classmethod
    def _timezone(cls, value: Any) -> Any:
        try:
            ZoneInfo(str(value))
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a known time zone") from None
        return str(value)


@dataclass(frozen=True, config=_LOOSE)
class ActionSettings:
    """Config `actions`: the action plans of learning findings (reviews.learning.actions).
    A reminder goes to the partnership's learning contact when an action not completed is due within
    `remind_working_days_before` working days (the due day included), and a notice when it is overdue."""

    remind_working_days_before: NonNegative = 10


@dataclass(frozen=True, config=_LOOSE)
class CirculationSettings:
    """Config `circulation`: when the bulletins go out, and what the business unit's copy carries."""

    schedule: Annotated[CirculationSchedule, BeforeValidator(_mapping)] = CirculationSchedule()
    xlsx_to_business_unit: StrictBool = True  # attach the bulletin's XLSX of tables to business unit copies
    # ... and to every copy: the email shows short figures, the full (suppressed) tables are in it
    xlsx_to_everyone: StrictBool = True
    late_send_window_days: NonNegative = 92  # a build this long after the send day still goes out when built
    # The business unit signs off each period's bulletins in Airflow before they go; a request
    # unanswered this long reminds it once (email).
    signoff_reminder_hours: Annotated[float, Field(gt=0)] = 24


@dataclass(frozen=True, config=_LOOSE)
class BriefingSettings:
    """Config `briefings` (7-minute briefings): links (replacing the default list), and a theme's
    own words for why it matters and its questions. A partnership's page of published reviews is
    its `published_reviews_url`."""

    links: tuple[tuple[str, str], ...] = DEFAULT_LINKS
    why_it_matters: Annotated[dict[Text, Text], BeforeValidator(_mapping)] = Field(default_factory=dict)
    questions: Annotated[dict[Text, Words], BeforeValidator(_mapping)] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _links(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "links" not in data:
            return data
        links = []
        for i, item in enumerate(data.get("links") or ()):
            if not isinstance(item, dict) or not item.get("label") or not item.get("url"):
                raise _At(f"links[{i}]", "needs a label and a url")
            url = str(item["url"])
            if not url.startswith("https://"):
                raise _At(f"links[{i}].url", f"must start with https://, not {url!r}")
            links.append((str(item["label"]), url))
        return {**data, "links": tuple(links)}


# --------------------------------------------------------------------------------------------
# Case journeys (reviews.journeys): when a case's records contradict each other


@dataclass(frozen=True, config=_LOOSE)
class JourneySettings:
    """Config `journeys`: how long, in working days, before an inconsistency between a case's
    records becomes a finding on its journey (and in the tracker). A partnership records the next
    step some days after the last, so a finding raised at once would be mostly noise.

    - `lcspr_record_after_working_days`: a rapid review chose an LCSPR and no LCSPR record has
      arrived this long after the Panel's response (after the review's completion, without one).
    - `panel_decision_after_working_days`: a rapid review recommended a national review and no
      Panel decision is recorded this long after the review's completion.
    - `due_within_working_days`: the tracker's "due within" window when the page is first opened.
    """

    lcspr_record_after_working_days: NonNegative = 20
    panel_decision_after_working_days: NonNegative = 15
    due_within_working_days: NonNegative = 5


# --------------------------------------------------------------------------------------------
# The whole file


@dataclass(frozen=True, kw_only=True, config=_LOOSE)
class Config:
    path: Path  # the file it was loaded from (named in errors; never read again)
    region_name: Text = Field("", validation_alias=AliasPath("region", "name"))
    business_unit_email: Words = Field(validation_alias=AliasPath("region", "business_unit", "email"))
    sender: Text = Field(validation_alias=AliasPath("region", "sender"))
    allowed_domains: Domains = ()
    partnerships: dict[str, Partnership]
    code_synonyms: dict[str, dict[str, str]] = Field(default_factory=dict)  # template column -> normalised word -> code
    themes: Annotated[dict[Text, Words], BeforeValidator(_mapping)] = Field(default_factory=dict)
    rule_sets: tuple[RuleSet, ...] = Field(validation_alias=AliasPath("timeliness", "rule_sets"))
    # The at-risk window in working days: one number for every stage, or one per stage (see
    # _at_risk_windows and at_risk_days). A mapping is kept whole, every stage named, in STAGES order.
    at_risk_working_days: int | dict[str, int] = Field(
        DEFAULT_AT_RISK_DAYS, validation_alias=AliasPath("timeliness", "at_risk_working_days"))
    suppression_low: Int = Field(1, validation_alias=AliasPath("suppression", "low"))
    suppression_high: Int = Field(5, validation_alias=AliasPath("suppression", "high"))
    suppression_symbol: Text = Field("c", validation_alias=AliasPath("suppression", "symbol"))
    approved_authors: Authors = ()  # the regional list of approved LCSPR authors
    returns: ReturnsRule | None = None  # None: late and missing returns are not checked
    retention: RetentionRule | None = None  # None: records are kept until a rule is configured
    limits: Annotated[Limits, BeforeValidator(_mapping)] = Limits()  # bounds on a single return file
    # Regional notification totals in bulletins rounded to the nearest N after suppression (None: exact).
    round_regional_totals_to: Annotated[StrictInt, Field(ge=2)] | None = Field(
        None, validation_alias=AliasPath("suppression", "round_regional_totals_to"))
    summary: Annotated[SummarySettings, BeforeValidator(_mapping)] = SummarySettings()
    circulation: Annotated[CirculationSettings, BeforeValidator(_mapping)] = CirculationSettings()
    briefings: Annotated[BriefingSettings, BeforeValidator(_mapping)] = BriefingSettings()
    quality: Annotated[QualitySettings, BeforeValidator(_mapping)] = QualitySettings()  # rule severities
    # Findings on case journeys (not in repr: they change no timeliness row or bulletin).
    journeys: Annotated[JourneySettings, BeforeValidator(_mapping)] = Field(JourneySettings(), repr=False)
    actions: Annotated[ActionSettings, BeforeValidator(_mapping)] = ActionSettings()
    # Normalised synonym -> its spelling in the file ('serious harm' -> 'Serious Harm'), for tools
    # that write the words back (the synthetic returns). Not in repr: it changes no result.
    code_synonym_spellings: dict[str, str] = Field(default_factory=dict, repr=False)

    def partnership(self, code: str) -> Partnership:
        try:
            return self.partnerships[code]
        except KeyError:
            raise ConfigError(f"unknown partnership code {code!r}") from None

    def learning_contact(self, code: str) -> tuple[str, ...]:
        """Who is reminded of a partnership's learning actions: its `learning_contact`, else the business unit."""
        return self.partnership(code).learning_contact or self.business_unit_email

    def theme_lookup(self) -> dict[str, str]:
        """Normalised word -> theme code, codes themselves included."""
        out: dict[str, str] = {}
        for code, words in self.themes.items():
            out[normalise_word(code)] = code
            for w in words:
                out[normalise_word(w)] = code
        return out

    def at_risk_days(self, stage: str) -> int:
        """The at-risk window of a stage, in working days: an open stage due within it (the due day
        included) is at risk. Config `timeliness.at_risk_working_days`: one number for every stage,
        or a mapping per stage (stages it leaves out take its `default`, else 3)."""
        if stage not in STAGES:
            raise ConfigError(f"timeliness.at_risk_working_days: unknown stage {stage!r} "
                              f"(stages: {', '.join(STAGES)})")
        windows = self.at_risk_working_days
        return int(windows[stage]) if isinstance(windows, dict) else int(windows)

    def rule_set_for(self, start: date) -> RuleSet:
        chosen = None
        for rs in self.rule_sets:
            if rs.in_force_from <= start:
                chosen = rs
        return chosen or self.rule_sets[0]

    @model_validator(mode="before")
    @classmethod
    def _synonyms(cls, data: Any) -> Any:
        """In the file: `code_synonyms` (per template column, its words; `yes_no` the shared list)
        and `yes_no_columns` (the columns taking the yes_no list)."""
        if not isinstance(data, dict):
            return data
        raw = data.get("code_synonyms") or {}
        if not isinstance(raw, dict):
            raise _At("code_synonyms", "must be a mapping (template column: {word: code})")
        synonyms: dict[str, dict[str, str]] = {}
        spellings: dict[str, str] = {}
        for col, mapping in raw.items():
            mapping = mapping or {}
            if not isinstance(mapping, dict):
                raise _At(f"code_synonyms.{col}", "must be a mapping (word: code)")
            for word in mapping:
                if not isinstance(word, str):
                    raise _At(f"code_synonyms.{col}",
                              f"the word {word!r} was read as {type(word).__name__}; "
                              "put it in quotes (YAML reads Yes/No/On/Off as true/false)")
                spellings[normalise_word(word)] = word
            synonyms[str(col)] = {normalise_word(k): str(v) for k, v in mapping.items()}
        yes_no = synonyms.pop("yes_no", {})
        for col in _listed(data.get("yes_no_columns")):
            synonyms[str(col)] = dict(yes_no)
        return {**data, "code_synonyms": synonyms, "code_synonym_spellings": spellings}

    @field_validator("partnerships", mode="before")
    @classmethod
    def _codes(cls, raw: Any) -> Any:
        """Each partnership's code is its key."""
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            return raw
        for code, body in raw.items():
            if (body is None or isinstance(body, dict)) and not _CODE_RE.match(str(code)):
                raise _At(str(code), "the code must be lower-case letters, digits and underscores")
        return {code: {**(body or {}), "code": code} if isinstance(body, dict) or body is None else body
                for code, body in raw.items()}

    @field_validator("partnerships")
    @classmethod
    def _some(cls, partnerships: dict[str, Partnership]) -> dict[str, Partnership]:
        if not partnerships:
            raise ValueError("at least one partnership is needed")
        return partnerships

    @field_validator("rule_sets")
    @classmethod
    def _oldest_first(cls, rule_sets: tuple[RuleSet, ...]) -> tuple[RuleSet, ...]:
        return tuple(sorted(rule_sets, key=lambda r: r.in_force_from))

    @field_validator("at_risk_working_days", mode="before")
    @classmethod
    def _at_risk_windows(cls, raw: Any) -> Any:
        """A whole number of working days (0 or more) for every stage, or a mapping of stage names
        (and `default`) to such numbers; an unknown name is refused, naming it."""
        if raw is None:
            return DEFAULT_AT_RISK_DAYS
        if not isinstance(raw, dict):
            return _window(raw)
        for key in raw:
            if key not in (*STAGES, "default"):
                raise _At(str(key), f"unknown stage (stages: {', '.join(STAGES)}, or default)")
        out = {}
        for key in ("default", *STAGES):
            if key in raw:
                try:
                    out[key] = _window(raw[key])
                except ValueError as exc:
                    raise _At(key, str(exc)) from None
        default = out.pop("default", DEFAULT_AT_RISK_DAYS)
        return {stage: out.get(stage, default) for stage in STAGES}

    @field_validator("returns", "retention", mode="before")
    @classmethod
    def _optional(cls, raw: Any) -> Any:
        return raw or None

    @model_validator(mode="after")
    def _sends_after_returns_are_due(self) -> "Config":
        problem = schedule_problem(self)
        if problem:
            raise _At("circulation.schedule", problem)
        return self


# --------------------------------------------------------------------------------------------
# Checks across sections


RETURN_PERIOD_KIND = {"monthly": "month", "quarterly": "quarter"}
SCHEDULE_CHECK_YEARS = 6  # every period ending in this many years from the first return expected


def returns_due_for(cfg: "Config", period_end: date) -> date | None:
    """The due date of the return covering a bulletin period's last day (None: returns not checked)."""
    from datetime import timedelta

    from reviews.core.reporting_periods import period_containing

    if cfg.returns is None:
        return None
    covering = period_containing(period_end, RETURN_PERIOD_KIND[cfg.returns.frequency])
    return covering.end + timedelta(days=cfg.returns.due_days_after_period_end)


def schedule_problem(cfg: "Config") -> str | None:
    """Why the circulation schedule would send a period's bulletins before the returns covering it
    are due and waited for (None: it never does). Checked over SCHEDULE_CHECK_YEARS of periods,
    so bank holidays and weekdays of every kind of year are met."""
    from datetime import timedelta

    from reviews.core.reporting_periods import long_date, period_containing, send_day

    if cfg.returns is None:
        return None
    sch, wait = cfg.circulation.schedule, cfg.summary.wait_for_returns_days
    p = period_containing(cfg.returns.expected_from, cfg.summary.period)
    last = date(cfg.returns.expected_from.year + SCHEDULE_CHECK_YEARS, 12, 31)
    while p.end <= last:
        due = returns_due_for(cfg, p.end)
        sends = send_day(p, sch.weekday, sch.not_before_working_day)
        if sends <= due + timedelta(days=wait):
            return (f"would send the bulletins of {p.label} on {sends:%A} {long_date(sends)}, before the returns "
                    f"covering it are due ({long_date(due)}) and waited for {wait} day(s) more "
                    f"(summary.wait_for_returns_days): bulletins must be built from complete data. Send later "
                    f"(circulation.schedule.not_before_working_day), or make returns due sooner "
                    f"(returns.due_days_after_period_end)")
        p = p.next()
    return None


# --------------------------------------------------------------------------------------------
# The loader


def load_config(path: str | Path | None = None) -> Config:
    """Read the config file (default: the project's own) and check it: the one place it is read."""
    p = Path(path) if path else DEFAULT_CONFIG
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}", path=p)
    try:
        with p.open(encoding="utf-8") as fh:
            raw = yaml.load(fh, Loader=_YAML_LOADER) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}", path=p) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: the file must be a mapping of sections (region, partnerships, ...), "
                          f"not {type(raw).__name__}", path=p)
    try:
        return _CONFIG_ADAPTER.validate_python({**raw, "path": p})
    except ValidationError as exc:
        problems = _problems(exc)
        raise ConfigError("\n".join(f"{p}: {key}: {message}" if key else f"{p}: {message}"
                                    for key, message in problems), path=p, problems=problems) from None


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    """(dotted key as in the file, message) for each error pydantic found."""
    out = []
    for err in exc.errors():
        loc = list(err["loc"])
        if loc[:2] == ["timeliness", "rule_sets"] and len(loc) > 3 and loc[3] == "stages":
            del loc[3]  # a rule set's stages sit beside its name in the file
        key = _dotted(loc)
        cause = (err.get("ctx") or {}).get("error")
        if err["type"] == "value_error" and isinstance(cause, Exception):
            message = str(cause)
            if isinstance(cause, _At):
                key = f"{key}{'' if cause.key.startswith('[') or not key else '.'}{cause.key}"
        elif err["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            message = "unknown key"
        else:
            message = err["msg"][:1].lower() + err["msg"][1:]
            value = err.get("input")
            if err["type"] not in ("missing", "missing_argument") and (
                    value is None or isinstance(value, (str, int, float, date))):
                message += f", not {value!r}"
        out.append((key, message))
    return out


def _dotted(loc: list) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_CONFIG_ADAPTER = TypeAdapter(Config)
