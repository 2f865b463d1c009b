"""Feedback from partnership_returns: a data quality report for each return.

A report covers one return of one partnership (the files it sent with the same date, loaded in
one run): each file and what became of it, counts by rule, every quarantined row with its file,
row number, record id and every rule it broke, the rows of earlier returns it corrected, every
row of earlier returns still waiting for a correction (listed alike), and the accepted values of
each code or theme rule that failed. Columns are named by the partnership's own headers with the
template name beside them (`Wording`). It shows no raw values beyond what the rules' messages
quote (no child column, not even the keyed hash): the partnership has its own data, the row
number and record id find it. Rows that broke only `flag` rules (config `quality.severity`) were
loaded: they are listed under "Loaded, but please correct", each flag with the column, what the
return said (row_flags.original_text, quoted as the messages quote values), the rule's sentence
and what the business unit does meanwhile (`flag_action`).

Reports are kept under `{data_dir}/reports/quality/{code}/` as HTML and text, and recorded as
rows of `bulletins` with audience `quality:{code}` and period = the return's date (a second
return with the same date is a new version). `return_files.quality_report_id` says which report
covers a file, so a run that stopped part-way reports the rest next time.

Sending them is `reviews.circulation.feedback_sends.send_feedback` (the bulletins' ledger,
exactly once): `quality:{code}` goes to the partnership's data_contact and `returns:{code}`
(late or missing returns, returns_due.py) to the business unit.
"""
from __future__ import annotations

import hashlib
import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import Engine, case, func, insert, select

from reviews.core import warehouse as wh
from reviews.core.audit import audit_now
from reviews.core.config import Config, normalise_word
from reviews.core.gc_pause import gc_paused
from reviews.core.rendering import templates
from reviews.returns.quality import rule_title, shown_record_id
from reviews.core.template import DATASET_ORDER, DATASETS

QUALITY = "quality"  # audience f"quality:{code}": a return's data quality report -> data_contact
RETURNS = "returns"  # audience f"returns:{code}": a late or missing return -> the business unit
FEEDBACK_KINDS = (QUALITY, RETURNS)


def audience(kind: str, code: str) -> str:
    return f"{kind}:{code}"


def is_feedback(audience_name: str) -> bool:
    return audience_name.partition(":")[0] in FEEDBACK_KINDS and ":" in audience_name


@dataclass(frozen=True)
class Stored:
    bulletin_id: int
    path: Path
    new: bool


class Document(NamedTuple):
    """One feedback document to store: its period, subject, both renderings and file stem."""

    period_start: date
    period_end: date
    subject: str
    html: str
    text: str
    stem: str
    now: datetime


def store_feedback(conn, *, kind: str, code: str, period_start: date, period_end: date, subject: str,
                   html: str, text: str, folder: Path, stem: str, now: datetime,
                   unless_subject_exists: bool = False) -> Stored:
    """Write the HTML and text beside each other and record them as the next version in `bulletins`.

    `unless_subject_exists`: reuse an existing version with the same subject instead (a notice
    that says the same thing is never stored, nor sent, twice).
    """
    b = wh.bulletins.c
    if unless_subject_exists:
        same = conn.execute(select(b.bulletin_id, b.path).where(
            b.period_start == period_start, b.period_end == period_end, b.audience == audience(kind, code),
            b.subject == subject).limit(1)).first()
        if same is not None:
            return Stored(same.bulletin_id, Path(same.path), False)
    doc = Document(period_start, period_end, subject, html, text, stem, now)
    return store_documents(conn, kind=kind, code=code, folder=folder, docs=[doc])[0]


