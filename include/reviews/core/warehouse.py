"""The warehouse schema (the one source of truth) and the few ways code touches it.

Tables follow docs/design.md ("Warehouse contract"). The DDL in `sql/` is generated from this metadata by
`make schema` and a test checks it has not drifted. Works on SQLite and PostgreSQL alike: every
statement is SQLAlchemy Core with bound parameters.
"""
from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from itertools import repeat
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    insert,
    make_url,
    select,
    text,
    tuple_,
)
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlalchemy.dialects import postgresql, sqlite

from reviews.core.template import DATASETS

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
    Column("size_bytes", BigInteger, nullable=False),  # a file refused by its size may be several GB
    Column("return_date", Date),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("raw_path", Text, nullable=False),  # where the immutable raw copy is kept
    Column("datasets", String(200)),
    Column("rows_read", Integer, nullable=False, default=0),
    Column("rows_loaded", Integer, nullable=False, default=0),
    Column("rows_quarantined", Integer, nullable=False, default=0),
    # Rows loaded with at least one `flag` rule broken (counted beside rows_read = rows_loaded +
    # rows_quarantined, which still holds: a flagged row is a loaded row). Null before issue 16.
    Column("rows_flagged", Integer),
    Column("dropped_columns", Text),  # names only, never values
    Column("notes", Text),  # what reading it noticed (sheets ignored, ...), one per line
    Column("status", String(20), nullable=False),  # loaded | partial | rejected | failed
    Column("error", Text),
    Column("quality_report_id", Integer),  # bulletins.bulletin_id of the data quality report covering it
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
    Column("failed_rules", Text),  # the rule ids (quality.py), one per line, parallel to failed_checks
    Column("raw_values", Text, nullable=False),  # JSON; child_ref already pseudonymised
    Column("quarantined_at", DateTime(timezone=True), nullable=False),
    Column("resolved_by_file_id", Integer),  # the later file whose valid row for the record replaced it
    Column("resolved_at", DateTime(timezone=True)),
    UniqueConstraint("file_id", "dataset", "row_number", name="uq_quarantine_row"),
)
# Cell problems of rows that were loaded (rules of severity `flag`, config `quality.severity`): one
# row per loaded row and rule broken. The bad cell was stored blank in the case table; its original
# text is kept here (quoted as the quality report quotes it: "(withheld: why)" when it could be
# personal), where the partnership's quality report and the business unit's pages show it. A later
# return's row for the same record replaces the case row; its flags are then the current ones
# (`superseded_by_file_id` marks the older flags). Timeliness judges a stage that depends on a
# flagged column `unknown`, with the flag's sentence as its reason.
row_flags = Table(
    "row_flags",
    metadata,
    Column("flag_id", Integer, primary_key=True, autoincrement=True),
    Column("partnership_code", String(40), nullable=False),
    Column("dataset", String(40), nullable=False),
    Column("record_id", String(100), nullable=False),  # the case table's id (never a child reference)
    Column("file_id", Integer, nullable=False),
    Column("file_name", String(255), nullable=False),
    Column("row_number", Integer, nullable=False),  # as a spreadsheet shows it (header is row 1)
    Column("rule_id", String(120), nullable=False),  # quality.py rule id, e.g. date:completed_date
    Column("columns", String(200), nullable=False),  # template columns the rule reads, comma-separated
    Column("blanked", Integer, nullable=False, default=0),  # 1: the cell was stored blank
    Column("original_text", Text),  # what the return said, quoted safely (or "(withheld: why)")
    Column("message", Text, nullable=False),  # the rule's sentence, as the quality report gives it
    Column("flagged_at", DateTime(timezone=True), nullable=False),
    Column("superseded_by_file_id", Integer),  # a later return's row for the record replaced this one
    UniqueConstraint("file_id", "dataset", "row_number", "rule_id", name="uq_row_flag"),
)
Index("ix_row_flags_record", row_flags.c.partnership_code, row_flags.c.dataset, row_flags.c.record_id)

