"""Build and store a period's bulletins: every audience's HTML, text, PDF and XLSX, the
7-minute briefing pages, and the business unit's internal files (summary and redactions).

Idempotent over the period: a rebuild that renders identical content reuses the stored version
(same content hash) and only re-creates a missing file; changed content becomes a new version.
The PDF is printed before the version's row is written, so a stored bulletin always has its
attachments (a crash in between leaves files without a row, which the next build overwrites).

Files, under `{out_dir}/{period_start}_{period_end}/`:
    {name}-learning-bulletin-{period}-v{n}.html|.txt|.pdf|.xlsx   one set per audience and version
    briefings/{partnership}_{review}.html|.txt                    one 7-minute briefing per review
    internal/summary.json        the unsuppressed summary: business unit only, never attached
    internal/redactions.csv      every redaction made in the period's free text: business unit only
The period's redactions are also in the warehouse table `bulletin_redactions`.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy import Engine, insert, select

from reviews import warehouse as wh
from reviews.audit import audit_now
from reviews.config import Config
from reviews.publishing import PublishingSettings, publishing_settings
from reviews.reporting_periods import period_of

log = logging.getLogger(__name__)
REGION = "region"
REDACTION_COLUMNS = ("partnership_code", "review_id", "record_id", "field", "kind", "kind_label", "used_in", "excerpt")


@dataclass
class BuildReport:
    built: list[dict] = field(default_factory=list)
    briefings: int = 0
    redactions: int = 0
    pdfs_printed: int = 0
    folder: str = ""

    def to_xcom(self) -> dict:
        return {"bulletins": self.built, "briefings": self.briefings, "redactions": self.redactions,
                "pdfs_printed": self.pdfs_printed}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "bulletin"


def _write(path: Path, data: str | bytes) -> bool:
    """Write atomically unless the file already holds exactly this; True if written."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if path.is_file() and path.read_bytes() == raw:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(raw)
    os.replace(tmp, path)
    return True


def attachment_paths(html_path: str | Path) -> tuple[Path, Path]:
    """(pdf, xlsx) stored beside a bulletin's HTML file."""
    p = Path(html_path)
    return p.with_suffix(".pdf"), p.with_suffix(".xlsx")


def _stem(name: str, period_short: str, version: int) -> str:
    return f"{_slug(name)}-learning-bulletin-{_slug(period_short)}-v{version}"


def _redactions_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(REDACTION_COLUMNS)
    for r in rows:
        from reviews.exports import neutralise  # a CSV opened in Excel runs formulas too

        w.writerow([neutralise("; ".join(r[c]) if isinstance(r[c], list) else ("" if r[c] is None else str(r[c])))
                    for c in REDACTION_COLUMNS])
    return buf.getvalue()


def _store_redactions(engine: Engine, start: date, end: date, rows: list[dict]) -> None:
    t = wh.bulletin_redactions
    with engine.begin() as conn:
        conn.execute(t.delete().where(t.c.period_start == start, t.c.period_end == end))
        if rows:
            conn.execute(insert(t), [
                {"period_start": start, "period_end": end, "partnership_code": r["partnership_code"],
                 "review_id": r["review_id"], "record_id": r["record_id"], "field": r["field"], "kind": r["kind"],
                 "used_in": "; ".join(r["used_in"]), "excerpt": r["excerpt"], "found_at": audit_now()}
                for r in rows
            ])