def store_documents(conn, *, kind: str, code: str, folder: Path, docs: list[Document]) -> list[Stored]:
    """store_feedback for many documents in two statements, whatever their number (each one a
    round trip, and on SQLite the write lock is held from the first write to the commit): the
    versions already stored, read at once, then one INSERT of every row. Documents of the same
    period get successive versions, in the order given."""
    b = wh.bulletins.c
    who = audience(kind, code)
    latest = {(start, end): v for start, end, v in conn.execute(
        select(b.period_start, b.period_end, func.max(b.version))
        .where(b.audience == who, b.period_start.in_({d.period_start for d in docs}),
               b.period_end.in_({d.period_end for d in docs}))
        .group_by(b.period_start, b.period_end)
    ).all()}
    folder.mkdir(parents=True, exist_ok=True)
    rows, paths = [], []
    for d in docs:
        version = latest.get((d.period_start, d.period_end), 0) + 1
        latest[(d.period_start, d.period_end)] = version
        html_path = folder / f"{d.stem}_v{version}.html"
        html_path.write_text(d.html, encoding="utf-8")
        html_path.with_suffix(".txt").write_text(d.text, encoding="utf-8")
        paths.append(html_path)
        rows.append({"period_start": d.period_start, "period_end": d.period_end, "audience": who, "version": version,
                     "content_hash": hashlib.sha256((d.html + d.text).encode("utf-8")).hexdigest(),
                     "path": str(html_path), "subject": d.subject[:300], "built_at": d.now})
    ids = conn.execute(insert(wh.bulletins).returning(b.bulletin_id, sort_by_parameter_order=True), rows).scalars()
    return [Stored(i, path, True) for i, path in zip(ids, paths, strict=True)]


# ------------------------------------------------------------------------- quality reports


@gc_paused()  # see reviews.core.gc_pause
def build_quality_reports(
    engine: Engine, cfg: Config, partnership_code: str, out_dir: Path, as_of: date,
    clock: Callable[[], datetime] = audit_now,
) -> list[dict]:
    """A report for each return of the partnership whose files have none yet; [{bulletin_id, ...}].

    One transaction for them all, and the rows they show read once (not once per return): a run
    that stops part-way leaves no report recorded, and the next run builds them all again. Every
    report is rendered before the first write, then all are stored in three statements: on SQLite
    the write lock (the other workers' loads wait for it) is held only that long.
    """
    partnership = cfg.partnership(partnership_code)
    rf = wh.return_files
    with engine.begin() as conn:
        files = [dict(r) for r in conn.execute(
            select(rf).where(rf.c.partnership_code == partnership_code, rf.c.quality_report_id.is_(None))
            .order_by(rf.c.return_date, rf.c.file_id)
        ).mappings()]
        if not files:
            return []
        groups: dict[date, list[dict]] = {}
        for f in files:
            groups.setdefault(f["return_date"] or as_of, []).append(f)
        found = _report_rows(conn, partnership_code)
        returns = sorted(groups.items())
        wording = Wording(cfg, partnership)
        # Several returns in one run (a backlog): the rows still waiting are listed in the newest
        # report only (the one the partnership acts on); the others count them and point to it.
        newest = returns[-1][0]
        rendered = [_render_report(found, wording, cfg.region_name, day, group, clock(), listed_in=newest)
                    for day, group in returns]
        stored = store_documents(conn, kind=QUALITY, code=partnership_code, folder=Path(out_dir) / partnership_code,
                                 docs=[doc for doc, _ in rendered])
        report_of = {f["file_id"]: s.bulletin_id for s, (_, group) in zip(stored, returns) for f in group}
        conn.execute(rf.update().where(rf.c.file_id.in_(list(report_of)))
                     .values(quality_report_id=case(report_of, value=rf.c.file_id)))
    return [{"bulletin_id": s.bulletin_id, "return_date": day.isoformat(), "files": len(group),
             "rows_quarantined": quarantined, "path": str(s.path)}
            for s, (day, group), (_, quarantined) in zip(stored, returns, rendered)]


