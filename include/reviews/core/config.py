"""Load and check the YAML configuration (partnerships, codes, themes, timescales).

Everything a business-unit officer may need to change lives in `config/reviews.yaml`; this module
turns it into typed objects and fails early, naming the key, when something is wrong.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from reviews.core.template import DATASETS

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "reviews.yaml"
_CODE_RE = re.compile(r"^[a-z][a-z0-9_]{1,40}$")


class ConfigError(ValueError):
    """The configuration file is missing something or contradicts itself."""


@dataclass(frozen=True)
class Partnership:
    code: str
    name: str
    ons_code: str
    source: dict[str, Any]
    file_format: str
    date_format: str
    columns: dict[str, dict[str, str]]  # dataset -> their header -> template column
    data_contact: tuple[str, ...]
    distribution: tuple[str, ...]

    def header_map(self, dataset: str) -> dict[str, str]:
        """Their header -> template column for one dataset (empty when they use the template)."""
        return dict(self.columns.get(dataset, {}))


SOURCE_KINDS = ("folder", "sftp", "sql")
RETURN_FREQUENCIES = ("monthly", "quarterly")


@dataclass(frozen=True)
class ReturnsRule:
    """When returns are due: one per period (month or calendar quarter), N days after its end."""

    frequency: str
    due_days_after_period_end: int
    expected_from: date  # the first period end a return is expected for


@dataclass(frozen=True)
class RetentionRule:
    """How long case records are kept, and what happens after (no statutory period exists)."""

    keep_years: int
    action: str  # anonymise | delete


@dataclass(frozen=True)
class Limits:
    """What a single return may be, checked before it is read (config `limits`).

    A return is kilobytes; these bounds are far above any real one and far below what would
    hurt the workers: a file bigger than `max_file_bytes` is neither read nor copied, a table
    with more than `max_rows` rows is refused, and a workbook is refused before it is opened when
    its zip says it would unpack to more than `max_xlsx_uncompressed_bytes`, or when one of its
    parts (of 1 MiB or more unpacked) is compressed more than `max_xlsx_compression_ratio` times
    (a zip bomb).
    """

    max_file_bytes: int = 100 * 1024 * 1024
    max_rows: int = 100_000
    max_xlsx_uncompressed_bytes: int = 100 * 1024 * 1024
    max_xlsx_compression_ratio: int = 100


@dataclass(frozen=True)
class StageRule:
    start: str
    working_days: int | None = None
    calendar_months: int | None = None
    working_days_before_publication: int | None = None


@dataclass(frozen=True)
class RuleSet:
    name: str
    in_force_from: date
    stages: dict[str, StageRule]


@dataclass(frozen=True)
class Config:
    path: Path
    region_name: str
    business_unit_email: tuple[str, ...]
    sender: str
    allowed_domains: tuple[str, ...]
    partnerships: dict[str, Partnership]
    code_synonyms: dict[str, dict[str, str]]  # template column -> normalised word -> code
    themes: dict[str, tuple[str, ...]]
    rule_sets: tuple[RuleSet, ...]
    at_risk_working_days: int
    suppression_low: int
    suppression_high: int
    suppression_symbol: str
    approved_authors: tuple[str, ...] = ()  # the regional list of approved LCSPR authors
    returns: ReturnsRule | None = None  # None: late and missing returns are not checked
    retention: RetentionRule | None = None  # None: records are kept until a rule is configured
    limits: Limits = Limits()  # bounds on a single return file (size, rows, workbook unpacked size)

    def partnership(self, code: str) -> Partnership:
        try:
            return self.partnerships[code]
        except KeyError:
            raise ConfigError(f"unknown partnership code {code!r}") from None

    def theme_lookup(self) -> dict[str, str]:
        """Normalised word -> theme code, codes themselves included."""
        out: dict[str, str] = {}
        for code, words in self.themes.items():
            out[normalise_word(code)] = code
            for w in words:
                out[normalise_word(w)] = code
        return out

    def rule_set_for(self, start: date) -> RuleSet:
        chosen = None
        for rs in self.rule_sets:
            if rs.in_force_from <= start:
                chosen = rs
        return chosen or self.rule_sets[0]


def normalise_word(text: str) -> str:
    """Fold case, spaces, hyphens and underscores so 'Serious-Harm' matches 'serious harm'."""
    return re.sub(r"[\s_\-]+", " ", str(text).strip().lower()).strip()


def _need(d: dict, key: str, where: str) -> Any:
    if not isinstance(d, dict) or key not in d:
        raise ConfigError(f"{where}: missing key {key!r}")
    return d[key]


def _as_date(value: Any, where: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{where}: {value!r} is not an ISO date") from None


def _partnership(code: str, raw: dict) -> Partnership:
    where = f"partnerships.{code}"
    if not _CODE_RE.match(code):
        raise ConfigError(f"{where}: code must be lower-case letters, digits and underscores")
    columns = raw.get("columns") or {}
    for dataset, mapping in columns.items():
        if dataset not in DATASETS:
            raise ConfigError(f"{where}.columns: unknown dataset {dataset!r}")
        known = set(DATASETS[dataset].column_names)
        for theirs, ours in (mapping or {}).items():
            if ours not in known:
                raise ConfigError(f"{where}.columns.{dataset}: {theirs!r} maps to unknown column {ours!r}")
    source = _source(dict(raw.get("source") or {"kind": "folder"}), f"{where}.source")
    fmt = raw.get("file_format", "csv")
    if fmt not in ("csv", "xlsx"):
        raise ConfigError(f"{where}.file_format must be csv or xlsx, not {fmt!r}")
    return Partnership(
        code=code,
        name=str(_need(raw, "name", where)),
        ons_code=str(_need(raw, "ons_code", where)),
        source=source,
        file_format=fmt,
        date_format=str(raw.get("date_format", "%d/%m/%Y")),
        columns={k: dict(v or {}) for k, v in columns.items()},
        data_contact=tuple(raw.get("data_contact") or ()),
        distribution=tuple(raw.get("distribution") or ()),
    )


def _source(raw: dict, where: str) -> dict[str, Any]:
    """folder (inbox/{code}); sftp: conn_id + path; sql: conn_id + one query per dataset."""
    kind = raw.get("kind", "folder")
    if kind not in SOURCE_KINDS:
        raise ConfigError(f"{where}.kind must be one of {', '.join(SOURCE_KINDS)}, not {kind!r}")
    if kind in ("sftp", "sql") and not str(raw.get("conn_id") or "").strip():
        raise ConfigError(f"{where}: a {kind} source needs conn_id (an Airflow connection id)")
    if kind == "sftp" and not str(raw.get("path") or "").strip():
        raise ConfigError(f"{where}: an sftp source needs path (the folder on the server)")
    if kind == "sql":
        queries = raw.get("queries")
        if not isinstance(queries, dict) or not queries:
            raise ConfigError(f"{where}: a sql source needs queries (dataset: SQL)")
        for dataset, sql in queries.items():
            if dataset not in DATASETS:
                raise ConfigError(f"{where}.queries: unknown dataset {dataset!r}")
            if not isinstance(sql, str) or not sql.strip():
                raise ConfigError(f"{where}.queries.{dataset}: the query is empty")
    return {**raw, "kind": kind}


def _returns(raw: dict | None) -> ReturnsRule | None:
    if not raw:
        return None
    where = "returns"
    frequency = str(raw.get("frequency", "quarterly"))
    if frequency not in RETURN_FREQUENCIES:
        raise ConfigError(f"{where}.frequency must be one of {', '.join(RETURN_FREQUENCIES)}, not {frequency!r}")
    days = raw.get("due_days_after_period_end", 10)
    if not isinstance(days, int) or days < 0:
        raise ConfigError(f"{where}.due_days_after_period_end must be a whole number of days, 0 or more")
    return ReturnsRule(frequency, days, _as_date(_need(raw, "expected_from", where), f"{where}.expected_from"))


def _rule_set(raw: dict, i: int) -> RuleSet:
    where = f"timeliness.rule_sets[{i}]"
    stages = {}
    for stage in ("notification", "rapid_review", "lcspr_completion", "publication_notice"):
        s = dict(_need(raw, stage, where))
        stages[stage] = StageRule(
            start=str(_need(s, "start", f"{where}.{stage}")),
            working_days=s.get("working_days"),
            calendar_months=s.get("calendar_months"),
            working_days_before_publication=s.get("working_days_before_publication"),
        )
    return RuleSet(
        name=str(_need(raw, "name", where)),
        in_force_from=_as_date(_need(raw, "in_force_from", where), where),
        stages=stages,
    )


def _retention(raw: dict | None) -> RetentionRule | None:
    if not raw:
        return None
    years = int(_need(raw, "keep_years", "retention"))
    action = str(raw.get("action", "anonymise"))
    if years < 1:
        raise ConfigError("retention.keep_years must be at least 1")
    if action not in ("anonymise", "delete"):
        raise ConfigError(f"retention.action must be anonymise or delete, not {action!r}")
    return RetentionRule(years, action)


def _limits(raw: dict | None) -> Limits:
    if not raw:
        return Limits()
    if not isinstance(raw, dict):
        raise ConfigError("limits must be a mapping (max_file_bytes, max_rows, ...)")
    known = Limits.__dataclass_fields__
    values = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(f"limits: unknown key {key!r} (known: {', '.join(known)})")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"limits.{key} must be a whole number, 1 or more")
        values[key] = value
    return Limits(**values)


def load_config(path: str | Path | None = None) -> Config:
    """Read the config file (default: the project's own) and check it."""
    p = Path(path) if path else DEFAULT_CONFIG
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    with p.open(encoding="utf-8") as fh:
        raw = yaml.safe_load(fh) or {}
    region = _need(raw, "region", str(p))
    bu = _need(region, "business_unit", "region")
    partnerships = {
        code: _partnership(code, body or {}) for code, body in (_need(raw, "partnerships", str(p)) or {}).items()
    }
    if not partnerships:
        raise ConfigError("partnerships: at least one partnership is needed")

    synonyms: dict[str, dict[str, str]] = {}
    raw_syn = raw.get("code_synonyms") or {}
    yes_no = {normalise_word(k): v for k, v in (raw_syn.get("yes_no") or {}).items()}
    for col, mapping in raw_syn.items():
        for word in (mapping or {}):
            if not isinstance(word, str):
                raise ConfigError(
                    f"code_synonyms.{col}: the word {word!r} was read as {type(word).__name__}; "
                    "put it in quotes (YAML reads Yes/No/On/Off as true/false)"
                )
        if col == "yes_no":
            continue
        synonyms[col] = {normalise_word(k): str(v) for k, v in (mapping or {}).items()}
    for col in raw.get("yes_no_columns") or ():
        synonyms[col] = dict(yes_no)

    themes = {str(k): tuple(str(w) for w in (v or ())) for k, v in (raw.get("themes") or {}).items()}
    tl = raw.get("timeliness") or {}
    rule_sets = tuple(
        sorted((_rule_set(r, i) for i, r in enumerate(_need(tl, "rule_sets", "timeliness"))), key=lambda r: r.in_force_from)
    )
    sup = raw.get("suppression") or {}
    return Config(
        path=p,
        region_name=str(region.get("name", "")),
        business_unit_email=tuple(_need(bu, "email", "region.business_unit")),
        sender=str(_need(region, "sender", "region")),
        allowed_domains=tuple(str(d).lower() for d in raw.get("allowed_domains") or ()),
        partnerships=partnerships,
        code_synonyms=synonyms,
        themes=themes,
        rule_sets=rule_sets,
        at_risk_working_days=int(tl.get("at_risk_working_days", 3)),
        suppression_low=int(sup.get("low", 1)),
        suppression_high=int(sup.get("high", 5)),
        suppression_symbol=str(sup.get("symbol", "c")),
        approved_authors=tuple(str(a).strip() for a in raw.get("approved_authors") or () if str(a).strip()),
        returns=_returns(raw.get("returns")),
        retention=_retention(raw.get("retention")),
        limits=_limits(raw.get("limits")),
    )
