"""Build and store a period's bulletins: every audience's HTML, text, PDF and XLSX, the
7-minute briefing pages, and the business unit's internal files (summary and redactions).

Idempotent over the period: a rebuild that renders identical content reuses the stored version
(same content hash) and only re-creates a missing file; changed content becomes a new version.
The PDF is printed before the version's row is written, so a stored bulletin always has its
attachments (a crash in between leaves files without a row, which the next build overwrites).

Files, under `{out_dir}/{period_start}_{period_end}/`:
    {name}-learning-bulletin-{period}-v{n}.html|.txt|.pdf|.xlsx   one set per audience and version
    briefings/{partnership}_{review}.html|.txt                    one 7-minute briefing per review
        (an id whose safe form differs from it, `KNO/R/100`, gets `~` and a hash of the id added:
        learning.briefing.briefing_slug; two audiences whose names make the same file name get
        their codes added: _file_names)
    internal/summary.json        the unsuppressed summary: business unit only, never attached
    internal/redactions.csv      every redaction made in the period's free text: business unit only
    internal/inputs.json         per audience, a digest of what its bulletin was rendered from
                                 (summary, config, renderer) and the content hash it gave
A rebuild whose inputs digest matches the stored version's renders nothing for that audience:
the bulletin is a pure function of those inputs, so it would render the same content hash.
The period's redactions are also in the warehouse table `bulletin_redactions`.
"""
from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy import Engine, insert, select

from reviews.core import warehouse as wh
from reviews.core.audit import audit_now
from reviews.core.config import Config
from reviews.core.reporting_periods import period_of
from reviews.learning.readiness import HAVE_DATA, Readiness, period_readiness

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


def _file_names(names: dict[str, str]) -> dict[str, str]:
    """Each audience's name for its files: its display name, unless another audience's name makes
    the same file name (`St Helens` and `St. Helens`, or a partnership named like the region):
    then the audience code is added to each of them (stable while the config is)."""
    counts: dict[str, int] = {}
    for name in names.values():
        counts[_slug(name)] = counts.get(_slug(name), 0) + 1
    return {a: name if counts[_slug(name)] == 1 else f"{name} {a}" for a, name in names.items()}


def _redactions_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(REDACTION_COLUMNS)
    for r in rows:
        from reviews.learning.exports import neutralise  # a CSV opened in Excel runs formulas too

        w.writerow([neutralise("; ".join(r[c]) if isinstance(r[c], list) else ("" if r[c] is None else str(r[c])))
                    for c in REDACTION_COLUMNS])
    return buf.getvalue()


RENDERER_FILES = ("learning/bulletin.py", "learning/briefing.py", "learning/charts.py", "learning/exports.py",
                  "privacy/suppression.py", "learning/publication.py", "core/reporting_periods.py",
                  "core/rendering.py",  # the Jinja environment's settings
                  "learning/summary.py")  # summary.py: theme labels are looked up at rendering


@functools.lru_cache(maxsize=1)
def _renderer_digest() -> str:
    """What the rendering code is: its source, its templates and the libraries that draw the bytes."""
    import jinja2
    import matplotlib
    import openpyxl
    import PIL

    here = Path(__file__).resolve().parents[1]  # the reviews package
    h = hashlib.sha256()
    for path in [*(here / f for f in RENDERER_FILES), *sorted((here / "templates").glob("*.j2"))]:
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    h.update(repr((matplotlib.__version__, openpyxl.__version__, jinja2.__version__, PIL.__version__)).encode())
    return h.hexdigest()


def _inputs_digests(summary_json: str, cfg: Config, audiences: list[str]) -> dict[str, str]:
    """Per audience, a digest of everything its bulletin is rendered from (the shared inputs,
    then the audience: the shared part, megabytes nationally, is hashed once). The config's repr
    carries its bulletin settings (summary, briefings, rounding), not the number of workers."""
    shared = hashlib.sha256()
    for part in (_renderer_digest(), summary_json, repr(cfg)):
        shared.update(part.encode("utf-8") + b"\0")
    out = {}
    for audience in audiences:
        h = shared.copy()
        h.update(audience.encode("utf-8") + b"\0")
        out[audience] = h.hexdigest()
    return out


def _latest_versions(engine: Engine, start: date, end: date, audiences: list[str]) -> dict:
    """Each audience's latest stored version of the period's bulletin (None if none), in one query."""
    b = wh.bulletins.c
    latest = dict.fromkeys(audiences)
    with engine.connect() as conn:
        for row in conn.execute(
            select(b.audience, b.bulletin_id, b.version, b.content_hash, b.path)
            .where(b.period_start == start, b.period_end == end, b.audience.in_(audiences))
            .order_by(b.audience, b.version)
        ):
            latest[row.audience] = row
    return latest


