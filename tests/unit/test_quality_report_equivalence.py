"""Quality reports as built in one pass (feedback.build_quality_reports: rows read once, every
report rendered before the first write, stored in three statements, the HTML template with its
styles written out) against a straightforward reference: queries per report, the template with
named styles as it was, one report stored at a time. Same bytes, same bulletins, same links."""
from __future__ import annotations

import hashlib
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from jinja2 import DictLoader, Environment, StrictUndefined, select_autoescape

from reviews.core import warehouse as wh
from reviews.core.rendering import TEMPLATES
from reviews.returns.quality_reports import build_quality_reports
from reviews.returns.quality import rule_title
from reviews.core.config import normalise_word
from reviews.core.template import DATASET_ORDER, DATASETS

AS_OF = date(2024, 8, 31)
D0, D1, D3 = date(2024, 6, 10), date(2024, 7, 10), date(2024, 8, 1)
ODD = "<script>alert(\"x\")</script> & 'q' \u00e9"

# The HTML template before its styles were written out (they were variables, escaped at each use).
NAMED_STYLES_TEMPLATE = """{#- Data quality report for one return, HTML part. Inline CSS only, no scripts, no external
    resources (it is read in Outlook). Autoescape is on: every value below is escaped. It shows
    no cell values: the row number and record id find the row in the partnership's own data. -#}
{% set FONT = "font-family:Arial,Helvetica,sans-serif;color:#1b1b1b;" %}
{% set TH = FONT ~ "padding:6px 8px;border:1px solid #5f6b77;background-color:#e3eaf2;font-size:14px;text-align:left;" %}
{% set TD = FONT ~ "padding:6px 8px;border:1px solid #5f6b77;font-size:14px;vertical-align:top;" %}
{% set NUM = TD ~ "text-align:right;" %}
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ subject }}</title>
</head>
<body style="margin:0;padding:16px 20px;background-color:#ffffff;{{ FONT }}font-size:15px;line-height:1.5;">
<h1 style="{{ FONT }}font-size:22px;margin:0 0 12px 0;">{{ subject }}</h1>
<p style="{{ FONT }}">This report is about the return {{ partnership }} sent dated {{ return_date }}: {{ totals.read }} row{{ "" if totals.read == 1 else "s" }} read, {{ totals.loaded }} loaded, {{ totals.quarantined }} not loaded{% if failed_files %}, and {{ failed_files | length }} file{{ "" if failed_files | length == 1 else "s" }} that could not be read{% endif %}.
{% if totals.quarantined or failed_files %}Please correct the rows listed below in your next return: a corrected row replaces the one that was not loaded.{% else %}Every row was loaded. Thank you.{% endif %}</p>

<table style="border-collapse:collapse;margin:0 0 18px 0;" cellpadding="0" cellspacing="0">
<caption style="{{ FONT }}caption-side:top;text-align:left;font-weight:bold;font-size:14px;padding:0 0 6px 0;">Files in this return</caption>
<thead><tr>{% for h in ["File", "Datasets", "Result", "Rows read", "Loaded", "Not loaded", "Columns not loaded (not in the template)"] %}<th scope="col" style="{{ TH }}">{{ h }}</th>{% endfor %}</tr></thead>
<tbody>
{% for f in files %}
<tr><th scope="row" style="{{ TD }}text-align:left;font-weight:normal;">{{ f.name }}</th><td style="{{ TD }}">{{ f.datasets }}</td><td style="{{ TD }}">{{ f.status }}{% if f.error %}: {{ f.error }}{% endif %}{% for n in f.notes %}<br>{{ n }}{% endfor %}</td><td style="{{ NUM }}">{{ f.read }}</td><td style="{{ NUM }}">{{ f.loaded }}</td><td style="{{ NUM }}">{{ f.quarantined }}</td><td style="{{ TD }}">{{ f.dropped or "none" }}</td></tr>
{% endfor %}
</tbody>
</table>

{% if rule_counts %}
<table style="border-collapse:collapse;margin:0 0 18px 0;" cellpadding="0" cellspacing="0">
<caption style="{{ FONT }}caption-side:top;text-align:left;font-weight:bold;font-size:14px;padding:0 0 6px 0;">Rows not loaded, by check (a row can fail more than one)</caption>
<thead><tr><th scope="col" style="{{ TH }}">Dataset</th><th scope="col" style="{{ TH }}">Check</th><th scope="col" style="{{ TH }}text-align:right;">Rows</th></tr></thead>
<tbody>
{% for c in rule_counts %}
<tr><td style="{{ TD }}">{{ c.dataset }}</td><th scope="row" style="{{ TD }}text-align:left;font-weight:normal;">{{ c.rule }}</th><td style="{{ NUM }}">{{ c.rows }}</td></tr>
{% endfor %}
</tbody>
</table>

<table style="border-collapse:collapse;margin:0 0 18px 0;" cellpadding="0" cellspacing="0">
<caption style="{{ FONT }}caption-side:top;text-align:left;font-weight:bold;font-size:14px;padding:0 0 6px 0;">Rows not loaded (row numbers as your spreadsheet shows them)</caption>
<thead><tr>{% for h in ["Dataset", "File", "Row", "Record id", "What is wrong"] %}<th scope="col" style="{{ TH }}">{{ h }}</th>{% endfor %}</tr></thead>
<tbody>
{% for r in rows %}
<tr><td style="{{ TD }}">{{ r.dataset }}</td><td style="{{ TD }}">{{ r.file }}</td><td style="{{ NUM }}">{{ r.row }}</td><th scope="row" style="{{ TD }}text-align:left;font-weight:normal;">{{ r.record_id }}</th><td style="{{ TD }}">{% for reason in r.reasons %}{{ reason }}{% if not loop.last %}<br>{% endif %}{% endfor %}{% if r.corrected %}<br><em>since corrected by a later return</em>{% endif %}</td></tr>
{% endfor %}
</tbody>
</table>
{% endif %}

{% if corrected %}
<table style="border-collapse:collapse;margin:0 0 18px 0;" cellpadding="0" cellspacing="0">
<caption style="{{ FONT }}caption-side:top;text-align:left;font-weight:bold;font-size:14px;padding:0 0 6px 0;">Rows of earlier returns that this return corrected</caption>
<thead><tr>{% for h in ["Dataset", "Record id", "Earlier file", "Row"] %}<th scope="col" style="{{ TH }}">{{ h }}</th>{% endfor %}</tr></thead>
<tbody>
{% for r in corrected %}
<tr><td style="{{ TD }}">{{ r.dataset }}</td><th scope="row" style="{{ TD }}text-align:left;font-weight:normal;">{{ r.record_id }}</th><td style="{{ TD }}">{{ r.file_name }}</td><td style="{{ NUM }}">{{ r.row_number }}</td></tr>
{% endfor %}
</tbody>
</table>
{% endif %}
<p style="{{ FONT }}">{% if waiting and waiting_listed_in %}{{ waiting }} row{{ "" if waiting == 1 else "s" }} from earlier returns {{ "is" if waiting == 1 else "are" }} still waiting for a correction: {{ "it is" if waiting == 1 else "they are" }} listed in the report of your return of {{ waiting_listed_in }}, the newest loaded with this one.{% elif waiting %}{{ waiting }} row{{ "" if waiting == 1 else "s" }} from earlier returns {{ "is" if waiting == 1 else "are" }} still waiting for a correction: {{ "it is" if waiting == 1 else "they are" }} listed below.{% else %}No rows from earlier returns are waiting for a correction.{% endif %}</p>
{% if waiting_rows %}
<table style="border-collapse:collapse;margin:0 0 18px 0;" cellpadding="0" cellspacing="0">
<caption style="{{ FONT }}caption-side:top;text-align:left;font-weight:bold;font-size:14px;padding:0 0 6px 0;">Rows of earlier returns still waiting for a correction (row numbers as your spreadsheet shows them)</caption>
<thead><tr>{% for h in ["Dataset", "File", "Row", "Record id", "What is wrong"] %}<th scope="col" style="{{ TH }}">{{ h }}</th>{% endfor %}</tr></thead>
<tbody>
{% for r in waiting_rows %}
<tr><td style="{{ TD }}">{{ r.dataset }}</td><td style="{{ TD }}">{{ r.file }}</td><td style="{{ NUM }}">{{ r.row }}</td><th scope="row" style="{{ TD }}text-align:left;font-weight:normal;">{{ r.record_id }}</th><td style="{{ TD }}">{% for reason in r.reasons %}{{ reason }}{% if not loop.last %}<br>{% endif %}{% endfor %}</td></tr>
{% endfor %}
</tbody>
</table>
{% endif %}
{% if accepted %}
<h2 style="{{ FONT }}font-size:18px;margin:18px 0 8px 0;">Accepted values</h2>
<p style="{{ FONT }}">For each code or theme that was not recognised above, the values that are accepted: the code itself or any of the words beside it, matched ignoring case, spaces, hyphens and underscores.</p>
{% for a in accepted %}
<table style="border-collapse:collapse;margin:0 0 18px 0;" cellpadding="0" cellspacing="0">
<caption style="{{ FONT }}caption-side:top;text-align:left;font-weight:bold;font-size:14px;padding:0 0 6px 0;">Accepted {{ a.what }} for {{ a.column }} in {{ a.dataset }}</caption>
<thead><tr><th scope="col" style="{{ TH }}">Code</th><th scope="col" style="{{ TH }}">Words that also mean it</th></tr></thead>
<tbody>
{% for v in a.codes %}
<tr><th scope="row" style="{{ TD }}text-align:left;font-weight:normal;">{{ v.code }}</th><td style="{{ TD }}">{{ v.words or "none" }}</td></tr>
{% endfor %}
</tbody>
</table>
{% endfor %}
{% endif %}
<p style="{{ FONT }}font-size:13px;color:#4a4a4a;">Sent by the {{ region }} safeguarding partnerships business unit ({{ generated }}). The file's checksum (SHA-256) identifies exactly what was received: {% for f in files %}{{ f.name }} {{ f.sha256[:12] }}{% if not loop.last %}; {% endif %}{% endfor %}.</p>
</body>
</html>
"""