def build_period(engine: Engine, cfg: Config, period_start: date, period_end: date, as_of: date, out_dir: Path,
                 settings: PublishingSettings | None = None, chromium: str | None = None) -> BuildReport:
    """Compile the summary, render every audience, write and store what is new; see the module doc."""
    from reviews.bulletin import render_bulletin
    from reviews.exports import write_workbook
    from reviews.summary import compile_summary

    settings = settings or publishing_settings(cfg)
    summary = compile_summary(engine, cfg, period_start, period_end, as_of, settings)
    try:
        short = period_of(period_start, period_end).short_label
    except ValueError:
        short = f"{period_start}-{period_end}"
    folder = Path(out_dir) / f"{period_start.isoformat()}_{period_end.isoformat()}"
    report = BuildReport(folder=str(folder))

    internal = folder / "internal"
    _write(internal / "summary.json", json.dumps(summary, indent=1, sort_keys=True) + "\n")
    _write(internal / "redactions.csv", _redactions_csv(summary["redactions"]))
    _store_redactions(engine, period_start, period_end, summary["redactions"])
    report.redactions = len(summary["redactions"])
    if summary["redactions"]:
        log.warning("%d redaction(s) in the free text of %s..%s: listed in %s and table bulletin_redactions",
                    len(summary["redactions"]), period_start, period_end, internal / "redactions.csv")

    rendered = {aud: render_bulletin(summary, cfg, aud, settings) for aud in [REGION, *cfg.partnerships]}
    for b in rendered[REGION].briefings:  # the region's bulletin carries every briefing
        _write(folder / "briefings" / f"{b.slug}.html", b.html)
        _write(folder / "briefings" / f"{b.slug}.txt", b.text)
    report.briefings = len(rendered[REGION].briefings)

    plans = []
    with engine.connect() as conn:
        b = wh.bulletins.c
        for audience, r in rendered.items():
            latest = conn.execute(
                select(b.bulletin_id, b.version, b.content_hash, b.path)
                .where(b.period_start == period_start, b.period_end == period_end, b.audience == audience)
                .order_by(b.version.desc())
                .limit(1)
            ).first()
            same = latest is not None and latest.content_hash == r.content_hash
            version = latest.version if same else (latest.version + 1 if latest is not None else 1)
            name = summary["region_name"] or cfg.region_name if audience == REGION else cfg.partnerships[audience].name
            html_path = Path(latest.path) if same else folder / f"{_stem(name, short, version)}.html"
            plans.append((audience, r, latest, same, version, html_path))

    notes = [
        f"Period: {summary['period']['start']} to {summary['period']['end']}; as at {summary['as_of']}.",
        f"Counts from {cfg.suppression_low} to {cfg.suppression_high} are shown as '{cfg.suppression_symbol}', with "
        "secondary suppression so that no hidden count can be worked out from the totals. Zero is shown.",
        "These counts describe safeguarding activity; they are not performance measures.",
    ]
    jobs = []
    for audience, r, latest, same, version, html_path in plans:
        pdf, xlsx = attachment_paths(html_path)
        if not same:
            _write(html_path, r.html)
            _write(html_path.with_suffix(".txt"), r.text)
        if not same or not xlsx.is_file():
            write_workbook(xlsx, r.tables, title=r.subject, notes=notes, stamp=period_end)
        if settings.summary.pdf and (not same or not pdf.is_file()):
            jobs.append((r.print_html, pdf, r.subject))
    if jobs:
        from reviews.browser import print_pdfs, stable_pdf

        for path in print_pdfs(jobs, chromium):
            path.write_bytes(stable_pdf(path.read_bytes(), period_end.strftime("%Y%m%d") + "000000"))
        report.pdfs_printed = len(jobs)

    with engine.begin() as conn:
        b = wh.bulletins.c
        for audience, r, latest, same, version, html_path in plans:
            if same:
                report.built.append({"bulletin_id": latest.bulletin_id, "audience": audience, "version": version, "new": False})
                continue
            bulletin_id = conn.execute(
                insert(wh.bulletins).returning(b.bulletin_id),
                {
                    "period_start": period_start, "period_end": period_end, "audience": audience,
                    "version": version, "content_hash": r.content_hash, "path": str(html_path),
                    "subject": r.subject, "built_at": audit_now(),
                },
            ).scalar_one()
            report.built.append({"bulletin_id": bulletin_id, "audience": audience, "version": version, "new": True})
    return report


def attachments_for_factory(cfg: Config, settings: PublishingSettings | None = None):
    """circulation.send_pending's `attachments_for`: the PDF for everyone; the XLSX for the business unit.

    Only learning bulletins (audience 'region' or a partnership code) get attachments; other
    rows in the ledger (e.g. data quality reports) are sent as they are. A bulletin whose PDF is
    missing raises OSError, so the send is not attempted and is reported (never sent without it).
    """
    settings = settings or publishing_settings(cfg)
    business_unit = {a.strip().lower() for a in cfg.business_unit_email}
    learning = {REGION, *cfg.partnerships}

    def attachments_for(row) -> list[Path]:
        if row.get("audience") not in learning:
            return []
        pdf, xlsx = attachment_paths(row["path"])
        out = []
        if settings.summary.pdf:
            if not pdf.is_file():
                raise FileNotFoundError(f"the bulletin's PDF is missing: {pdf} (rebuild the period to print it)")
            out.append(pdf)
        if settings.xlsx_to_business_unit and str(row.get("recipient", "")).lower() in business_unit and xlsx.is_file():
            out.append(xlsx)
        return out

    return attachments_for
