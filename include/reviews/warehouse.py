"""The warehouse schema (the one source of truth) and the few ways code touches it.

Tables follow the contract in DESIGN.md. The DDL in `sql/` is generated from this metadata by
`make schema` and a test checks it has not drifted. Works on SQLite and PostgreSQL alike: every
statement is SQLAlchemy Core with bound parameters.
"""
from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    insert,
    select,
    tuple_,
)
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlalchemy.dialects import postgresql, sqlite

from reviews.template import DATASETS

metadata = MetaData()

# Lineage columns carried by every case table: which file and row a record's current state came from.
def _lineage() -> list[Column]:
    return [
        Column("return_date", Date, nullable=False),  # the date in the return's file name
        Column("source_file_id", Integer, nullable=False),
        Column("source_row", Integer, nullable=False),
        Column("row_hash", String(64), nullable=False),
        Column("loaded_at", DateTime(timezone=True), nullable=False),
    ]


def _case_table(dataset_name: str) -> Table:
    ds = DATASETS[dataset_name]
    cols: list[Column] = [Column("partnership_code", String(40), primary_key=True)]
    for c in ds.columns:
        if c.name == "child_ref":
            cols.append(Column("child_key", String(64), nullable=False))
        elif c.name == ds.id_column:
            cols.append(Column(c.name, String(100), primary_key=True))
        elif c.kind == "date":
            cols.append(Column(c.name, Date))
        elif c.kind == "age":
            cols.append(Column(c.name, Integer))
        elif c.kind == "freetext":
            cols.append(Column(c.name, Text))
        else:
            cols.append(Column(c.name, String(200)))
    return Table(dataset_name, metadata, *cols, *_lineage())


notifications = _case_table("notifications")
rapid_reviews = _case_table("rapid_reviews")
practice_reviews = _case_table("practice_reviews")
learning = _case_table("learning")
CASE_TABLES: dict[str, Table] = {
    "notifications": notifications,
    "rapid_reviews": rapid_reviews,
    "practice_reviews": practice_reviews,
    "learning": learning,
}