def _env() -> Environment:
    txt = (TEMPLATES / "quality_report.txt.j2").read_text(encoding="utf-8")
    return Environment(
        loader=DictLoader({"quality_report.html.j2": NAMED_STYLES_TEMPLATE, "quality_report.txt.j2": txt}),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), disabled_extensions=("txt.j2",), default=True),
        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )


def _clock():
    now = [datetime(2030, 1, 1, 9, 0, tzinfo=timezone.utc)]

    def clock():
        now[0] += timedelta(minutes=7)
        return now[0]
    return clock


def _file(file_id, name, day, status="loaded", code="knowsley", **extra):
    row = {"file_id": file_id, "partnership_code": code, "file_name": name, "sha256": f"{file_id:02d}" * 32,
           "size_bytes": 10, "return_date": day, "received_at": datetime(2024, 9, 1, tzinfo=timezone.utc),
           "raw_path": "raw", "datasets": "notifications", "rows_read": 5, "rows_loaded": 3, "rows_quarantined": 2,
           "dropped_columns": None, "notes": None, "status": status, "error": None, "quality_report_id": None}
    row.update(extra)
    return row


def _q(file_id, name, dataset, row, record_id, checks, rules, resolved_by=None, code="knowsley"):
    return {"partnership_code": code, "dataset": dataset, "file_id": file_id, "file_name": name, "row_number": row,
            "record_id": record_id, "failed_checks": checks, "failed_rules": rules, "raw_values": "{}",
            "quarantined_at": datetime(2024, 9, 1, tzinfo=timezone.utc), "resolved_by_file_id": resolved_by}


