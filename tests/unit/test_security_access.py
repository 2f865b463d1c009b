"""Access: the project's one web surface (the status page, a FastAPI app in the api-server) lets
nobody in without an Airflow login, and the production compose file runs Airflow with a real
auth manager, its secrets from the environment and the inbox read-only. (A real login through
Airflow's own page, in Chromium: tests/browser/test_status_page.py.)"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def client(airflow_db):
    from airflow.api_fastapi.app import create_auth_manager
    from fastapi.testclient import TestClient

    from reviews_airflow.ui import app

    create_auth_manager()  # what the api-server does at start
    return TestClient(app)


def _forged_token(secret: str) -> str:
    import jwt

    now = dt.datetime.now(dt.timezone.utc)
    return jwt.encode({"sub": "admin", "role": "admin", "iat": now, "nbf": now, "exp": now + dt.timedelta(hours=1),
                       "aud": "apache-airflow"}, secret, algorithm="HS512")


def test_the_status_page_is_the_only_route_and_needs_a_login(client):
    from reviews_airflow.ui import app

    assert [getattr(r, "path", None) for r in app.routes] == [  # no API, no docs, no OpenAPI schema
        "/", "/bulletins/{bulletin_id}.pdf", "/bulletins/{bulletin_id}", "/quality/{bulletin_id}",
        "/periods/{period_start}_{period_end}/redactions", "/tracker", "/cases/{partnership}/{case_id:path}"]
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(path, follow_redirects=False).status_code == 404
    attempts = [
        {},
        {"headers": {"Authorization": "Bearer not.a.token"}},
        {"headers": {"Authorization": f"Bearer {_forged_token('a-secret-that-is-not-the-servers-0123456789')}"}},
        {"cookies": {"_token": _forged_token("another-guess-at-the-secret-9876543210")}},
    ]
    for path in ("/", "/bulletins/1", "/bulletins/1.pdf", "/quality/1", "/periods/2026-09-01_2026-09-30/redactions",
                 "/tracker", "/tracker?due_within=5", "/cases/knowsley/KNO-N-0001"):
        for kwargs in attempts:
            response = client.get(path, follow_redirects=False, **kwargs)
            assert response.status_code == 307, (path, kwargs)
            assert response.headers["location"].startswith("/auth/login") and "Partnership" not in response.text


def test_compose_runs_a_real_auth_manager_with_secrets_from_the_environment():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = compose["x-airflow-common"]["environment"]
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith(("SimpleAuthManager", "FabAuthManager"))
    users = dict(u.split(":") for u in env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].split(","))
    assert users and set(users.values()) <= {"admin", "op", "user", "viewer"} and "admin" not in users
    assert str(env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "false")).lower() != "true"
    for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET"):
        assert env[key].startswith("${") and env[key].endswith("}"), key  # from .env, never a literal
    assert "REVIEWS_PSEUDONYMISATION_KEY" not in env  # comes from .env (checked by airflow-init)
    common_volumes = compose["x-airflow-common"]["volumes"]
    assert any(v.endswith(":/opt/reviews/inbox:ro") for v in common_volumes)  # workers cannot change returns
    for name in ("postgres", "warehouse-db", "redis"):
        assert "ports" not in compose["services"][name], name  # databases are not published to the host
    init = " ".join(compose["services"]["airflow-init"]["command"])
    for secret in ("AIRFLOW_API_SECRET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_FERNET_KEY", "REVIEWS_PSEUDONYMISATION_KEY"):
        assert secret in init  # airflow-init refuses to start without it


def test_no_secret_is_kept_in_the_repository():
    ignored = (ROOT / ".gitignore").read_text().split()
    assert ".env" in ignored and "var/" in ignored  # the demo's generated key lives in var/secrets/
    config = (ROOT / "config" / "reviews.yaml").read_text()
    assert "password" not in config.lower() and "pseudonymisation_key" not in config.lower()
    example = (ROOT / ".env.example").read_text()
    for line in example.splitlines():
        if line.startswith(("REVIEWS_PSEUDONYMISATION_KEY=", "AIRFLOW_FERNET_KEY=", "WAREHOUSE_PASSWORD=")):
            assert line.split("=", 1)[1].strip() in ("", ) or line.split("=", 1)[1].startswith("change-me"), line
    init = " ".join(yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["airflow-init"]["command"])
    assert "change-me*)" in init  # a placeholder left in .env stops the deployment