def _read_inputs(path: Path) -> dict:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _unchanged(latest, recorded: dict | None, digest: str, html_path: Path, pdf_wanted: bool) -> bool:
    """True when the stored version was rendered from these very inputs and its files are all there."""
    if latest is None or not recorded or recorded.get("inputs") != digest:
        return False
    if recorded.get("content_hash") != latest.content_hash:
        return False
    pdf, xlsx = attachment_paths(html_path)
    files = [html_path, html_path.with_suffix(".txt"), xlsx] + ([pdf] if pdf_wanted else [])
    return all(f.is_file() for f in files)


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
                 chromium: str | None = None, readiness: Readiness | None = None) -> BuildReport:
    """Compile the summary, render every audience, write and store what is new; see the module doc.

    `readiness` (default: judged as of `as_of`) says whose data is missing or late: its words open
    every bulletin, and a version built after someone's data arrived says so (`_updated`)."""
    from reviews.learning.briefing import briefing_slug as _briefing_slug
    from reviews.learning.bulletin import render_bulletins, workbook_bytes
    from reviews.learning.summary import compile_summary

    readiness = readiness or period_readiness(engine, cfg, period_start, period_end, as_of)
    summary = compile_summary(engine, cfg, period_start, period_end, as_of)
    summary["data_notices"] = readiness.notices()
    try:
        short = period_of(period_start, period_end).short_label
    except ValueError:
        short = f"{period_start}-{period_end}"
    folder = Path(out_dir) / f"{period_start.isoformat()}_{period_end.isoformat()}"
    report = BuildReport(folder=str(folder))

    internal = folder / "internal"
    summary_json = json.dumps(summary, indent=1, sort_keys=True) + "\n"
    _write(internal / "summary.json", summary_json)
    _write(internal / "redactions.csv", _redactions_csv(summary["redactions"]))
    _store_redactions(engine, period_start, period_end, summary["redactions"])
    report.redactions = len(summary["redactions"])
    if summary["redactions"]:
        log.warning("%d redaction(s) in the free text of %s..%s: listed in %s and table bulletin_redactions",
                    len(summary["redactions"]), period_start, period_end, internal / "redactions.csv")

    audiences = [REGION, *cfg.partnerships]
    latest = _latest_versions(engine, period_start, period_end, audiences)
    inputs_path = internal / "inputs.json"
    recorded = _read_inputs(inputs_path)
    digests = _inputs_digests(summary_json, cfg, audiences)
    kept = {a for a in audiences
            if _unchanged(latest[a], recorded.get(a), digests[a], Path(latest[a].path) if latest[a] else folder,
                          cfg.summary.pdf)}
    from reviews.learning.briefing import n_found, withheld_briefings

    briefing_slugs = [_briefing_slug(x) for x in summary["briefings"] if n_found(x)]
    withheld = withheld_briefings(summary)
    for w in withheld:  # the business unit is told (the sign-off request lists them); nothing is sent
        log.warning("7-minute briefing of %s %s not made: %s", w["partnership"], w["review_id"], w["reason"])
    if REGION in kept and not all((folder / "briefings" / f"{slug}.{ext}").is_file()
                                  for slug in briefing_slugs for ext in ("html", "txt")):
        kept.discard(REGION)  # the region's bulletin carries the briefings: render it to write them again

    rendered = render_bulletins(summary, cfg, [a for a in audiences if a not in kept])
    history = _data_history(engine, period_start, period_end, list(rendered))
    for audience, r in list(rendered.items()):
        update = _updated(readiness, history.get(audience, []), r)
        if update:
            rendered[audience] = _render_one(summary, cfg, audience, update)
    if REGION in rendered:
        for br in rendered[REGION].briefings:
            _write(folder / "briefings" / f"{br.slug}.html", br.html)
            _write(folder / "briefings" / f"{br.slug}.txt", br.text)
    report.briefings = len(briefing_slugs)

    plans = []
    file_names = _file_names({a: summary["region_name"] or cfg.region_name if a == REGION else cfg.partnerships[a].name
                              for a in audiences})
    for audience in audiences:
        last = latest[audience]
        if audience in kept:
            plans.append((audience, None, last, True, last.version, Path(last.path)))
            continue
        r = rendered[audience]
        same = last is not None and last.content_hash == r.content_hash
        version = last.version if same else (last.version + 1 if last is not None else 1)
        html_path = Path(last.path) if same else folder / f"{_stem(file_names[audience], short, version)}.html"
        plans.append((audience, r, last, same, version, html_path))

    jobs = []
    for _audience, r, _last, same, _version, html_path in plans:
        if r is None:  # kept: rendered from the same inputs before, every file in place
            continue
        pdf, xlsx = attachment_paths(html_path)
        if not same:
            _write(html_path, r.html)
            _write(html_path.with_suffix(".txt"), r.text)
        if not same or not xlsx.is_file():
            _write(xlsx, r.xlsx or workbook_bytes(summary, cfg, r))
        if cfg.summary.pdf and (not same or not pdf.is_file()):
            jobs.append((r.print_html, pdf, r.subject))
    if jobs:
        from reviews.learning.browser import print_pdfs, stable_pdf

        for path in print_pdfs(jobs, chromium):
            path.write_bytes(stable_pdf(path.read_bytes(), period_end.strftime("%Y%m%d") + "000000"))
        report.pdfs_printed = len(jobs)

    with engine.begin() as conn:
        b = wh.bulletins.c
        for audience, r, last, same, version, html_path in plans:
            if same:
                report.built.append({"bulletin_id": last.bulletin_id, "audience": audience, "version": version, "new": False})
                continue
            bulletin_id = conn.execute(
                insert(wh.bulletins).returning(b.bulletin_id),
                {
                    "period_start": period_start, "period_end": period_end, "audience": audience,
                    "version": version, "content_hash": r.content_hash, "path": str(html_path),
                    "subject": r.subject, "built_at": audit_now(),
                    "data_status": json.dumps({"partnerships": readiness.data_status(),
                                               "headlines": [[h["label"], h["value"]] for h in r.headlines],
                                               "briefings_withheld": [w for w in withheld if audience == REGION
                                                                      or w["partnership_code"] == audience]},
                                              sort_keys=True),
                },
            ).scalar_one()
            report.built.append({"bulletin_id": bulletin_id, "audience": audience, "version": version, "new": True})
    _write(inputs_path, json.dumps(
        {a: {"inputs": digests[a], "content_hash": (rendered[a].content_hash if a in rendered
                                                      else recorded[a]["content_hash"])} for a in audiences},
        indent=1, sort_keys=True) + "\n")
    return report


