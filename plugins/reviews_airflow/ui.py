"""The business unit's status page and bulletin previews: a FastAPI app served by the Airflow api-server.

It asks Airflow who the caller is (the same JWT cookie the Airflow UI uses) and sends anyone not
logged in to the Airflow login page, on every route. It reads the warehouse through the same
settings as the DAGs.

  /reviews/                                      the status page (reviews.status.dashboard, as of today)
  /reviews/bulletins/{id}  and  /{id}.pdf        a stored bulletin (any audience) as built: the sign-off preview
  /reviews/quality/{id}                          a data quality report
  /reviews/periods/{start}_{end}/redactions      what was redacted from a period's free text
  /reviews/tracker                               the case tracker (reviews.status.tracker): filters in the query string
  /reviews/cases/{partnership}/{case id}         one case's journey and the returns it came from

A file is found only from its `bulletins` row (never from the URL) and served only if it lies
under the configured data folder. Every response forbids scripts (Content-Security-Policy) and
content sniffing; only the tracker's own filter form may be submitted, to itself.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

app = FastAPI(title="Merseyside practice reviews", docs_url=None, redoc_url=None, openapi_url=None)

BASE = "/reviews/"
SECURITY_HEADERS = {
    # Stored documents carry inline styles and data: images only; no script runs on these pages.
    "Content-Security-Policy": ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
                                "form-action 'none'; frame-ancestors 'self'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
# The tracker's filter form submits (GET) to the tracker itself; every other page submits nothing.
TRACKER_HEADERS = {**SECURITY_HEADERS, "Content-Security-Policy": SECURITY_HEADERS["Content-Security-Policy"]
                   .replace("form-action 'none'", "form-action 'self'")}
STYLE = (
    "body{font-family:Arial,Helvetica,sans-serif;color:#0b0c0c;margin:24px;max-width:1280px;line-height:1.45}"
    "h2{margin-top:32px;border-bottom:2px solid #1d4f7a;padding-bottom:4px}"
    "table{border-collapse:collapse;width:100%;margin:0 0 18px 0}"
    "th,td{border:1px solid #505a5f;padding:6px 8px;text-align:left;vertical-align:top}"
    "thead th{background:#e3eaf2}td.n{text-align:right;font-variant-numeric:tabular-nums}"
    "tr.total th,tr.total td{font-weight:bold;border-top:3px solid #0b0c0c}"
    "caption{text-align:left;font-weight:bold;padding:8px 0}td ul{margin:0;padding-left:18px}"
    "a{color:#1d4f7a}a:focus{outline:3px solid #fd0;background:#fd0;color:#0b0c0c}"
    ".skip{position:absolute;left:-9999px}.skip:focus{position:static}"
    ".visually-hidden{position:absolute;width:1px;height:1px;margin:-1px;overflow:hidden;clip:rect(0 0 0 0);"
    "white-space:nowrap;border:0;padding:0}"
)
STATUS_WORDS = {"met": "met", "late": "late", "open_on_track": "open, on track", "open_at_risk": "open, at risk",
                "open_overdue": "open, overdue", "not_applicable": "not applicable", "unknown": "unknown (dates missing)"}
RETURN_WORDS = {"on_time": "on time", "late": "late", "failed": "received, not loaded", "missing": "missing",
                None: "not judged yet"}
FLAG_WORDS = {"late": "Late", "missing": "Missing", "failed": "Not loaded"}
REDACTION_KINDS = {"nhs_number": "NHS number", "postcode": "postcode", "email": "email address",
                   "phone": "phone number", "date_of_birth": "date of birth", "date": "date"}


# ---- who is asking --------------------------------------------------------------------------


async def _current_user(request: Request):
    from airflow.api_fastapi.core_api.security import resolve_user_from_token
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

    token = request.cookies.get(COOKIE_NAME_JWT_TOKEN)
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        token = auth[7:]
    if not token:
        return None
    try:
        return await resolve_user_from_token(token)
    except Exception:  # expired, forged or for another deployment
        return None


def _login_redirect(request: Request) -> RedirectResponse:
    from airflow.api_fastapi.app import get_auth_manager

    login = get_auth_manager().get_url_login()
    return RedirectResponse(f"{login}?next={request.url.path}", status_code=307, headers=SECURITY_HEADERS)


def _not_found(what: str) -> PlainTextResponse:
    return PlainTextResponse(what, status_code=404, headers=SECURITY_HEADERS)


# ---- words and dates ------------------------------------------------------------------------


def _day(value) -> str:
    """10 Oct 2026."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        value = _local(value).date()
    return f"{value.day} {value:%b %Y}"


def _local(value: datetime) -> datetime:
    from reviews.core.run_dates import LONDON

    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(LONDON)


def _moment(value) -> str:
    """10 Oct 2026 09:00 (UK time)."""
    if value is None:
        return "—"
    if not isinstance(value, datetime):
        return _day(value)
    local = _local(value)
    return f"{local.day} {local:%b %Y %H:%M}"


