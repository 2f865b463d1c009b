"""docker-compose.yml cannot be run here (no Docker engine), so its structure is checked instead."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
AIRFLOW_SERVICES = {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-worker",
                    "airflow-triggerer", "airflow-init"}


def test_services_follow_the_official_airflow_3_shape():
    services = COMPOSE["services"]
    assert AIRFLOW_SERVICES | {"postgres", "warehouse-db", "redis"} <= set(services)
    commands = {name: services[name].get("command") for name in AIRFLOW_SERVICES - {"airflow-init"}}
    assert commands == {"airflow-apiserver": "api-server", "airflow-scheduler": "scheduler",
                        "airflow-dag-processor": "dag-processor", "airflow-worker": "celery worker",
                        "airflow-triggerer": "triggerer"}


def test_every_long_running_service_has_a_health_check_and_restarts():
    for name, service in COMPOSE["services"].items():
        if name == "airflow-init":
            continue
        assert "healthcheck" in service and service["healthcheck"]["test"], name
        assert service.get("restart") == "always", name


def test_airflow_runs_celery_on_postgres_with_a_separate_warehouse_database():
    env = COMPOSE["services"]["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://") and "@postgres/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:")
    assert "@warehouse-db:" in env["AIRFLOW_CONN_REVIEWS_WAREHOUSE"]
    assert "SimpleAuthManager" in env["AIRFLOW__CORE__AUTH_MANAGER"] or "FabAuthManager" in env["AIRFLOW__CORE__AUTH_MANAGER"]
    for name in AIRFLOW_SERVICES:
        assert COMPOSE["services"][name]["image"] == "merseyside-reviews-airflow:latest"
    assert {"airflow-metadata", "reviews-warehouse", "airflow-logs"} <= set(COMPOSE["volumes"])
    assert COMPOSE["services"]["warehouse-db"]["volumes"][-1].startswith("./sql/schema.postgresql.sql:")


def test_secrets_come_from_env_file_never_literals():
    text = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_]+)(?::-[^}]*)?\}", text))  # $${X} is for the shell
    example = (ROOT / ".env.example").read_text()
    declared = set(re.findall(r"^([A-Z_]+)=", example, re.M))
    assert used <= declared, f"declare in .env.example: {sorted(used - declared)}"
    assert not re.search(r"(PASSWORD|SECRET|KEY)\s*:\s*['\"]?[A-Za-z0-9]{6,}", text), "a literal secret in compose"
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_image_pins_the_same_airflow_as_requirements():
    pinned = re.search(r"^apache-airflow==([\d.]+)$", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    assert f"FROM apache/airflow:{pinned}-python3.11" in (ROOT / "Dockerfile").read_text()
