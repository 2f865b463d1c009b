"""Shared set-up for the partnership_returns tests: a small config, the Airflow environment, and
ways to look at everything the run left behind (tables, the database file, the outbox)."""
from __future__ import annotations

import email
import json
from dataclasses import dataclass
from datetime import date, datetime, timezone
from email import policy
from pathlib import Path

import sqlalchemy as sa
import yaml

from reviews.core import warehouse as wh

ROOT = Path(__file__).resolve().parents[2]
KEY = "test-key-for-pseudonymisation-returns-0123"


def write_config(tmp_path: Path, partnerships: dict[str, dict], **top) -> Path:
    """The project's config with only `partnerships` (each with its overrides) and top-level overrides."""
    raw = yaml.safe_load((ROOT / "config" / "reviews.yaml").read_text(encoding="utf-8"))
    raw["partnerships"] = {code: {**raw["partnerships"][code], **overrides} for code, overrides in partnerships.items()}
    raw.update(top)
    path = tmp_path / "reviews.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


@dataclass
class Env:
    url: str
    data_dir: Path
    inbox: Path
    config: Path

    def engine(self):
        return wh.make_engine(self.url)

    def rows(self, sql: str, **params) -> list[dict]:
        engine = self.engine()
        try:
            with engine.connect() as conn:
                return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]
        finally:
            engine.dispose()

    def scalar(self, sql: str, **params):
        rows = self.rows(sql, **params)
        return next(iter(rows[0].values())) if rows else None

    def outbox(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(p.read_bytes(), policy=policy.default)
                for p in sorted((self.data_dir / "outbox").glob("*.eml"))]

    def every_table_text(self) -> str:
        """Every value of every table of the warehouse, as text."""
        engine = self.engine()
        parts = []
        try:
            with engine.connect() as conn:
                for name in sa.inspect(conn).get_table_names():
                    for row in conn.execute(sa.text(f'select * from "{name}"')):
                        parts.append(" | ".join("" if v is None else str(v) for v in row))
        finally:
            engine.dispose()
        return "\n".join(parts)


def prepare(monkeypatch, tmp_path: Path, url: str, config: Path) -> Env:
    data_dir = tmp_path / "data"
    inbox = data_dir / "inbox"
    inbox.mkdir(parents=True)
    monkeypatch.setenv("AIRFLOW_CONN_REVIEWS_WAREHOUSE", url.replace("postgresql+psycopg2://", "postgresql://"))
    monkeypatch.setenv("AIRFLOW_VAR_REVIEWS_INBOX", str(inbox))
    monkeypatch.setenv("AIRFLOW_VAR_REVIEWS_DATA_DIR", str(data_dir))
    monkeypatch.setenv("AIRFLOW_VAR_REVIEWS_CONFIG", str(config))
    monkeypatch.setenv("REVIEWS_PSEUDONYMISATION_KEY", KEY)
    monkeypatch.delenv("AIRFLOW_CONN_REVIEWS_SMTP", raising=False)
    return Env(url, data_dir, inbox, config)


def set_connection(monkeypatch, conn_id: str, fields: dict | str) -> None:
    value = fields if isinstance(fields, str) else json.dumps(fields)
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)


def run_returns(dagbag, day: date) -> dict:
    """Run partnership_returns for `day` with dag.test(); return {(task_id, map_index): state}."""
    dag = dagbag.get_dag("partnership_returns")
    dr = dag.test(logical_date=datetime(day.year, day.month, day.day, tzinfo=timezone.utc))
    states = {(ti.task_id, ti.map_index): ti.state for ti in dr.get_task_instances()}
    failed = {k: v for k, v in states.items() if v != "success"}
    assert dr.state == "success" and not failed, f"partnership_returns {day}: {failed}"
    return states


def db_file_bytes(url: str) -> bytes:
    """The SQLite warehouse file and its write-ahead log, as bytes."""
    path = Path(url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))
