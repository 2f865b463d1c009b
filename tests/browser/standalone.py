"""A real `airflow standalone` on this project for the browser tests, and the page helpers they
share (navigate, type, wait, log in through Airflow's own page, run axe-core). One place, so the
status page, sign-off and tracker tests start Airflow and drive Chromium the same way."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from reviews.learning.browser import BrowserError
from tests.integration.deployment import PASSWORD, SCHEDULER_POKE_SECONDS, USER, free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
AXE = ROOT / "tests" / "assets" / "axe-core" / "axe.min.js"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"  # axe-core 4.14.1


@contextmanager
def airflow_standalone(home: Path, url: str, data: Path, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """`airflow standalone` with AIRFLOW_HOME `home`, the warehouse at `url` and data dir `data`;
    yields its base URL once healthy, stops the whole process group afterwards."""
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
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}", "GX_ANALYTICS_ENABLED": "false",
        # Under a real scheduler the reminder sensor must not poke every second (conftest's value for
        # dag.test()): see SCHEDULER_POKE_SECONDS in tests/integration/deployment.py.
        "REVIEWS_SIGNOFF_POKE_SECONDS": SCHEDULER_POKE_SECONDS,
        **(extra_env or {}),
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
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def goto(page, url: str) -> None:
    page._send("Page.navigate", {"url": url})
    page.browser.wait_event("Page.loadEventFired", page.session)


def type_text(page, selector: str, text: str) -> None:
    page.evaluate(f"document.querySelector({selector!r}).focus()")
    page._send("Input.insertText", {"text": text})


def wait_for(page, expression: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # A page still being replaced (a redirect, the UI's own routing) may have no body yet: not yet true.
        try:
            value = page.evaluate(f"(() => {{ try {{ return !!({expression}); }} catch (e) {{ return false; }} }})()")
        except BrowserError:  # the page's context was replaced mid-call
            value = False
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"never true in the page: {expression}\n{page.evaluate('document.body && document.body.innerText') or ''}"[:2000])


def axe_violations(page) -> list[dict]:
    source = AXE.read_bytes()
    assert hashlib.sha256(source).hexdigest() == AXE_SHA256, "tests/assets/axe-core/axe.min.js is not axe-core 4.14.1"
    page.evaluate(source.decode("utf-8"))
    return json.loads(page.evaluate(
        "axe.run(document, {resultTypes: ['violations']}).then(r => JSON.stringify(r.violations))", await_promise=True))


def log_in(page, base: str, path: str = "/reviews/") -> None:
    goto(page, f"{base}{path}")
    wait_for(page, "location.pathname.startsWith('/auth/login') && document.querySelector('input[type=password]')")
    type_text(page, "input[name=username], input[type=text]", USER)  # typed as a person would
    type_text(page, "input[type=password]", PASSWORD)
    page.evaluate("document.querySelector('button[type=submit]').click()")
    wait_for(page, f"location.pathname === {path!r} && document.querySelector('main')")
