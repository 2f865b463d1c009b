"""Where the pipelines find their warehouse, secrets, inbox and config: Airflow connections and
Variables (or their AIRFLOW_CONN_* / AIRFLOW_VAR_* environment forms), with embedded defaults.

Only task code calls these (at run time, never at DAG parse time).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WAREHOUSE_CONN = "reviews_warehouse"
SMTP_CONN = "reviews_smtp"
PSEUDONYMISATION_CONN = "reviews_pseudonymisation"
KEY_ENV = "REVIEWS_PSEUDONYMISATION_KEY"


def _connection(conn_id: str):
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def _variable(name: str, default: str | None) -> str | None:
    from airflow.sdk import Variable

    return Variable.get(name, default=default)


def data_dir() -> Path:
    """Root of everything the pipelines write besides the warehouse (raw files, outbox, reports)."""
    return Path(_variable("reviews_data_dir", str(PROJECT_ROOT / "var")))


def inbox() -> Path:
    return Path(_variable("reviews_inbox", str(data_dir() / "inbox")))


def config():
    from reviews.config import load_config

    return load_config(_variable("reviews_config", None))


def warehouse_url() -> str:
    from reviews.connections import sqlalchemy_url

    conn = _connection(WAREHOUSE_CONN)
    if conn is None:
        return f"sqlite:///{data_dir() / 'warehouse.db'}"
    return sqlalchemy_url(conn.conn_type, conn.host, conn.schema, conn.login, conn.password, conn.port)


def warehouse_engine():
    from reviews.warehouse import ensure_schema, make_engine

    engine = make_engine(warehouse_url())
    ensure_schema(engine)
    return engine


def pseudonymisation_key() -> bytes:
    from reviews.pseudonymise import check_key

    conn = _connection(PSEUDONYMISATION_CONN)
    secret = conn.password if conn is not None and conn.password else os.environ.get(KEY_ENV)
    return check_key(secret)


def transport():
    """SMTP through `reviews_smtp` when it is set; otherwise .eml files in the outbox folder."""
    from reviews.connections import smtp_settings
    from reviews.mail import OutboxTransport, SmtpTransport

    conn = _connection(SMTP_CONN)
    if conn is None:
        return OutboxTransport(data_dir() / "outbox")
    extra = conn.extra_dejson if hasattr(conn, "extra_dejson") else json.loads(conn.extra or "{}")
    return SmtpTransport(smtp_settings(conn.host, conn.port, conn.login, conn.password, extra))