def _fill(engine) -> None:
    """Returns of several dates: one reported already, two files and a workbook of one date, a
    clean one, one with no date; blank and odd values, rows corrected inside and after a return,
    rows still waiting, record ids whose order depends on the collation, another partnership."""
    n1, n3, w5 = "notifications_2024-06-10.csv", "notifications_2024-07-10.csv", "return_2024-07-10.xlsx"
    files = [
        _file(1, n1, D0, quality_report_id=999),
        _file(3, n3, D1, status="partial", notes="first note\nsecond " + ODD),
        _file(4, "learning_2024-07-10.csv", D1, status="failed", datasets=None, rows_read=0, rows_loaded=0,
              rows_quarantined=0, error="the file contains binary data " + ODD),
        _file(5, w5, D1, status="partial", datasets="notifications,rapid_reviews", dropped_columns="Child's name, <b>"),
        _file(6, "learning_2024-08-01.csv", D3, datasets="learning", rows_read=4, rows_loaded=4, rows_quarantined=0),
        _file(7, "odd name " + ODD, None, status="failed", datasets=None, rows_read=0, rows_loaded=0,
              rows_quarantined=0, error="the file name does not follow the template"),
        _file(8, n3, D1, code="sefton"),
    ]
    rows = [
        _q(1, n1, "notifications", 2, "b-1", "aware_date is blank", "required:aware_date", resolved_by=3),
        _q(1, n1, "notifications", 3, "B2", "aware_date is blank", "required:aware_date", resolved_by=5),
        _q(1, n1, "notifications", 4, "a_3", "x", "required:aware_date", resolved_by=5),
        _q(1, n1, "notifications", 5, "A-4", "x", "required:aware_date", resolved_by=3),
        _q(1, n1, "notifications", 6, "K-9", "x", "required:aware_date", resolved_by=6),
        _q(1, n1, "rapid_reviews", 5, None, "blank", None),
        _q(1, n1, "learning", 7, "L-1", "theme 'Weather' is not a known learning theme or synonym", "code:theme"),
        _q(3, n3, "notifications", 7, "K-1", "aware_date is blank\n" + ODD, "required:aware_date\nunique:notification_id"),
        _q(3, n3, "notifications", 2, None, "notification_id is blank", "required:notification_id"),
        _q(3, n3, "notifications", 8, "K-8", "incident_type 'x' is not one of: death, serious_harm, other",
           "code:incident_type"),
        _q(3, n3, "notifications", 3, "K-3", "odd", None, resolved_by=5),
        _q(3, n3, "notifications", 4, "K-4", "odd " + ODD, "unique:notification_id", resolved_by=6),
        _q(3, n3, "mystery", 9, "M-1", "from a dataset no longer in the template", "gone:rule"),
        _q(5, w5, "rapid_reviews", 2, "R-1", "decision_date is blank", "required:decision_date"),
        _q(5, w5, "notifications", 2, "K-1", "aware_date is blank", "required:aware_date"),
        _q(5, w5, "notifications", 3, "", "record id empty", "required:notification_id"),
        _q(5, w5, "notifications", 4, "withheld: row 4", "notification_id is not a valid identifier (withheld: x)",
           "identifier:notification_id"),
        _q(8, n3, "notifications", 2, "S-1", "someone else's", "required:aware_date", code="sefton"),
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(wh.return_files), files)
        conn.execute(sa.insert(wh.quarantine), rows)
        old = {"period_start": D1, "period_end": D1, "version": 1, "content_hash": "0" * 64, "path": "old",
               "subject": "an earlier report", "built_at": datetime(2024, 7, 11, tzinfo=timezone.utc)}
        conn.execute(sa.insert(wh.bulletins), [{**old, "audience": "quality:knowsley"},
                                               {**old, "audience": "quality:sefton", "version": 3}])


