"""Where the pipelines find their warehouse, secrets, inbox and config: Airflow connections and
Variables (or their AIRFLOW_CONN_* / AIRFLOW_VAR_* environment forms), with embedded defaults.

Only task code calls these (at run time, never at DAG parse time). A setting that is missing or
wrong (the config file, the pseudonymisation key, the warehouse or SMTP connection) raises
`ConfigurationError`: the task fails at once, without retries (retrying cannot mend a setting),
and its message says what to set, never a secret's value; the failure notifier sends one alert
per DAG run for it (notifier.py).
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

from airflow.sdk.exceptions import AirflowFailException

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WAREHOUSE_CONN = "reviews_warehouse"
SMTP_CONN = "reviews_smtp"
PSEUDONYMISATION_CONN = "reviews_pseudonymisation"
KEY_ENV = "REVIEWS_PSEUDONYMISATION_KEY"
CONFIG_VARIABLE = "reviews_config"


class ConfigurationError(AirflowFailException):
    """A setting is missing or wrong: the task fails without retries, and the message (sent to
    the business unit once per DAG run) says what to set. Never carries a secret's value."""


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
    from reviews.core.config import ConfigError, load_config

    try:
        return load_config(_variable(CONFIG_VARIABLE, None))
    except ConfigError as exc:
        raise ConfigurationError(
            f"the configuration file cannot be used: correct it, or set the Airflow Variable {CONFIG_VARIABLE} "
            f"(AIRFLOW_VAR_{CONFIG_VARIABLE.upper()}) to the path of a valid one. What is wrong:\n{exc}"
        ) from None


def _warehouse_url(conn, data: Path) -> str:
    from reviews.core.connections import sqlalchemy_url

    if conn is None:
        return f"sqlite:///{data / 'warehouse.db'}"
    return sqlalchemy_url(conn.conn_type, conn.host, conn.schema, conn.login, conn.password, conn.port)


_WAREHOUSE_HOW = (f"set the Airflow connection {WAREHOUSE_CONN} (AIRFLOW_CONN_{WAREHOUSE_CONN.upper()}) to "
                  "postgresql://user:password@host:5432/database or sqlite:////absolute/path/warehouse.db")


def warehouse_url() -> str:
    conn = _connection(WAREHOUSE_CONN)
    env = f"AIRFLOW_CONN_{WAREHOUSE_CONN.upper()}"
    if conn is None and os.environ.get(env, "").strip():
        # Airflow could not read it (bad JSON, a port that is not a number): without this the
        # pipelines would silently use the embedded SQLite file instead. Its value holds a password.
        raise ConfigurationError(f"{env} is set but Airflow cannot read it as a connection: {_WAREHOUSE_HOW}")
    try:
        url = _warehouse_url(conn, data_dir())
    except ValueError as exc:  # sqlalchemy_url: an unsupported type, no database path (no secret in it)
        raise ConfigurationError(f"the warehouse connection cannot be used ({exc}): {_WAREHOUSE_HOW}") from None
    if conn is not None and url.startswith("sqlite:///"):
        folder = Path(url.removeprefix("sqlite:///")).parent
        if not folder.is_dir():
            raise ConfigurationError(f"the warehouse connection names an SQLite file in a folder that does not "
                                     f"exist ({folder}): {_WAREHOUSE_HOW}")
    return url


def warehouse_url_for_server() -> str:
    """The same warehouse, looked up from the api-server (UI plugin), not from a task."""
    data = Path(_server_variable("reviews_data_dir", str(PROJECT_ROOT / "var")))
    return _warehouse_url(_server_connection(WAREHOUSE_CONN), data)


def data_dir_for_server() -> Path:
    """The outputs' root as the api-server sees it: the status page serves files only from under it."""
    return Path(_server_variable("reviews_data_dir", str(PROJECT_ROOT / "var")))


def config_path_for_server() -> str | None:
    return _server_variable("reviews_config", None)


def warehouse_engine():
    from reviews.core.warehouse import ensure_schema, make_engine

    engine = make_engine(warehouse_url())
    ensure_schema(engine)
    return engine


def pseudonymisation_key() -> bytes:
    from reviews.privacy.pseudonymise import KEY_MIN_LENGTH, PseudonymisationKeyError, check_key

    conn = _connection(PSEUDONYMISATION_CONN)
    secret = conn.password if conn is not None and conn.password else os.environ.get(KEY_ENV)
    try:
        return check_key(secret)
    except PseudonymisationKeyError:  # its value, or even its length, never goes into the message
        raise ConfigurationError(
            f"the pseudonymisation key is missing or shorter than {KEY_MIN_LENGTH} characters: set the Airflow "
            f"connection {PSEUDONYMISATION_CONN} (password field) or the environment variable {KEY_ENV} to a "
            f"secret of at least {KEY_MIN_LENGTH} characters (e.g. openssl rand -base64 48); to replace a key in "
            "use, follow docs/security.md (rotating the key)"
        ) from None


def _transport(conn, data: Path):
    from reviews.core.connections import smtp_settings
    from reviews.core.mail import OutboxTransport, SmtpTransport

    if conn is None:
        return OutboxTransport(data / "outbox")
    extra = conn.extra_dejson if hasattr(conn, "extra_dejson") else json.loads(conn.extra or "{}")
    return SmtpTransport(smtp_settings(conn.host, conn.port, conn.login, conn.password, extra))


def transport():
    """SMTP through `reviews_smtp` when it is set; otherwise .eml files in the outbox folder."""
    try:
        return _transport(_connection(SMTP_CONN), data_dir())
    except ValueError as exc:  # smtp_settings: a wrong `security` or port (no secret in it)
        raise ConfigurationError(
            f"the SMTP connection cannot be used ({exc}): set the Airflow connection {SMTP_CONN} "
            f"(AIRFLOW_CONN_{SMTP_CONN.upper()}): host, port, login, password, extra "
            '{"security": "starttls" | "ssl" | "none"}'
        ) from None


def airflow_base_url() -> str:
    """The Airflow UI's address for links in emails (config [api] base_url), without a trailing slash."""
    from airflow.configuration import conf

    return (conf.get("api", "base_url", fallback="") or "http://localhost:8080").rstrip("/")


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
    missing = (f"{partnership.code}: the Airflow connection {conn_id!r} of its {kind} source does not exist: "
               f"set it (AIRFLOW_CONN_{str(conn_id).upper()}), or change partnerships.{partnership.code}.source "
               "in the config")
    if kind == "sftp":
        from airflow.providers.sftp.hooks.sftp import SFTPHook

        if _connection(conn_id) is None:
            raise ConfigurationError(missing)
        with SFTPHook(ssh_conn_id=conn_id).get_managed_conn() as client:
            yield {"sftp": client}
    elif kind == "sql":
        from reviews.core.connections import sqlalchemy_url

        conn = _connection(conn_id)
        if conn is None:
            raise ConfigurationError(missing)
        try:
            url = sqlalchemy_url(conn.conn_type, conn.host, conn.schema, conn.login, conn.password, conn.port)
        except ValueError as exc:  # an unsupported connection type (no secret in it)
            raise ConfigurationError(f"{partnership.code}: the Airflow connection {conn_id!r} of its sql source "
                                     f"cannot be used ({exc})") from None
        yield {"sql_url": url}
    else:
        yield {}
