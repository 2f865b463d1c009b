"""Turn connection fields (as Airflow stores them) into what the libraries need.

Kept free of Airflow so it is unit-tested on its own; the Airflow layer only fetches the fields.
"""
from __future__ import annotations

from urllib.parse import quote

from reviews.core.mail import SmtpSettings


def sqlalchemy_url(conn_type: str, host: str | None, schema: str | None, login: str | None,
                   password: str | None, port: int | None) -> str:
    """SQLAlchemy URL for the warehouse connection (sqlite path in `schema` or `host`)."""
    kind = (conn_type or "").lower()
    if kind == "sqlite":
        path = schema or host
        if not path:
            raise ValueError("the sqlite warehouse connection has no database path")
        return f"sqlite:///{path}"
    if kind in ("postgres", "postgresql"):
        auth = ""
        if login:
            auth = quote(login, safe="")
            if password:
                auth += ":" + quote(password, safe="")
            auth += "@"
        where = f"{host or 'localhost'}:{port or 5432}"
        return f"postgresql+psycopg://{auth}{where}/{schema or 'postgres'}"
    raise ValueError(f"the warehouse connection type {conn_type!r} is not supported (sqlite or postgres)")


def smtp_settings(host: str | None, port: int | None, login: str | None, password: str | None,
                  extra: dict | None) -> SmtpSettings:
    """SMTP settings from the `reviews_smtp` connection; `security` in extra: starttls | ssl | none."""
    extra = extra or {}
    security = str(extra.get("security", "starttls")).lower()
    if security not in ("starttls", "ssl", "none"):
        raise ValueError(f"reviews_smtp: security must be starttls, ssl or none, not {security!r}")
    default_port = {"ssl": 465, "starttls": 587, "none": 25}[security]
    return SmtpSettings(
        host=host or "localhost",
        port=int(port or default_port),
        user=login or None,
        password=password or None,
        security=security,
        timeout=float(extra.get("timeout", 30)),
    )