def _render_report(found: _Found, wording: Wording, region: str, return_date: date, files: list[dict],
                   now: datetime, listed_in: date | None = None) -> tuple[Document, int]:
    """One return's report, rendered (HTML and text), and how many of its rows were quarantined.
    `listed_in`: the return whose report lists the rows still waiting (default: this one)."""
    context = _report_context(found, wording, region, return_date, files, listed_in)
    subject = f"Data quality report: {wording.partnership.name} return of {return_date:%d %B %Y}"
    context["subject"] = subject
    context["generated"] = f"{now:%d %B %Y %H:%M} UTC"
    html = templates().get_template("quality_report.html.j2").render(context)
    text = templates().get_template("quality_report.txt.j2").render(context)
    return Document(return_date, return_date, subject, html, text, return_date.isoformat(), now), \
        context["totals"]["quarantined"]


class _Row(NamedTuple):
    dataset: str
    file: str
    row: int
    record_id: str
    reasons: list[str]
    corrected: bool


class _Corrected(NamedTuple):
    dataset: str
    record_id: str
    file_name: str
    row_number: int


class _FileRow(NamedTuple):
    name: str
    datasets: str
    status: str
    read: int
    loaded: int
    quarantined: int
    dropped: str
    error: str
    notes: list[str]
    sha256: str
    flagged: int = 0  # loaded rows with a flag (within `loaded`)


class _Flagged(NamedTuple):
    """A flag of a loaded row as read (row_flags), with its place in the report."""

    order: tuple  # (dataset rank, file name, row number, flag_id)
    dataset: str
    file: str
    row: int
    record_id: str
    rule: str
    columns: str
    original: str | None
    message: str
    corrected: bool  # superseded by a later return's row for the record


class _FlagRow(NamedTuple):
    """A flag as the report shows it."""

    dataset: str
    file: str
    row: int
    record_id: str
    column: str  # "Completed (completed_date)"
    original: str  # what the return said, quoted, or (blank)
    reason: str
    action: str  # what the business unit does until it is corrected
    corrected: bool


class _RuleCount(NamedTuple):
    dataset: str
    rule: str
    rows: int


class _Quarantined(NamedTuple):
    """A quarantined row as its report shows it, with its place in the report and its rule ids
    (worked out once, when it is read: each row is in one report only)."""

    order: tuple  # (dataset rank, file name, row number)
    rules: list[str]
    row: _Row


@dataclass(frozen=True)
class _Found:
    """What the reports of one partnership's unreported files show, read in three queries."""

    quarantined: dict[int, list[_Quarantined]]  # file_id -> its quarantined rows
    corrected: dict[int, list[tuple[int, int, _Corrected]]]  # resolving file_id -> (place in query, file_id, row)
    waiting: list[tuple[date, _Quarantined]]  # unresolved rows of dated files, by return date then report order
    flagged: dict[int, list[_Flagged]] | None = None  # file_id -> the flags of its loaded rows


_RANK = {d: i for i, d in enumerate(DATASET_ORDER)}