# One row per case (notification) and as-of date, following it through every stage
# (reviews/journeys): written by statutory_timeliness after the timeliness rows. Keys only
# (pseudonymised child key is not carried; record ids are case references). `stages_json` holds
# each stage's due date, status, working days left and reason; `findings` the consistency flags.
case_journeys = Table(
    "case_journeys",
    metadata,
    Column("partnership_code", String(40), primary_key=True),
    Column("notification_id", String(100), primary_key=True),  # a practice review with no notification: its review_id
    Column("as_of_date", Date, primary_key=True),
    Column("rapid_review_id", String(100)),
    Column("review_id", String(100)),
    Column("current_stage", String(40), nullable=False),  # the stage the case is at (journeys.STAGES)
    Column("current_status", String(20), nullable=False),  # a timeliness status, or "closed"
    Column("next_due_date", Date),  # the earliest due date of an open stage
    Column("working_days_left", Integer),  # to next_due_date from as_of_date; negative when overdue
    Column("decision", String(40)),  # lcspr | national_review | other_review | none | pending
    Column("stages_json", Text, nullable=False),
    Column("findings", Text),  # consistency findings, plain words, one per line
    Column("flags", Integer, nullable=False, default=0),  # current row_flags of the case's rows
    Column("rejected", Integer, nullable=False, default=0),  # unresolved quarantine rows for the case's records
)

# A resubmission looks up the quarantined rows of the records it brings (ingest._resolve_quarantine);
# a data quality report, the rows a return corrected (feedback._report_context). The second index
# holds resolved rows only: on a server without statistics (autovacuum off) a full index tempted
# the planner to read every unresolved row for "resolved_by_file_id IS NULL".
Index("ix_quarantine_record", quarantine.c.partnership_code, quarantine.c.dataset, quarantine.c.record_id)
Index("ix_quarantine_resolved_by", quarantine.c.resolved_by_file_id,
      postgresql_where=quarantine.c.resolved_by_file_id.is_not(None),
      sqlite_where=quarantine.c.resolved_by_file_id.is_not(None))

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