def _span(start: date, end: date) -> str:
    """A month (Sep 2026) or a longer period (Jul to Sep 2026; Nov 2026 to Jan 2027)."""
    if (start.year, start.month) == (end.year, end.month):
        return f"{end:%b %Y}"
    return f"{start:%b} to {end:%b %Y}" if start.year == end.year else f"{start:%b %Y} to {end:%b %Y}"


FLAGS_SHOWN = 3  # newest late or missing returns listed per partnership; older ones are counted


def _earlier(flags) -> str:
    """The flags not listed, in words: 'and 6 earlier: 5 missing, 1 late (the oldest due 10 Jan 2024)'."""
    counts: dict[str, int] = {}
    for f in flags:
        counts[f.status] = counts.get(f.status, 0) + 1
    kinds = ", ".join(f"{n} {FLAG_WORDS.get(status, status).lower()}" for status, n in sorted(counts.items()))
    return f"and {len(flags)} earlier: {kinds} (the oldest due {_day(min(f.due_date for f in flags))})"


def _context(**extra) -> dict:
    from reviews.timeliness.alerts import STAGE_NAMES

    return {"style": STYLE, "base": BASE, "day": _day, "moment": _moment, "span": _span,
            "period": lambda p: _span(p.period_start, p.period_end), "stage_names": STAGE_NAMES,
            "status_names": STATUS_WORDS, "return_status": lambda s: RETURN_WORDS.get(s, s),
            "flag_word": lambda s: FLAG_WORDS.get(s, s), "flags_shown": FLAGS_SHOWN, "earlier": _earlier,
            **extra}


# ---- the status page ------------------------------------------------------------------------


def render(dashboard, cfg=None) -> str:
    from reviews.core.rendering import templates
    from reviews.status.dashboard import TIMELINESS_STATUSES

    due_days = cfg.returns.due_days_after_period_end if cfg is not None and cfg.returns else None
    return templates().get_template("status_page.html.j2").render(
        _context(dashboard=dashboard, statuses=TIMELINESS_STATUSES, due_days=due_days))


def _today() -> date:
    from reviews.core.run_dates import LONDON

    return datetime.now(LONDON).date()


def _engine():
    from reviews.core.warehouse import ensure_schema, make_engine

    from reviews_airflow import settings

    engine = make_engine(settings.warehouse_url_for_server())
    ensure_schema(engine)
    return engine


def _dashboard_html() -> str:
    from reviews.status.dashboard import build_dashboard

    from reviews_airflow import settings

    cfg = settings.config_for_server()
    engine = _engine()
    try:
        return render(build_dashboard(engine, cfg, _today()), cfg)
    finally:
        engine.dispose()


@app.get("/", response_class=HTMLResponse)
async def status_page(request: Request):
    if await _current_user(request) is None:
        return _login_redirect(request)
    return HTMLResponse(await run_in_threadpool(_dashboard_html), headers=SECURITY_HEADERS)


# ---- stored documents -----------------------------------------------------------------------


def _stored_file(stored: str, root: Path) -> Path | None:
    """The stored path, if it is a file under the data folder (a row pointing elsewhere is not served)."""
    from reviews_airflow import settings

    path = Path(stored)
    if not path.is_absolute():
        path = settings.PROJECT_ROOT / path
    try:
        real, top = path.resolve(strict=True), root.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    return real if real.is_file() and real.is_relative_to(top) else None


def _document(bulletin_id: int, *, kind: str, pdf: bool = False) -> Path | None:
    """The file of bulletin row `bulletin_id`: its HTML, or the PDF beside it. `kind`: 'any' or
    'quality' (only a data quality report's row)."""
    from sqlalchemy import select

    from reviews.core import warehouse as wh
    from reviews.learning.publication import attachment_paths

    from reviews_airflow import settings

    engine = _engine()
    try:
        with engine.connect() as conn:
            row = conn.execute(select(wh.bulletins.c.audience, wh.bulletins.c.path)
                               .where(wh.bulletins.c.bulletin_id == bulletin_id)).first()
    finally:
        engine.dispose()
    if row is None or (kind == "quality" and not row.audience.startswith("quality:")):
        return None
    stored = str(attachment_paths(row.path)[0]) if pdf else row.path
    return _stored_file(stored, settings.data_dir_for_server())


async def _serve(request: Request, bulletin_id: int, *, kind: str, pdf: bool = False):
    if await _current_user(request) is None:
        return _login_redirect(request)
    path = await run_in_threadpool(_document, bulletin_id, kind=kind, pdf=pdf)
    if path is None:
        what = "data quality report" if kind == "quality" else "bulletin"
        return _not_found(f"No {'PDF of this ' if pdf else ''}{what} is stored under that number.")
    if pdf:
        return FileResponse(path, media_type="application/pdf", headers=SECURITY_HEADERS,
                            content_disposition_type="inline", filename=path.name)
    return Response(path.read_bytes(), media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)