def _report_rows(conn, partnership_code: str) -> _Found:
    q, rf = wh.quarantine.c, wh.return_files.c
    unreported = select(rf.file_id).where(rf.partnership_code == partnership_code, rf.quality_report_id.is_(None))
    quarantined: dict[int, list[_Quarantined]] = {}
    for file_id, dataset, file_name, row_number, record_id, checks, rules, resolved_by in conn.execute(
        select(q.file_id, q.dataset, q.file_name, q.row_number, q.record_id, q.failed_checks, q.failed_rules,
               q.resolved_by_file_id).where(q.file_id.in_(unreported))
    ):
        row = _Row(dataset, file_name, row_number, shown_record_id(record_id, file_name, row_number),
                   (checks or "").splitlines(),
                   resolved_by is not None)
        quarantined.setdefault(file_id, []).append(
            _Quarantined((_RANK.get(dataset, 99), file_name, row_number), (rules or "").splitlines(), row))
    corrected: dict[int, list[tuple[int, int, _Corrected]]] = {}
    for place, (dataset, record_id, file_name, row_number, file_id, resolved_by) in enumerate(conn.execute(
        select(q.dataset, q.record_id, q.file_name, q.row_number, q.file_id, q.resolved_by_file_id)
        .where(q.resolved_by_file_id.in_(unreported))
        .order_by(q.dataset, q.record_id, q.file_name, q.row_number)
    )):
        corrected.setdefault(resolved_by, []).append(
            (place, file_id, _Corrected(dataset, record_id, file_name, row_number)))
    waiting = []
    for day, file_id, q_id, dataset, file_name, row_number, record_id, checks, rules in conn.execute(
        select(rf.return_date, q.file_id, q.quarantine_id, q.dataset, q.file_name, q.row_number, q.record_id,
               q.failed_checks, q.failed_rules)
        .select_from(wh.quarantine).join(wh.return_files, rf.file_id == q.file_id)
        .where(q.partnership_code == partnership_code, q.resolved_by_file_id.is_(None),
               rf.partnership_code == partnership_code, rf.return_date.is_not(None))
    ):
        row = _Row(dataset, file_name, row_number, shown_record_id(record_id, file_name, row_number),
                   (checks or "").splitlines(), False)
        waiting.append((day, _Quarantined((_RANK.get(dataset, 99), file_name, row_number, file_id, q_id),
                                          (rules or "").splitlines(), row)))
    waiting.sort(key=lambda w: (w[0], w[1].order))
    fl = wh.row_flags.c
    flagged: dict[int, list[_Flagged]] = {}
    for flag_id, file_id, dataset, file_name, row_number, record_id, rule, columns, original, message, by in conn.execute(
        select(fl.flag_id, fl.file_id, fl.dataset, fl.file_name, fl.row_number, fl.record_id, fl.rule_id, fl.columns,
               fl.original_text, fl.message, fl.superseded_by_file_id).where(fl.file_id.in_(unreported))
    ):
        flagged.setdefault(file_id, []).append(_Flagged(
            (_RANK.get(dataset, 99), file_name, row_number, flag_id), dataset, file_name, row_number, record_id,
            rule, columns, original, message, by is not None))
    return _Found(quarantined, corrected, waiting, flagged)


def _report_context(found: _Found, wording: Wording, region: str, return_date: date, files: list[dict],
                    listed_in: date | None = None) -> dict:
    """The template's values for one return. Its rows are tuples with named fields (what the
    templates read as r.dataset ... finds at once, where a dict takes a failed attribute lookup)."""
    ids = [f["file_id"] for f in files]
    group = set(ids)
    rows = sorted((r for i in ids for r in found.quarantined.get(i, ())), key=lambda r: r.order)
    counts: Counter = Counter()
    for r in rows:
        for rule in r.rules:
            counts[(r.row.dataset, rule)] += 1
    flags = sorted((f for i in ids for f in (found.flagged or {}).get(i, ())), key=lambda f: f.order)
    flag_counts = Counter((f.dataset, f.rule) for f in flags)
    # In the query's order (the places), as if the group's files' lists were one.
    resolved = sorted(c for i in ids for c in found.corrected.get(i, ()))
    corrected = [c for _, file_id, c in resolved if file_id not in group]
    waiting = [r for _, r in found.waiting[:bisect_left(found.waiting, return_date, key=lambda w: w[0])]]
    listed = listed_in is None or listed_in == return_date
    file_rows = [_FileRow(
        name=f["file_name"], datasets=(f["datasets"] or "").replace(",", ", ") or "none",
        status=f["status"], read=f["rows_read"], loaded=f["rows_loaded"],
        quarantined=f["rows_quarantined"], dropped=f["dropped_columns"] or "", error=f["error"] or "",
        notes=(f["notes"] or "").splitlines(),
        sha256=f["sha256"], flagged=f.get("rows_flagged") or 0,
    ) for f in files]
    return {
        "region": region,
        "partnership": wording.partnership.name,
        "return_date": f"{return_date:%d/%m/%Y}",
        "files": file_rows,
        "failed_files": [f for f in file_rows if f.status == "failed"],
        "totals": {k: sum(getattr(f, k) for f in file_rows) for k in ("read", "loaded", "quarantined", "flagged")},
        "rule_counts": [_RuleCount(d, wording.title(d, rule), n)
                        for (d, rule), n in sorted(counts.items(), key=lambda kv: (_RANK.get(kv[0][0], 99), -kv[1], kv[0][1]))],
        "rows": [wording.row(r) for r in rows],
        "corrected": corrected,
        "waiting": len(waiting),
        "waiting_listed_in": None if listed else f"{listed_in:%d/%m/%Y}",
        "waiting_rows": [wording.row(r) for r in waiting] if listed else [],
        "accepted": wording.accepted({(r.row.dataset, rule) for r in (*rows, *(waiting if listed else ()))
                                      for rule in r.rules} | set(flag_counts)),
        "flag_counts": [_RuleCount(d, wording.title(d, rule), n)
                        for (d, rule), n in sorted(flag_counts.items(),
                                                   key=lambda kv: (_RANK.get(kv[0][0], 99), -kv[1], kv[0][1]))],
        "flagged_rows": [wording.flag(f) for f in flags],
    }