# Late and missing returns, judged per partnership and period as of a run's as-of date (a partition
# per as_of_date, replaced by each run, like timeliness). Periods not yet due with no return have no row.
return_expectations = Table(
    "return_expectations",
    metadata,
    Column("partnership_code", String(40), primary_key=True),
    Column("period_end", Date, primary_key=True),
    Column("as_of_date", Date, primary_key=True),
    Column("period_start", Date, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("received_date", Date),  # the date of the first return for the period (its file name's)
    Column("file_id", Integer),  # that return's first file
    Column("status", String(20), nullable=False),  # on_time | late | missing | failed (received, not loaded)
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

# Timeliness alerts to the business unit (reviews/timeliness/alerts.py): one row per case, stage and status it
# became (open_at_risk, open_overdue), written before the email is sent, so each change is told once.
timeliness_alerts = Table(
    "timeliness_alerts",
    metadata,
    Column("alert_id", Integer, primary_key=True, autoincrement=True),
    Column("partnership_code", String(40), nullable=False),
    Column("stage", String(30), nullable=False),
    Column("record_id", String(100), nullable=False),  # notification_id / review_id: a case reference
    Column("status", String(20), nullable=False),  # the timeliness status it became
    Column("first_seen_as_of", Date, nullable=False),  # as_of_date of the run that first saw it
    Column("due_date", Date),
    Column("working_days_left", Integer),  # as of first_seen_as_of; negative when overdue
    Column("rule_set", String(60)),
    Column("send_status", String(20), nullable=False),  # pending | sending | sent | failed | withdrawn
    Column("attempt", Integer, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    Column("transport", String(20)),  # smtp | outbox
    Column("message_ref", Text),  # Message-ID of the alert email that listed it (or the outbox file)
    Column("error", Text),
    UniqueConstraint("partnership_code", "stage", "record_id", "status", name="uq_timeliness_alert_once"),
)

# Learning action reminders to a partnership's learning contact (reviews/learning/actions.py): one row per
# action (finding) and state it reached (due_soon, overdue), written before the email is sent, so each is told once.
action_reminders = Table(
    "action_reminders",
    metadata,
    Column("reminder_id", Integer, primary_key=True, autoincrement=True),
    Column("partnership_code", String(40), nullable=False),
    Column("finding_id", String(100), nullable=False),  # the action's finding: a case reference
    Column("state", String(20), nullable=False),  # due_soon | overdue
    Column("review_id", String(100)),
    Column("owner_agency", String(200)),
    Column("action_due_date", Date),
    Column("action_status", String(20)),
    Column("first_seen_as_of", Date, nullable=False),  # as-of date of the run that first saw it
    Column("working_days_left", Integer),  # as of first_seen_as_of; negative when overdue
    Column("recipients", Text),  # the addresses it was sent to, one per line
    Column("send_status", String(20), nullable=False),  # pending | sending | sent | failed | withdrawn
    Column("attempt", Integer, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    Column("transport", String(20)),  # smtp | outbox
    Column("message_ref", Text),  # Message-ID of the email that listed it (or the outbox file)
    Column("error", Text),
    UniqueConstraint("partnership_code", "finding_id", "state", name="uq_action_reminder_once"),
)

# One row per timeliness partition: a digest of what it was judged from (case values, config,
# rules), so a rerun with the same inputs keeps the partition (timeliness.run.run_timeliness).
timeliness_runs = Table(
    "timeliness_runs",
    metadata,
    Column("as_of_date", Date, primary_key=True),
    Column("inputs_digest", String(64), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("counts_json", Text, nullable=False),  # status counts per stage, as run_timeliness returns them
    Column("judged_at", DateTime(timezone=True), nullable=False),
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
    # JSON: whose data the version was built from (learning.readiness: per partnership in | late |
    # missing, due and received dates); null for feedback and for versions built before it was kept.
    Column("data_status", Text),
    UniqueConstraint("period_start", "period_end", "audience", "version", name="uq_bulletin_version"),
)

# One row per reporting period a summary run has looked at (learning.readiness): its bulletins are
# built only when every partnership's return covering it is in, or overdue by summary.wait_for_returns_days.
bulletin_periods = Table(
    "bulletin_periods",
    metadata,
    Column("period_start", Date, primary_key=True),
    Column("period_end", Date, primary_key=True),
    Column("status", String(20), nullable=False),  # waiting | built
    Column("data_status", Text, nullable=False),  # JSON, as bulletins.data_status, at the last check
    Column("checked_as_of", Date, nullable=False),
    # A version built (not by a backfill) after the period's send day: bulletin_circulation asks for sign-off.
    Column("signoff_wanted", Boolean, nullable=False, default=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Every request to the business unit to sign off a period's bulletins (bulletin_circulation's
# Human-in-the-loop task). Only versions in an approved request are ever queued for sending.
bulletin_signoffs = Table(
    "bulletin_signoffs",
    metadata,
    Column("signoff_id", Integer, primary_key=True, autoincrement=True),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("bulletin_ids", Text, nullable=False),  # JSON list: exactly the versions put to sign-off
    Column("status", String(20), nullable=False),  # requested | approved | rejected | withdrawn
    Column("dag_id", String(250), nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True)),
    Column("decided_by", String(200)),  # the Airflow user who answered
    Column("reason", Text),  # given with a rejection (or an approval)
    Column("reminded_at", DateTime(timezone=True)),  # the one reminder, when sent
)

# Every redaction made in a period's free text before it went into a bulletin (business unit only;
# replaced for the period by each build). The redacted value itself is never stored.
bulletin_redactions = Table(
    "bulletin_redactions",
    metadata,
    Column("redaction_id", Integer, primary_key=True, autoincrement=True),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("partnership_code", String(40), nullable=False),
    Column("review_id", String(100)),
    Column("record_id", String(100), nullable=False),  # finding_id, or review_id for review fields
    Column("field", String(40), nullable=False),  # finding | recommendation | owner_agency | methodology | author
    Column("kind", String(20), nullable=False),  # nhs_number | postcode | email | phone | date_of_birth | date
    Column("used_in", String(200)),  # key findings; 7-minute briefing
    Column("excerpt", Text),  # the words around it, already redacted
    Column("found_at", DateTime(timezone=True), nullable=False),
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


legal_holds = Table(
    "legal_holds",
    metadata,
    Column("partnership_code", String(40), primary_key=True),
    Column("case_id", String(100), primary_key=True),  # a notification_id (the case: its reviews and learning too) or a review_id
    Column("reason", Text, nullable=False),
    Column("placed_by", String(200), nullable=False),
    Column("placed_at", DateTime(timezone=True), nullable=False),
)

retention_log = Table(
    "retention_log",
    metadata,
    Column("retention_id", Integer, primary_key=True, autoincrement=True),
    Column("as_of_date", Date, nullable=False),
    Column("cutoff_date", Date, nullable=False),
    Column("action", String(20), nullable=False),  # anonymise | delete
    Column("partnership_code", String(40), nullable=False),
    Column("dataset", String(40), nullable=False),
    Column("records", Integer, nullable=False),
    Column("held", Integer, nullable=False),  # past retention but under a legal hold
    Column("done_at", DateTime(timezone=True), nullable=False),
)


def make_engine(url: str) -> Engine:
    """An engine for the warehouse URL. Bound values are kept out of error messages (they reach logs).

    A PostgreSQL warehouse is always reached through psycopg 3, whatever driver the URL names
    (`postgresql://`, `postgresql+psycopg2://` ... become `postgresql+psycopg://`): bulk loads
    use its COPY (`_pg_copy`)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    parsed = make_url(url)
    if parsed.get_backend_name() in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, pool_pre_ping=True, hide_parameters=True)


def ensure_schema(engine: Engine) -> None:
    """Create any missing tables, and any index missing from a table made before it, then the
    reporting views that are missing or out of date (reviews.core.views; idempotent).

    Only a missing index is created: PostgreSQL's CREATE INDEX IF NOT EXISTS locks its table
    before it looks for the index, so on every task it waited for any other task's open load
    into that table (concurrent ingest tasks took turns)."""
    metadata.create_all(engine)
    with engine.begin() as conn:
        inspector = inspect(conn)
        if conn.dialect.name == "postgresql":
            _widen_integers(conn, inspector)
        _add_nullable_columns(conn, inspector)
        for table in metadata.sorted_tables:
            if not table.indexes:
                continue
            present = {ix["name"] for ix in inspector.get_indexes(table.name)}
            for index in table.indexes:
                if index.name not in present:
                    conn.execute(CreateIndex(index, if_not_exists=True))
    from reviews.core.views import ensure_views  # the reporting views (imports this module)

    with engine.begin() as conn:
        ensure_views(conn)


def _add_nullable_columns(conn, inspector) -> None:
    """A nullable column added to a table since a warehouse was made (bulletins.data_status) is
    added to it; existing rows get null, which every reader takes as "not recorded"."""
    for table in metadata.sorted_tables:
        existing = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in existing and column.nullable and not column.primary_key:
                kind = column.type.compile(dialect=conn.dialect)
                conn.execute(text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'))


def _widen_integers(conn, inspector) -> None:
    """A column that became BigInteger (return_files.size_bytes: a file refused by its size may be
    several GB) is widened in a PostgreSQL warehouse made before (SQLite's integers are 64-bit)."""
    for table in metadata.sorted_tables:
        wide = [c.name for c in table.columns if type(c.type) is BigInteger]
        if not wide:
            continue
        existing = {c["name"]: c["type"] for c in inspector.get_columns(table.name)}
        for name in wide:
            if name in existing and not isinstance(existing[name], BigInteger):
                conn.execute(text(f'ALTER TABLE "{table.name}" ALTER COLUMN "{name}" TYPE bigint'))


def ddl(dialect_name: str) -> str:
    """The CREATE statements for one dialect, as kept in sql/."""
    dialect = {"sqlite": sqlite.dialect(), "postgresql": postgresql.dialect()}[dialect_name]
    parts = [
        "-- Generated from include/reviews/core/warehouse.py by `make schema`; do not edit by hand.\n"
    ]
    for table in metadata.sorted_tables:
        parts.append(str(CreateTable(table).compile(dialect=dialect)).strip() + ";\n")
        for index in sorted(table.indexes, key=lambda i: i.name or ""):
            parts.append(str(CreateIndex(index).compile(dialect=dialect)).strip() + ";\n")
    return "\n".join(parts)


class ColumnRows:
    """Rows given a column at a time (name -> list of values, or one value for every row): what
    bulk loads build anyway, without a dict per row. upsert and insert_rows take these too."""

    def __init__(self, columns: Mapping[str, Any], length: int):
        self.columns = dict(columns)
        self.length = length
        for name, values in self.columns.items():
            if isinstance(values, list) and len(values) != length:
                raise ValueError(f"column {name} has {len(values)} values for {length} rows")

    def __len__(self) -> int:
        return self.length

    def column(self, name: str) -> list:
        values = self.columns[name]
        return values if isinstance(values, list) else [values] * self.length

    def records(self) -> list[dict]:
        names = list(self.columns)
        return [dict(zip(names, row)) for row in zip(*(self.column(n) for n in names))]


Rows = Sequence[Mapping[str, Any]] | ColumnRows


def _names(rows: Rows) -> list[str]:
    return list(rows.columns) if isinstance(rows, ColumnRows) else list(rows[0])


def _records(rows: Rows) -> list:
    return rows.records() if isinstance(rows, ColumnRows) else list(rows)


def upsert(conn, table: Table, rows: Rows, keys: Iterable[str], *, keep_newer: str | None = None) -> None:
    """Insert rows, replacing those whose key already exists.

    One INSERT ... ON CONFLICT (keys) DO UPDATE (SQLite 3.24+, PostgreSQL) that sets every other
    column of the table to the new row's value (a column the rows do not give gets its default),
    so a replaced row ends exactly as deleting it and inserting the new one would leave it. On
    PostgreSQL the rows go through COPY into a temporary table first (see `_pg_copy`).
    `keep_newer`: a column such as `return_date`; an existing row whose value there is greater
    than the new row's is kept as it is (the new row is not written).
    Two rows with the same key are refused (ValueError), as the insert of the old delete-then-insert
    refused them. Runs inside the caller's transaction, so a failure leaves the table as it was.
    """
    if not rows:
        return
    keys = list(keys)
    key_values = zip(*(rows.column(k) for k in keys)) if isinstance(rows, ColumnRows) else (
        tuple(r[k] for k in keys) for r in rows)
    if len(set(key_values)) != len(rows):
        raise ValueError(f"upsert into {table.name}: two rows have the same key ({', '.join(keys)})")
    others = [c for c in table.columns if c.name not in keys]
    dialect = conn.dialect.name
    columns = _copy_columns(table, rows) if dialect == "postgresql" else None
    if columns is not None:
        _pg_upsert(conn, table, rows, keys, others, keep_newer, columns)
        return
    if dialect == "sqlite" and _sqlite_upsert(conn, table, rows, keys, others, keep_newer):
        return
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:  # pragma: no cover - the warehouse is SQLite or PostgreSQL
        _delete_then_insert(conn, table, _records(rows), keys)
        return
    stmt = dialect_insert(table)
    where = None if keep_newer is None else table.c[keep_newer] <= stmt.excluded[keep_newer]
    if others:
        stmt = stmt.on_conflict_do_update(index_elements=keys, set_={c.name: stmt.excluded[c.name] for c in others},
                                          where=where)
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=keys)
    conn.execute(stmt, _records(rows))


def _delete_then_insert(conn, table: Table, rows: Sequence[Mapping[str, Any]], keys: list[str]) -> None:
    """The portable upsert this module used before ON CONFLICT (kept as the benchmark's baseline)."""
    key_cols = [table.c[k] for k in keys]
    values = [tuple(r[k] for k in keys) for r in rows]
    for i in range(0, len(values), 500):
        chunk = values[i : i + 500]
        conn.execute(table.delete().where(tuple_(*key_cols).in_(chunk)))
    conn.execute(insert(table), list(rows))


def insert_rows(conn, table: Table, rows: Rows) -> None:
    """Insert many rows (all with the same columns): COPY on PostgreSQL, executemany elsewhere."""
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        params = _sqlite_params(conn, table, rows)
        if params is not None:
            cols = ", ".join(f'"{c}"' for c in _names(rows))
            marks = ", ".join("?" for _ in _names(rows))
            conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({cols}) VALUES ({marks})', params)
            return
    columns = _copy_columns(table, rows) if conn.dialect.name == "postgresql" else None
    if columns is None:
        conn.execute(insert(table), _records(rows))
    else:
        _pg_copy(conn, table, table.name, _names(rows), columns, len(rows))


def insert_frame(conn, table: Table, frame) -> None:
    """Insert a DataFrame's rows (columns named as the table's), each column as the Python values
    SQLAlchemy would bind (reviews.core.frame_values), through insert_rows."""
    if frame.empty:
        return
    from reviews.core.frame_values import column_values

    insert_rows(conn, table, ColumnRows({name: column_values(frame[name]) for name in frame.columns}, len(frame)))


# What binary COPY writes for each kind of column: PostgreSQL's type (psycopg's dumper for it)
# and the Python types a value may have. A value of another type (a str for a date, a bool for an
# integer, a naive datetime for a timestamptz...) sends the rows through INSERT instead, which
# binds it as SQLAlchemy would.
_INT_RANGE = {"int4": (-(1 << 31), (1 << 31) - 1), "int8": (-(1 << 63), (1 << 63) - 1)}  # binary COPY
# would wrap a value outside its column's range, not refuse it


def _copy_kind(column: Column) -> tuple[str, tuple[type, ...]] | None:
    kind = type(column.type)
    if issubclass(kind, String):  # Text too
        return "text", (str,)
    if issubclass(kind, DateTime):
        return ("timestamptz", (datetime,)) if column.type.timezone else None
    if issubclass(kind, Date):
        return "date", (date, datetime)  # a datetime is stored as its own date (not the session's)
    if kind is Integer:
        return "int4", (int,)
    if kind is BigInteger:
        return "int8", (int,)
    return None


def _copy_values_fit(kind: tuple[str, tuple[type, ...]], values: list) -> bool:
    """Whether binary COPY stores these values of a column as an INSERT would."""
    pg_type, allowed = kind
    types = set(map(type, values))
    types.discard(type(None))
    if not types <= set(allowed):
        return False
    if not types or pg_type not in ("int4", "int8", "timestamptz"):
        return True
    present = values if len(values) == 1 or None not in values else [v for v in values if v is not None]
    if pg_type in _INT_RANGE:
        low, high = _INT_RANGE[pg_type]
        return low <= min(present) and max(present) <= high
    return all(v.utcoffset() is not None for v in present)  # a naive one: the session's time zone


def _copy_columns(table: Table, rows: Rows) -> list | None:
    """The rows' columns (a list of values, or one value for every row) for `_pg_copy`, or None
    when COPY would not store what an INSERT would: a column left out has a Python-side default
    (SQLAlchemy fills it in), a row has other columns than the first, or a value is not of a type
    binary COPY writes for its column (see `_copy_kind`)."""
    names = _names(rows)
    if any(name not in table.c for name in names):
        return None
    if any(c.default is not None for c in table.columns if c.name not in names):
        return None
    if isinstance(rows, ColumnRows):
        columns = [rows.columns[name] for name in names]
    else:
        width = len(names)
        if any(len(r) != width for r in rows):
            return None
        try:
            columns = [[r[name] for r in rows] for name in names]
        except KeyError:
            return None
    for name, values in zip(names, columns):
        kind = _copy_kind(table.c[name])
        if kind is None or not _copy_values_fit(kind, values if isinstance(values, list) else [values]):
            return None
    return columns


def _pg_copy(conn, table: Table, target: str, names: list[str], columns: list, n: int) -> None:
    """COPY n rows into `target` (`table` or a table shaped like it) in binary format, on the
    connection's own psycopg cursor (inside its transaction). Each value is sent as its column's
    PostgreSQL type (`_copy_kind`): nothing to escape, nothing for the server to parse."""
    driver = conn.connection.driver_connection  # a psycopg (3) connection: make_engine sees to it
    cols = ", ".join(f'"{c}"' for c in names)
    with driver.cursor() as cursor, cursor.copy(f'COPY "{target}" ({cols}) FROM STDIN (FORMAT BINARY)') as copy:
        copy.set_types([_copy_kind(table.c[name])[0] for name in names])
        write = copy.write_row
        for row in zip(*(values if isinstance(values, list) else repeat(values, n) for values in columns)):
            write(row)


def _sqlite_params(conn, table: Table, rows: Rows) -> list[tuple] | None:
    """The rows as the tuples SQLAlchemy would bind on SQLite (each value through the column
    type's own bind processor, so dates and times are stored in the same text), for a plain
    executemany; None when that would not store what an INSERT would (see _copy_columns)."""
    columns = _names(rows)
    if any(name not in table.c for name in columns):
        return None
    if any(c.default is not None for c in table.columns if c.name not in columns):
        return None
    n = len(rows)
    if isinstance(rows, ColumnRows):
        values = [rows.columns[name] for name in columns]
    else:
        if any(len(r) != len(columns) for r in rows):
            return None
        try:
            values = [[r[name] for r in rows] for name in columns]
        except KeyError:
            return None
    out = []
    for name, column in zip(columns, values):
        process = table.c[name].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        if not isinstance(column, list):  # the same value in every row
            out.append([process(column) if process else column] * n)
        elif process is None:
            out.append(column)
        else:
            done: dict = {}
            converted = []
            for v in column:
                key = (type(v), v)
                try:
                    converted.append(done[key])
                except KeyError:
                    converted.append(done.setdefault(key, process(v)))
                except TypeError:  # unhashable
                    converted.append(process(v))
            out.append(converted)
    return list(zip(*out))


def _sqlite_upsert(conn, table: Table, rows: Rows, keys: list[str], others: list[Column], keep_newer: str | None) -> bool:
    """INSERT ... ON CONFLICT DO UPDATE as one executemany of bound tuples; False if not possible."""
    params = _sqlite_params(conn, table, rows)
    if params is None:
        return False
    columns = _names(rows)
    cols = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    conflict = ", ".join(f'"{k}"' for k in keys)
    if others:
        action = "DO UPDATE SET " + ", ".join(f'"{c.name}" = excluded."{c.name}"' for c in others)
        if keep_newer is not None:
            action += f' WHERE "{table.name}"."{keep_newer}" <= excluded."{keep_newer}"'
    else:
        action = "DO NOTHING"
    conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({cols}) VALUES ({marks}) ON CONFLICT ({conflict}) {action}', params)
    return True


def _pg_upsert(conn, table: Table, rows, keys: list[str], others: list[Column], keep_newer: str | None,
               columns: list) -> None:
    """COPY into a session temporary table shaped like `table`, then one INSERT ... SELECT ...
    ON CONFLICT DO UPDATE from it (emptied again after, and at commit)."""
    tmp = f"_upsert_{table.name}"
    names = _names(rows)
    conn.exec_driver_sql(
        f'CREATE TEMPORARY TABLE IF NOT EXISTS "{tmp}" (LIKE "{table.name}" INCLUDING DEFAULTS) ON COMMIT DELETE ROWS')
    _pg_copy(conn, table, tmp, names, columns, len(rows))
    cols = ", ".join(f'"{c}"' for c in names)
    conflict = ", ".join(f'"{k}"' for k in keys)
    if others:
        action = "DO UPDATE SET " + ", ".join(f'"{c.name}" = excluded."{c.name}"' for c in others)
        if keep_newer is not None:
            action += f' WHERE "{table.name}"."{keep_newer}" <= excluded."{keep_newer}"'
    else:
        action = "DO NOTHING"
    conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({cols}) SELECT {cols} FROM "{tmp}" ON CONFLICT ({conflict}) {action}')
    conn.exec_driver_sql(f'DELETE FROM "{tmp}"')


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
    """sql/schema.{dialect}.sql (the tables) and sql/views.{dialect}.sql (the reporting views)."""
    from reviews.core.views import views_ddl

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in ("sqlite", "postgresql"):
        for kind, text_of in (("schema", ddl), ("views", views_ddl)):
            path = folder / f"{kind}.{name}.sql"
            path.write_text(text_of(name), encoding="utf-8")
            written.append(path)
    return written


if __name__ == "__main__":  # make schema
    if len(sys.argv) == 3 and sys.argv[1] == "--write-ddl":
        for p in write_ddl(sys.argv[2]):
            print(f"wrote {p}")
    else:
        print("usage: python -m reviews.core.warehouse --write-ddl sql", file=sys.stderr)
        sys.exit(2)