return_files = Table(
    "return_files",
    metadata,
    Column("file_id", Integer, primary_key=True, autoincrement=True),
    Column("partnership_code", String(40), nullable=False),
    Column("file_name", String(255), nullable=False),  # sanitised name as received
    Column("sha256", String(64), nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("return_date", Date),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("raw_path", Text, nullable=False),  # where the immutable raw copy is kept
    Column("datasets", String(200)),
    Column("rows_read", Integer, nullable=False, default=0),
    Column("rows_loaded", Integer, nullable=False, default=0),
    Column("rows_quarantined", Integer, nullable=False, default=0),
    Column("dropped_columns", Text),  # names only, never values
    Column("status", String(20), nullable=False),  # loaded | partial | rejected | failed
    Column("error", Text),
    UniqueConstraint("partnership_code", "sha256", name="uq_return_files_sha"),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("quarantine_id", Integer, primary_key=True, autoincrement=True),
    Column("partnership_code", String(40), nullable=False),
    Column("dataset", String(40), nullable=False),
    Column("file_id", Integer, nullable=False),
    Column("file_name", String(255), nullable=False),
    Column("row_number", Integer, nullable=False),  # as a spreadsheet shows it (header is row 1)
    Column("record_id", String(100)),
    Column("failed_checks", Text, nullable=False),  # plain words, one per line
    Column("raw_values", Text, nullable=False),  # JSON; child_ref already pseudonymised
    Column("quarantined_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("file_id", "dataset", "row_number", name="uq_quarantine_row"),
)

record_history = Table(
    "record_history",
    metadata,
    Column("history_id", Integer, primary_key=True, autoincrement=True),
    Column("partnership_code", String(40), nullable=False),
    Column("dataset", String(40), nullable=False),
    Column("record_id", String(100), nullable=False),
    Column("file_id", Integer, nullable=False),
    Column("return_date", Date, nullable=False),
    Column("row_hash", String(64), nullable=False),
    Column("values_json", Text, nullable=False),
    Column("loaded_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("partnership_code", "dataset", "record_id", "file_id", name="uq_history_version"),
)

timeliness = Table(
    "timeliness",
    metadata,
    Column("partnership_code", String(40), primary_key=True),
    Column("stage", String(30), primary_key=True),
    Column("record_id", String(100), primary_key=True),
    Column("as_of_date", Date, primary_key=True),
    Column("start_date", Date),
    Column("due_date", Date),
    Column("completed_date", Date),
    Column("working_days_taken", Integer),
    Column("status", String(20), nullable=False),
    Column("rule_set", String(60)),
    Column("reason", Text),
)

bulletins = Table(
    "bulletins",
    metadata,
    Column("bulletin_id", Integer, primary_key=True, autoincrement=True),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("audience", String(40), nullable=False),  # 'region' or a partnership code
    Column("version", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("path", Text, nullable=False),
    Column("subject", String(300), nullable=False),
    Column("built_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("period_start", "period_end", "audience", "version", name="uq_bulletin_version"),
)

circulation_log = Table(
    "circulation_log",
    metadata,
    Column("send_id", Integer, primary_key=True, autoincrement=True),
    Column("bulletin_id", Integer, nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("status", String(20), nullable=False),  # pending | sending | sent | failed | refused
    Column("attempt", Integer, nullable=False, default=0),
    Column("queued_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    Column("error", Text),
    Column("transport", String(20)),  # smtp | outbox
    Column("message_ref", Text),  # Message-ID, or the outbox file
    UniqueConstraint("bulletin_id", "recipient", name="uq_circulation_once"),
)


def make_engine(url: str) -> Engine:
    """An engine for the warehouse URL. Bound values are kept out of error messages (they reach logs)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, hide_parameters=True)


def ensure_schema(engine: Engine) -> None:
    """Create any missing tables (idempotent)."""
    metadata.create_all(engine)


def ddl(dialect_name: str) -> str:
    """The CREATE statements for one dialect, as kept in sql/."""
    dialect = {"sqlite": sqlite.dialect(), "postgresql": postgresql.dialect()}[dialect_name]
    parts = [
        "-- Generated from include/reviews/warehouse.py by `make schema`; do not edit by hand.\n"
    ]
    for table in metadata.sorted_tables:
        parts.append(str(CreateTable(table).compile(dialect=dialect)).strip() + ";\n")
        for index in sorted(table.indexes, key=lambda i: i.name or ""):
            parts.append(str(CreateIndex(index).compile(dialect=dialect)).strip() + ";\n")
    return "\n".join(parts)


def upsert(conn, table: Table, rows: Sequence[Mapping[str, Any]], keys: Iterable[str]) -> None:
    """Insert rows, replacing those whose key already exists (portable delete-then-insert).

    Runs inside the caller's transaction, so a failure leaves the table as it was.
    """
    if not rows:
        return
    keys = list(keys)
    key_cols = [table.c[k] for k in keys]
    values = [tuple(r[k] for k in keys) for r in rows]
    for i in range(0, len(values), 500):
        chunk = values[i : i + 500]
        conn.execute(table.delete().where(tuple_(*key_cols).in_(chunk)))
    conn.execute(insert(table), list(rows))


def existing_keys(conn, table: Table, keys: Sequence[str], where: Mapping[str, Any]) -> dict[tuple, dict]:
    """Current rows of `table` matching `where`, indexed by their key tuple."""
    stmt = select(table)
    for col, val in where.items():
        stmt = stmt.where(table.c[col] == val)
    out = {}
    for row in conn.execute(stmt).mappings():
        out[tuple(row[k] for k in keys)] = dict(row)
    return out


def write_ddl(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in ("sqlite", "postgresql"):
        path = folder / f"schema.{name}.sql"
        path.write_text(ddl(name), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":  # make schema
    if len(sys.argv) == 3 and sys.argv[1] == "--write-ddl":
        for p in write_ddl(sys.argv[2]):
            print(f"wrote {p}")
    else:
        print("usage: python -m reviews.warehouse --write-ddl sql", file=sys.stderr)
        sys.exit(2)
