"""The business unit's status page, as a person uses it: a running `airflow standalone`, headless
Chromium, Airflow's own login page, then the figures, and a screenshot."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import pytest
import requests

from reviews.learning.browser import HeadlessChromium, chromium_available
from reviews.core.config import load_config
from reviews.returns.ingest import ingest_partnership
from reviews.timeliness.run import run_timeliness
from reviews_dev.synthetic import generate_returns
from reviews.core.warehouse import ensure_schema, make_engine
from tests.integration.deployment import PASSWORD, USER, free_port

pytestmark = [pytest.mark.slow, pytest.mark.browser]
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
AS_OF = date(2026, 10, 31)


@pytest.fixture(scope="module")
def standalone():
    if not chromium_available():
        pytest.fail("Debian's chromium is needed for browser tests (make test installs it)")
    home = Path(tempfile.mkdtemp(prefix="reviews-standalone-"))
    data = home / "data"
    cfg = load_config()
    generate_returns(data / "inbox", cfg, start=date(2025, 10, 1), end=date(2026, 9, 30), seed=5, inflate=3)
    url = f"sqlite:///{data / 'warehouse.db'}"
    engine = make_engine(url)
    ensure_schema(engine)
    for code in cfg.partnerships:
        ingest_partnership(engine, cfg, code, data / "inbox", data / "raw", b"status-page-test-key-0123", AS_OF)
    run_timeliness(engine, cfg, AS_OF)
    (home / "passwords.json").write_text('{"%s": "%s"}' % (USER, PASSWORD))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__API__PORT": str(port), "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW_CONN_REVIEWS_WAREHOUSE": url, "AIRFLOW_VAR_REVIEWS_DATA_DIR": str(data),
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}", "GX_ANALYTICS_ENABLED": "false", "REVIEWS_DEADLINES": "on",
    })
    proc = subprocess.Popen([str(BIN / "airflow"), "standalone"], env=env, cwd=home, start_new_session=True,
                            stdout=(home / "standalone.log").open("wb"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/api/v2/monitor/health", timeout=5).ok:
                    break
            except requests.RequestException:
                pass
            time.sleep(2)
        else:
            pytest.fail("airflow standalone did not start:\n" + (home / "standalone.log").read_text()[-3000:])
        yield base, home
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        engine.dispose()


def _goto(page, url: str) -> None:
    page._send("Page.navigate", {"url": url})
    page.browser.wait_event("Page.loadEventFired", page.session)


def _type(page, selector: str, text: str) -> None:
    page.evaluate(f"document.querySelector({selector!r}).focus()")
    page._send("Input.insertText", {"text": text})


def _wait(page, expression: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = page.evaluate(f"!!({expression})")
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"never true in the page: {expression}\n{page.evaluate('document.body.innerText')[:2000]}")


def test_page_needs_login_then_shows_the_figures(standalone, tmp_path):
    base, home = standalone
    assert requests.get(f"{base}/reviews/", allow_redirects=False, timeout=30).status_code == 307
    with HeadlessChromium() as browser:
        page = browser.new_page(width=1400, height=900)
        _goto(page, f"{base}/reviews/")
        _wait(page, "location.pathname.startsWith('/auth/login') && document.querySelector('input[type=password]')")
        _type(page, "input[name=username], input[type=text]", USER)  # typed as a person would
        _type(page, "input[type=password]", PASSWORD)
        page.evaluate("document.querySelector('button[type=submit]').click()")
        _wait(page, "location.pathname === '/reviews/' && document.querySelector('#status')")
        text = page.evaluate("document.querySelector('#status').innerText")
        for name in ("Knowsley", "Liverpool", "Sefton", "St Helens", "Wirral"):
            assert name in text
        assert "31 Oct 2026" in page.evaluate("document.body.innerText")
        numbers = page.evaluate("[...document.querySelectorAll('#status td.n')].map(td => +td.innerText)")
        assert sum(numbers) > 0
        shot = page.screenshot()
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 10_000
    out = ROOT / "var" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    (out / "status_page.png").write_bytes(shot)