def _reference(engine, cfg, code: str, out_dir: Path, clock) -> list[dict]:
    """The reports as the straightforward way builds them: one return at a time, its rows read
    by queries of its own, the named-styles template, one bulletin and one update each."""
    rf, q, b = wh.return_files.c, wh.quarantine.c, wh.bulletins.c
    rank = {d: i for i, d in enumerate(DATASET_ORDER)}
    partnership, env, built = cfg.partnership(code), _env(), []
    with engine.begin() as conn:
        files = conn.execute(sa.select(wh.return_files).where(rf.partnership_code == code, rf.quality_report_id.is_(None))
                             .order_by(rf.return_date, rf.file_id)).mappings().all()
        groups: dict[date, list] = {}
        for f in files:
            groups.setdefault(f["return_date"] or AS_OF, []).append(f)
        newest = max(groups) if groups else None  # a backlog's waiting rows are listed in its newest report only
        for day, group in sorted(groups.items()):
            listed = day == newest
            now, ids = clock(), [f["file_id"] for f in group]
            rows = [r for i in ids for r in conn.execute(sa.select(wh.quarantine).where(q.file_id == i)).mappings()]
            rows.sort(key=lambda r: (rank.get(r["dataset"], 99), r["file_name"], r["row_number"]))
            counts = Counter((r["dataset"], rule) for r in rows for rule in (r["failed_rules"] or "").splitlines())
            corrected = conn.execute(
                sa.select(q.dataset, q.record_id, q.file_name, q.row_number)
                .where(q.resolved_by_file_id.in_(ids), q.file_id.notin_(ids))
                .order_by(q.dataset, q.record_id, q.file_name, q.row_number)).all()
            waiting = conn.execute(
                sa.select(sa.func.count()).select_from(wh.quarantine).join(wh.return_files, rf.file_id == q.file_id)
                .where(q.partnership_code == code, rf.partnership_code == code, q.resolved_by_file_id.is_(None),
                       rf.return_date < day)).scalar()
            still = conn.execute(
                sa.select(rf.return_date, q.dataset, q.file_name, q.row_number, q.file_id, q.quarantine_id, q.record_id,
                          q.failed_checks, q.failed_rules)
                .select_from(wh.quarantine).join(wh.return_files, rf.file_id == q.file_id)
                .where(q.partnership_code == code, rf.partnership_code == code, q.resolved_by_file_id.is_(None),
                       rf.return_date < day)).all()
            still.sort(key=lambda r: (r.return_date, rank.get(r.dataset, 99), *r[2:6]))
            assert len(still) == waiting
            failed = {(r["dataset"], rule) for r in rows for rule in (r["failed_rules"] or "").splitlines()}
            if listed:
                failed |= {(r.dataset, rule) for r in still for rule in (r.failed_rules or "").splitlines()}
            file_rows = [{"name": f["file_name"], "datasets": (f["datasets"] or "").replace(",", ", ") or "none",
                          "status": f["status"], "read": f["rows_read"], "loaded": f["rows_loaded"],
                          "quarantined": f["rows_quarantined"], "dropped": f["dropped_columns"] or "",
                          "error": f["error"] or "", "notes": (f["notes"] or "").splitlines(), "sha256": f["sha256"]}
                         for f in group]
            subject = f"Data quality report: {partnership.name} return of {day:%d %B %Y}"
            context = {
                "region": cfg.region_name, "partnership": partnership.name, "return_date": f"{day:%d/%m/%Y}",
                "files": file_rows, "failed_files": [f for f in file_rows if f["status"] == "failed"],
                "totals": {**{k: sum(f[k] for f in file_rows) for k in ("read", "loaded", "quarantined")},
                           "flagged": sum(f["rows_flagged"] or 0 for f in group)},  # no row_flags here: 0
                "rule_counts": [{"dataset": d, "rule": rule_title(rule), "rows": n} for (d, rule), n in
                                sorted(counts.items(), key=lambda kv: (rank.get(kv[0][0], 99), -kv[1], kv[0][1]))],
                "rows": [{"dataset": r["dataset"], "file": r["file_name"], "row": r["row_number"],
                          "record_id": (f"row {r['row_number']} of {r['file_name']}"  # an id withheld
                                        if (r["record_id"] or "").startswith("withheld: row ")
                                        else r["record_id"] or "(blank)"),
                          "reasons": r["failed_checks"].splitlines(),
                          "corrected": r["resolved_by_file_id"] is not None} for r in rows],
                "corrected": [r._asdict() for r in corrected], "waiting": waiting,
                "waiting_rows": [{"dataset": r.dataset, "file": r.file_name, "row": r.row_number,
                                  "record_id": (f"row {r.row_number} of {r.file_name}"
                                                if (r.record_id or "").startswith("withheld: row ")
                                                else r.record_id or "(blank)"),
                                  "reasons": r.failed_checks.splitlines()} for r in still] if listed else [],
                "waiting_listed_in": None if listed else f"{newest:%d/%m/%Y}",
                "accepted": _accepted(cfg, failed),
                "flag_counts": [], "flagged_rows": [],  # flags of loaded rows: tests/unit/test_quality_severity.py
                "subject": subject, "generated": f"{now:%d %B %Y %H:%M} UTC",
            }
            html = env.get_template("quality_report.html.j2").render(context)
            text = env.get_template("quality_report.txt.j2").render(context)
            where = (b.period_start == day, b.period_end == day, b.audience == f"quality:{code}")
            version = (conn.execute(sa.select(sa.func.max(b.version)).where(*where)).scalar() or 0) + 1
            path = out_dir / code / f"{day.isoformat()}_v{version}.html"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(html, encoding="utf-8")
            path.with_suffix(".txt").write_text(text, encoding="utf-8")
            bulletin_id = conn.execute(sa.insert(wh.bulletins).returning(b.bulletin_id), {
                "period_start": day, "period_end": day, "audience": f"quality:{code}", "version": version,
                "content_hash": hashlib.sha256((html + text).encode("utf-8")).hexdigest(), "path": str(path),
                "subject": subject, "built_at": now}).scalar_one()
            conn.execute(wh.return_files.update().where(rf.file_id.in_(ids)).values(quality_report_id=bulletin_id))
            built.append({"bulletin_id": bulletin_id, "return_date": day.isoformat(), "files": len(group),
                          "rows_quarantined": context["totals"]["quarantined"], "path": str(path)})
    return built