@app.get("/bulletins/{bulletin_id}.pdf")  # before the HTML route: "12.pdf" is not a number
async def bulletin_pdf(request: Request, bulletin_id: int):
    return await _serve(request, bulletin_id, kind="any", pdf=True)


@app.get("/bulletins/{bulletin_id}")
async def bulletin_html(request: Request, bulletin_id: int):
    return await _serve(request, bulletin_id, kind="any")


@app.get("/quality/{bulletin_id}")
async def quality_report(request: Request, bulletin_id: int):
    return await _serve(request, bulletin_id, kind="quality")


# ---- what was redacted ----------------------------------------------------------------------


def _redactions_html(period_start: date, period_end: date) -> str:
    from sqlalchemy import select

    from reviews.core import warehouse as wh
    from reviews.core.rendering import templates

    from reviews_airflow import settings

    cfg = settings.config_for_server()
    names = {code: p.name for code, p in cfg.partnerships.items()}
    r = wh.bulletin_redactions.c
    engine = _engine()
    try:
        with engine.connect() as conn:
            found = conn.execute(
                select(r.partnership_code, r.kind, r.field, r.record_id, r.used_in, r.excerpt)
                .where(r.period_start == period_start, r.period_end == period_end)
                .order_by(r.partnership_code, r.record_id, r.field, r.redaction_id)).all()
    finally:
        engine.dispose()
    rows = [{"partnership": names.get(x.partnership_code, x.partnership_code),
             "kind": REDACTION_KINDS.get(x.kind, x.kind), "field": x.field.replace("_", " "),
             "record": x.record_id, "used_in": x.used_in or "—", "excerpt": x.excerpt or "—"} for x in found]
    return templates().get_template("redactions_page.html.j2").render(
        _context(period=_span(period_start, period_end), rows=rows))


@app.get("/periods/{period_start}_{period_end}/redactions", response_class=HTMLResponse)
async def redactions(request: Request, period_start: date, period_end: date):
    if await _current_user(request) is None:
        return _login_redirect(request)
    return HTMLResponse(await run_in_threadpool(_redactions_html, period_start, period_end), headers=SECURITY_HEADERS)


# ---- the case tracker and case pages --------------------------------------------------------


def _left_words(n: int | None) -> str:
    if n is None:
        return "no due date"
    if n < 0:
        return f"overdue by {-n} working day{'s' if n != -1 else ''}"
    return "due today" if n == 0 else f"{n} working day{'s' if n != 1 else ''} left"


def _tracker_context(**extra) -> dict:
    from reviews.status.tracker import MAX_DUE_WITHIN, words

    return _context(**words(), left_words=_left_words, max_due_within=MAX_DUE_WITHIN, **extra)


def _tracker_html(items: list[tuple[str, str]]) -> tuple[int, str]:
    """(HTTP status, page): 400 and the reason, in words, for a filter the tracker does not offer."""
    from reviews.core.rendering import templates
    from reviews.status.tracker import QueryError, build_tracker, parse_query

    from reviews_airflow import settings

    cfg = settings.config_for_server()
    try:
        query = parse_query(items, cfg)
    except QueryError as exc:
        return 400, f"Not a filter the tracker offers: {exc}."
    engine = _engine()
    try:
        tracker = build_tracker(engine, cfg, query, _today())
    finally:
        engine.dispose()
    return 200, templates().get_template("tracker_page.html.j2").render(_tracker_context(
        tracker=tracker, default_due_within=cfg.journeys.due_within_working_days))


@app.get("/tracker", response_class=HTMLResponse)
async def tracker(request: Request):
    if await _current_user(request) is None:
        return _login_redirect(request)
    status, body = await run_in_threadpool(_tracker_html, list(request.query_params.multi_items()))
    if status != 200:
        return PlainTextResponse(body, status_code=status, headers=SECURITY_HEADERS)
    return HTMLResponse(body, headers=TRACKER_HEADERS)


def _case_html(partnership: str, case_id: str) -> str | None:
    from reviews.core.rendering import templates
    from reviews.status.tracker import build_case_page

    from reviews_airflow import settings

    cfg = settings.config_for_server()
    engine = _engine()
    try:
        page = build_case_page(engine, cfg, partnership, case_id, _today())
    finally:
        engine.dispose()
    if page is None:
        return None
    return templates().get_template("case_page.html.j2").render(_tracker_context(case=page))


@app.get("/cases/{partnership}/{case_id:path}", response_class=HTMLResponse)
async def case_page(request: Request, partnership: str, case_id: str):
    if await _current_user(request) is None:
        return _login_redirect(request)
    html = await run_in_threadpool(_case_html, partnership, case_id)
    if html is None:
        return _not_found("No case with that partnership and reference is in the newest case journeys.")
    return HTMLResponse(html, headers=SECURITY_HEADERS)
