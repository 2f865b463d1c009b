"""Where the pipelines find their warehouse, secrets, inbox and config: Airflow connections and
Variables (or their AIRFLOW_CONN_* / AIRFLOW_VAR_* environment forms), with embedded defaults.

Only task code calls these (at run time, never at DAG parse time).
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WAREHOUSE_CONN = "reviews_warehouse"
SMTP_CONN = "reviews_smtp"
PSEUDONYMISATION_CONN = "reviews_pseudonymisation"
KEY_ENV = "REVIEWS_PSEUDONYMISATION_KEY"


def _connection(conn_id: str):
    """A connection as a task sees it (through the Task SDK)."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def _variable(name: str, default: str | None) -> str | None:
    from airflow.sdk import Variable

    return Variable.get(name, default=default)


def _server_connection(conn_id: str):
    """A connection as the api-server sees it (secrets backends, environment, metadata DB)."""
    from airflow.exceptions import AirflowNotFoundException
    from airflow.models.connection import Connection

    try:
        return Connection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException:
        return None


def _server_variable(name: str, default: str | None) -> str | None:
    from airflow.models.variable import Variable

    return Variable.get(name, default_var=default)


def data_dir() -> Path:
    """Root of everything the pipelines write besides the warehouse (raw files, outbox, reports)."""
    return Path(_variable("reviews_data_dir", str(PROJECT_ROOT / "var")))


def inbox() -> Path:
    return Path(_variable("reviews_inbox", str(data_dir() / "inbox")))


def config():
    from reviews.core.config import load_config

    return load_config(_variable("reviews_config", None))


def _warehouse_url(conn, data: Path) -> str:
    from reviews.core.connections import sqlalchemy_url

    if conn is None:
        return f"sqlite:///{data / 'warehouse.db'}"
    return sqlalchemy_url(conn.conn_type, conn.host, conn.schema, conn.login, conn.password, conn.port)


def warehouse_url() -> str:
    return _warehouse_url(_connection(WAREHOUSE_CONN), data_dir())


def warehouse_url_for_server() -> str:
    """The same warehouse, looked up from the api-server (UI plugin), not from a task."""
    data = Path(_server_variable("reviews_data_dir", str(PROJECT_ROOT / "var")))
    return _warehouse_url(_server_connection(WAREHOUSE_CONN), data)


def config_path_for_server() -> str | None:
    return _server_variable("reviews_config", None)


def warehouse_engine():
    from reviews.core.warehouse import ensure_schema, make_engine

    engine = make_engine(warehouse_url())
    ensure_schema(engine)
    return engine


def pseudonymisation_key() -> bytes:
    from reviews.privacy.pseudonymise import check_key

    conn = _connection(PSEUDONYMISATION_CONN)
    secret = conn.password if conn is not None and conn.password else os.environ.get(KEY_ENV)
    return check_key(secret)


def _transport(conn, data: Path):
    from reviews.core.connections import smtp_settings
    from reviews.core.mail import OutboxTransport, SmtpTransport

    if conn is None:
        return OutboxTransport(data / "outbox")
    extra = conn.extra_dejson if hasattr(conn, "extra_dejson") else json.loads(conn.extra or "{}")
    return SmtpTransport(smtp_settings(conn.host, conn.port, conn.login, conn.password, extra))


def transport():
    """SMTP through `reviews_smtp` when it is set; otherwise .eml files in the outbox folder."""
    return _transport(_connection(SMTP_CONN), data_dir())


def transport_for_server():
    """The same mail path, looked up outside a task (triggerer callbacks)."""
    data = Path(_server_variable("reviews_data_dir", str(PROJECT_ROOT / "var")))
    return _transport(_server_connection(SMTP_CONN), data)


def config_for_server():
    from reviews.core.config import load_config

    return load_config(config_path_for_server())


# ---- partnership sources (partnership_returns): plain objects for reviews.returns.sources.gather ----


def staging_dir() -> Path:
    """Where SFTP fetches and SQL pulls are put before they are landed like any dropped file."""
    return data_dir() / "staging"


@contextmanager
def source_access(partnership):
    """What the partnership's `source` needs, from its Airflow connection: {} for a folder,
    {"sftp": an open SFTP client} (closed on exit) or {"sql_url": an SQLAlchemy URL}."""
    kind = partnership.source.get("kind", "folder")
    conn_id = partnership.source.get("conn_id")
    if kind == "sftp":
        from airflow.providers.sftp.hooks.sftp import SFTPHook

        with SFTPHook(ssh_conn_id=conn_id).get_managed_conn() as client:
            yield {"sftp": client}
    elif kind == "sql":
        from reviews.core.connections import sqlalchemy_url

        conn = _connection(conn_id)
        if conn is None:
            raise ValueError(f"{partnership.code}: the Airflow connection {conn_id!r} of its sql source does not exist")
        yield {"sql_url": sqlalchemy_url(conn.conn_type, conn.host, conn.schema, conn.login, conn.password, conn.port)}
    else:
        yield {}