def _accepted(cfg, failed: set) -> list[dict]:
    """Each failed code or theme column's codes and the configured words for them, in template order."""
    out = []
    for dataset in DATASET_ORDER:
        for col in DATASETS[dataset].columns:
            if col.kind != "code" or (dataset, f"code:{col.name}") not in failed:
                continue
            if col.name == "theme":
                words = {c: [w for w in ws if normalise_word(w) != normalise_word(c)] for c, ws in cfg.themes.items()}
            else:
                synonyms = cfg.code_synonyms.get(col.name, {})
                words = {c: [cfg.code_synonym_spellings.get(w, w) for w, to in synonyms.items()
                             if to == c and w != normalise_word(c)] for c in col.codes}
            out.append({"dataset": dataset, "column": col.name,
                        "what": "learning themes" if col.name == "theme" else "values",
                        "codes": [{"code": c, "words": ", ".join(w)} for c, w in words.items()]})
    return out


def _state(engine, out_dir: Path, built: list[dict]) -> tuple:
    """What a build leaves, with bulletin ids as their place among the new ones and paths relative."""
    ids = {b["bulletin_id"]: i for i, b in enumerate(built)}
    with engine.connect() as conn:
        bulletins = [(ids.get(r[0], r[0]), *r[1:6], Path(r[6]).name, *r[7:]) for r in conn.execute(sa.text(
            "select bulletin_id, period_start, period_end, audience, version, content_hash, path, subject, built_at "
            "from bulletins order by bulletin_id")).all()]
        links = [(f, ids.get(r, r)) for f, r in conn.execute(sa.text(
            "select file_id, quality_report_id from return_files order by file_id")).all()]
    files = {str(p.relative_to(out_dir)): p.read_bytes() for p in sorted(out_dir.rglob("*")) if p.is_file()}
    return ([{**b, "bulletin_id": ids[b["bulletin_id"]], "path": Path(b["path"]).relative_to(out_dir).as_posix()}
             for b in built], bulletins, links, files)