# ----------------------------------------------------- the partnership's words in its report


class _Value(NamedTuple):
    code: str
    words: str  # the configured words that also mean it, as the config spells them ("" for none)


class _Accepted(NamedTuple):
    """What a code or theme column accepts, shown once per report under the rows that broke it."""

    dataset: str
    column: str  # as the report names it: "Nature (incident_type)"
    what: str  # "values" or "learning themes"
    codes: list[_Value]


_STORABLE_PART = re.compile(r"(?:^|(?<=; ))(\w+)(?= contains a character that cannot be stored)")


class Wording:
    """How one partnership's report says things: each column by the partnership's own header with
    the template name beside it ("Nature (incident_type)", from config `partnerships.<code>.columns`,
    per dataset), and the codes and themes a failed code rule accepts (config `code_synonyms`,
    `yes_no_columns`, `themes`).

    Rule messages are stored in `quarantine` in template names (quality.py writes them); the
    report renames the columns it knows the places of: the column a message starts with (every
    message but ragged_row's starts with one), the second date of an order rule, the other
    record's date of a cross_order rule, the status of author_needed and each column of a
    storable message. Quoted values are never touched.
    """

    def __init__(self, cfg: Config, partnership) -> None:
        self.cfg = cfg
        self.partnership = partnership
        self._headers: dict[str, dict[str, str]] = {}
        for dataset in DATASETS:
            theirs: dict[str, list[str]] = {}
            for header, column in partnership.header_map(dataset).items():
                if header != column:
                    theirs.setdefault(column, []).append(str(header))
            if theirs:
                self._headers[dataset] = {c: f"{' or '.join(h)} ({c})" for c, h in theirs.items()}
        self._said: dict[tuple[str, str, str], str] = {}  # messages repeat: said once each

    def column(self, dataset: str, column: str) -> str:
        """A template column as the partnership knows it, or as it is when they use the template's name."""
        return self._headers.get(dataset, {}).get(column, column)

    def title(self, dataset: str, rule_id: str) -> str:
        return rule_title(rule_id, dataset, self.column)

    def row(self, quarantined: _Quarantined) -> _Row:
        row = quarantined.row
        names = self._headers.get(row.dataset)
        if not names:
            return row
        rules = quarantined.rules if len(quarantined.rules) == len(row.reasons) else [""] * len(row.reasons)
        return row._replace(reasons=[self.reason(row.dataset, rule, m) for rule, m in zip(rules, row.reasons)])

    def flag(self, f: _Flagged) -> _FlagRow:
        """A flag of a loaded row in the partnership's words."""
        column = ", ".join(self.column(f.dataset, c) for c in f.columns.split(",") if c) or "the row"
        return _FlagRow(f.dataset, f.file, f.row, f.record_id, column, f.original or "(blank)",
                        self.reason(f.dataset, f.rule, f.message), flag_action(f.dataset, f.rule), f.corrected)

    def reason(self, dataset: str, rule_id: str, message: str) -> str:
        key = (dataset, rule_id, message)
        said = self._said.get(key)
        if said is None:
            said = self._said[key] = self._reason(dataset, rule_id, message)
        return said

    def _reason(self, dataset: str, rule_id: str, message: str) -> str:
        kind, _, arg = rule_id.partition(":")
        if kind == "storable":  # "finding contains a character ...; recommendation contains ..."
            return _STORABLE_PART.sub(lambda m: self.column(dataset, m.group(1)), message)
        names = self._headers.get(dataset, {})
        first, space, rest = message.partition(" ")
        if space and first in names:
            message = names[first] + space + rest
            head = len(names[first])
        else:
            head = 0
        if kind == "order":
            later = arg.partition("<=")[2]
            message = _rename_once(message, head, f" is after {later} ", f" is after {self.column(dataset, later)} ")
        elif kind == "cross_order":
            their_ds, _, their_col = arg.partition("<=")[0].partition(".")
            message = _rename_once(message, head, f" is before {their_col} ",
                                   f" is before {self.column(their_ds, their_col)} ")
        elif kind == "author_needed":
            message = _rename_once(message, head, " with status ", f" with {self.column(dataset, 'status')} ")
        return message

    def accepted(self, failed: set[tuple[str, str]]) -> list[_Accepted]:
        """The accepted values of each code or theme column among the (dataset, rule id) pairs that
        failed, in template order."""
        out = []
        for dataset in DATASET_ORDER:
            for col in DATASETS[dataset].columns:
                if col.kind == "code" and (dataset, f"code:{col.name}") in failed:
                    theme = col.name == "theme"
                    values = self._themes() if theme else self._codes(col.name, col.codes)
                    out.append(_Accepted(dataset, self.column(dataset, col.name),
                                         "learning themes" if theme else "values", values))
        return out

    def _themes(self) -> list[_Value]:
        return [_Value(code, ", ".join(w for w in words if normalise_word(w) != normalise_word(code)))
                for code, words in self.cfg.themes.items()]

    def _codes(self, column: str, codes: tuple[str, ...]) -> list[_Value]:
        synonyms = self.cfg.code_synonyms.get(column, {})
        spelt = self.cfg.code_synonym_spellings
        return [_Value(code, ", ".join(spelt.get(w, w) for w, c in synonyms.items()
                                       if c == code and w != normalise_word(code)))
                for code in codes]