def _data_history(engine: Engine, start: date, end: date, audiences: list[str]) -> dict[str, list]:
    """Each audience's stored versions of the period, newest first: (version, built_at, data_status)."""
    b = wh.bulletins.c
    out: dict[str, list] = {a: [] for a in audiences}
    if not audiences:
        return out
    with engine.connect() as conn:
        for row in conn.execute(
            select(b.audience, b.version, b.built_at, b.data_status)
            .where(b.period_start == start, b.period_end == end, b.audience.in_(audiences))
            .order_by(b.audience, b.version.desc())
        ):
            out[row.audience].append((row.version, row.built_at, json.loads(row.data_status) if row.data_status else None))
    return out


def _updated(readiness: Readiness, history: list, rendered) -> dict | None:
    """The "updated version" note, when data has arrived since an earlier version was built.

    Compared with the newest version built from different data (versions built from the same
    data are passed over), so rebuilding from unchanged data gives the same note and the same
    content: no new version. None when there is no earlier version, or its data was not recorded.
    """
    from reviews.core.reporting_periods import long_date

    now = readiness.data_status()
    for version, built_at, data in history:
        if data is None:
            return None
        if data.get("partnerships") == now:
            continue
        before = data.get("partnerships") or {}
        lines = []
        for p in readiness.partnerships:
            was = (before.get(p.code) or {}).get("status")
            if was != p.status and p.status in HAVE_DATA:
                lines.append(f"{p.name}'s return arrived on {long_date(p.received)}: its figures are now included.")
        old = dict(map(tuple, data.get("headlines") or []))
        for h in rendered.headlines:
            if h["label"] in old and old[h["label"]] != h["value"]:
                lines.append(f"{h['label']}: {h['value']} (was {old[h['label']]}).")
        built = built_at.date() if hasattr(built_at, "date") else built_at
        return {"replaces": version, "built": long_date(built) if built else "", "lines": lines}
    return None


def _render_one(summary: dict, cfg: Config, audience: str, update: dict):
    from reviews.learning.bulletin import render_bulletin

    return render_bulletin({**summary, "update": update}, cfg, audience)


def attachments_for_factory(cfg: Config):
    """circulation.send_pending's `attachments_for`: the PDF for everyone; the XLSX for the business unit
    (the yearly report's XLSX, its published tables, for everyone: learning.yearly).

    Only learning bulletins (audience 'region' or a partnership code) and yearly reports get attachments; other
    rows in the ledger (e.g. data quality reports) are sent as they are. A bulletin whose PDF is
    missing raises OSError, so the send is not attempted and is reported (never sent without it).
    """
    business_unit = {a.strip().lower() for a in cfg.business_unit_email}
    learning = {REGION, *cfg.partnerships}

    def attachments_for(row) -> list[Path]:
        yearly = str(row.get("audience") or "").startswith("yearly:")
        if row.get("audience") not in learning and not yearly:
            return []
        pdf, xlsx = attachment_paths(row["path"])
        out = []
        if cfg.summary.pdf:
            if not pdf.is_file():
                raise FileNotFoundError(f"the bulletin's PDF is missing: {pdf} (rebuild the period to print it)")
            out.append(pdf)
        if yearly:  # the yearly report's published tables, for the partners' own report: to everyone
            if not xlsx.is_file():
                raise FileNotFoundError(f"the yearly report's XLSX is missing: {xlsx} (rebuild the year)")
            out.append(xlsx)
        elif (cfg.circulation.xlsx_to_everyone or (cfg.circulation.xlsx_to_business_unit and str(
                row.get("recipient", "")).lower() in business_unit)) and xlsx.is_file():
            out.append(xlsx)  # the bulletin's own published tables (never the unsuppressed summary)
        return out

    return attachments_for