@pytest.fixture(params=["sqlite_url", pytest.param("postgres_url", marks=pytest.mark.postgres)])
def two_warehouses(request):
    """Two warehouses of the same kind, filled alike: one for each way of building."""
    url = request.getfixturevalue(request.param)
    if url.startswith("sqlite"):
        other, admin = url.replace("warehouse.db", "reference.db"), None
    else:
        admin = sa.create_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
        name = url.rsplit("/", 1)[1] + "_ref"
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        other = url.rsplit("/", 1)[0] + "/" + name
    engines = [wh.make_engine(url), wh.make_engine(other)]
    for engine in engines:
        wh.ensure_schema(engine)
        _fill(engine)
    yield engines
    for engine in engines:
        engine.dispose()
    if admin is not None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_reports_match_the_straightforward_build(two_warehouses, cfg, tmp_path):
    fast, slow = two_warehouses
    built = build_quality_reports(fast, cfg, "knowsley", tmp_path / "fast", AS_OF, clock=_clock())
    expected = _reference(slow, cfg, "knowsley", tmp_path / "slow", _clock())
    assert [b["return_date"] for b in built] == [D1.isoformat(), D3.isoformat(), AS_OF.isoformat()]
    assert _state(fast, tmp_path / "fast", built) == _state(slow, tmp_path / "slow", expected)
    html = Path(built[0]["path"]).read_text(encoding="utf-8")
    assert "_v2.html" in built[0]["path"] and ODD not in html and "&lt;script&gt;" in html  # escaped, 2nd version
    assert "since corrected by a later return" in html and "b-1" in html and "B2" in html  # corrected rows shown
    assert "Accepted values for incident_type in notifications" in html
    newest = Path(built[-1]["path"]).read_text(encoding="utf-8")  # a backlog's waiting rows: in its newest report
    assert "Accepted learning themes for theme in learning" in newest and "L-1" in newest  # a waiting row's theme
    if "still waiting for a correction" in html and "No rows from earlier returns" not in html:
        assert f"listed in the report of your return of {AS_OF:%d/%m/%Y}" in html
    assert build_quality_reports(fast, cfg, "knowsley", tmp_path / "fast", AS_OF, clock=_clock()) == []