# The timeliness stage each date column completes (reviews.timeliness.compute): a flag on it leaves
# that stage `unknown` until a later return corrects it.
STAGE_OF_COLUMN = {
    ("notifications", "notified_date"): "its notification",
    ("rapid_reviews", "completed_date"): "its rapid review",
    ("practice_reviews", "completed_date"): "its LCSPR completion",
    ("practice_reviews", "final_report_sent_date"): "its publication notice",
    ("practice_reviews", "published_date"): "its publication notice",
}


def flag_action(dataset: str, rule_id: str) -> str:
    """What the business unit does with a flagged row until a later return corrects it, in words."""
    from reviews.returns.quality import blanked_column, rule_columns

    kind = rule_id.partition(":")[0]
    stages = dict.fromkeys(STAGE_OF_COLUMN[(dataset, c)] for c in rule_columns(rule_id) if (dataset, c) in STAGE_OF_COLUMN)
    if kind in ("date", "not_after_period_end", "order", "cross_order") and stages:
        kept = "" if blanked_column(rule_id) else " (both dates are kept as sent)"
        return f"{' and '.join(stages)} is judged 'unknown' until corrected{kept}"
    if kind == "approved_author":
        return "loaded and judged as usual; the author is held blank until one on the regional list is given"
    if kind == "author_needed":
        return "loaded and judged as usual; please give the author once the reviewer is appointed"
    if kind in ("order", "cross_order"):
        return "loaded with both dates as sent; please check which is wrong"
    if blanked_column(rule_id):
        return "loaded, with this value held blank until corrected"
    return "loaded as sent; please check it"


def _rename_once(message: str, start: int, old: str, new: str) -> str:
    """`message` with the first `old` at or after `start` made `new` (a column's name in its place)."""
    at = message.find(old, start)
    return message if at < 0 else message[:at] + new + message[at + len(old):]
