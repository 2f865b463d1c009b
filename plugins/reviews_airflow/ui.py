"""The business unit's status page: a FastAPI app served by the Airflow api-server.

It asks Airflow who the caller is (the same JWT cookie the Airflow UI uses) and sends anyone
not logged in to the Airflow login page. It reads the warehouse through the same settings as
the DAGs and shows counts and dates only.
"""
from __future__ import annotations

from html import escape

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse

app = FastAPI(title="Merseyside practice reviews", docs_url=None, redoc_url=None, openapi_url=None)

STYLE = (
    "body{font-family:Arial,Helvetica,sans-serif;color:#0b0c0c;margin:24px;max-width:1200px}"
    "table{border-collapse:collapse;width:100%}th,td{border:1px solid #505a5f;padding:6px 8px;text-align:left}"
    "th{background:#f3f2f1}td.n{text-align:right;font-variant-numeric:tabular-nums}caption{text-align:left;font-weight:bold;padding:8px 0}"
)


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
    return RedirectResponse(f"{login}?next={request.url.path}", status_code=307)


def _fmt(value) -> str:
    if value is None:
        return "—"
    if hasattr(value, "strftime"):
        return value.strftime("%d %b %Y %H:%M") if hasattr(value, "hour") else value.strftime("%d %b %Y")
    return str(value)


def render(dashboard) -> str:
    from reviews.status.dashboard import TIMELINESS_COLUMNS

    head = ["Partnership", "Last return", "Files in it", "Status", "Rows loaded", "Rows quarantined", "Files failed",
            *[c.replace("_", " ") for c in TIMELINESS_COLUMNS], "Latest bulletin sent"]
    rows = []
    for s in dashboard.partnerships:
        cells = [
            f'<th scope="row">{escape(s.name)}</th>',
            f"<td>{escape(_fmt(s.last_return_date))}</td>",
            f'<td class="n">{s.last_files}</td>',
            f"<td>{escape(s.last_file_status or '—')}</td>",
            f'<td class="n">{s.last_return_rows_loaded}</td>',
            f'<td class="n">{s.last_return_rows_quarantined}</td>',
            f'<td class="n">{s.files_failed}</td>',
            *[f'<td class="n">{s.timeliness.get(c, 0)}</td>' for c in TIMELINESS_COLUMNS],
            f"<td>{escape(_fmt(s.last_bulletin_sent_at))}<br>{escape(s.last_bulletin_subject or '')}</td>",
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    as_of = _fmt(dashboard.timeliness_as_of)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Partnership returns status</title>'
        f"<style>{STYLE}</style></head><body><main><h1>Merseyside partnerships: returns and timeliness</h1>"
        f"<p>Timeliness as of {escape(as_of)}. Internal view for the business unit: counts are not suppressed.</p>"
        '<table id="status"><caption>Per partnership: last return received, rows quarantined from it, '
        "timeliness (cases by status) and the latest bulletin sent</caption><thead><tr>"
        + "".join(f'<th scope="col">{escape(h)}</th>' for h in head)
        + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></main></body></html>"
    )


@app.get("/", response_class=HTMLResponse)
async def status_page(request: Request):
    user = await _current_user(request)
    if user is None:
        return _login_redirect(request)
    from starlette.concurrency import run_in_threadpool

    return HTMLResponse(await run_in_threadpool(_dashboard_html))


def _dashboard_html() -> str:
    from reviews.core.config import load_config
    from reviews.status.dashboard import build_dashboard
    from reviews.core.warehouse import ensure_schema, make_engine

    from reviews_airflow import settings

    engine = make_engine(settings.warehouse_url_for_server())
    ensure_schema(engine)
    return render(build_dashboard(engine, load_config(settings.config_path_for_server())))
