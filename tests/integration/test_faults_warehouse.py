"""The warehouse goes away mid-load: the PostgreSQL backend serving an ingest task is killed
(pg_terminate_backend, from a second connection) while a file is half loaded, through
`dag.test()`. The file's transaction dies with the connection, the task fails, Airflow retries it,
the retry loads what is left, and the final tables equal those of a clean run (ids and
timestamps aside): nothing lost, nothing loaded twice.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from reviews.core import warehouse as wh
from reviews_dev.synthetic import generate_returns
from tests.conftest import POSTGRES_ADMIN_URL, _postgres_database
from tests.integration.returns_support import prepare, write_config

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

AS_OF = date(2025, 10, 31)
# Surrogate keys and audit times differ between any two runs; paths differ by data dir (normalised).
VOLATILE = {"file_id", "source_file_id", "resolved_by_file_id", "quality_report_id", "bulletin_id", "send_id",
            "history_id", "quarantine_id", "alert_id", "redaction_id", "retention_id", "received_at", "loaded_at",
            "quarantined_at", "resolved_at", "built_at", "queued_at", "sent_at", "done_at", "created_at", "found_at",
            "content_hash", "message_ref", "flag_id", "flagged_at", "superseded_by_file_id"}


class BackendKiller:
    """Kills the warehouse connection from another session in the `nth` load of the run, just
    after ingest has written the run's `return_files` rows and read their ids back: the load's
    transaction is open, the file records are written and the case, history and quarantine rows
    are about to follow (COPY on PostgreSQL). Once."""

    def __init__(self, database: str, nth: int):
        self.database, self.nth, self.seen, self.killed_pid = database, nth, 0, None

    def __call__(self, conn, cursor, statement, parameters, context, executemany):
        if self.killed_pid is not None or conn.engine.url.database != self.database:
            return
        if not statement.lstrip().upper().startswith("SELECT RETURN_FILES.SHA256, RETURN_FILES.FILE_ID"):
            return
        self.seen += 1
        if self.seen < self.nth:
            return
        pid = conn.connection.dbapi_connection.info.backend_pid  # psycopg 3 (make_engine)
        admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as other:
                assert other.execute(sa.text("select pg_terminate_backend(:p)"), {"p": pid}).scalar() is True
        finally:
            admin.dispose()
        self.killed_pid = pid


def _tables(url: str, data_dir: Path) -> dict[str, list[tuple]]:
    """Every table, rows as sorted tuples of text, without the columns that differ between runs."""
    engine = wh.make_engine(url)
    out = {}
    try:
        with engine.connect() as conn:
            for table in wh.metadata.sorted_tables:
                cols = [c for c in table.columns if c.name not in VOLATILE]
                rows = conn.execute(sa.select(*cols)).all()
                out[table.name] = sorted(
                    tuple("" if v is None else str(v).replace(str(data_dir), "<data>") for v in row) for row in rows)
    finally:
        engine.dispose()
    return out


def _run(dagbag, monkeypatch, tmp_path: Path, name: str, url: str):
    """partnership_returns over the same returns, with its own warehouse and data dir."""
    from reviews.core.config import load_config

    root = tmp_path / name
    root.mkdir()
    config = write_config(root, {"knowsley": {}, "sefton": {}})
    env = prepare(monkeypatch, root, url, config)
    generate_returns(env.inbox, load_config(config), start=date(2025, 1, 1), end=date(2025, 9, 30), seed=9,
                     inflate=2, partnerships=["knowsley", "sefton"])
    dr = dagbag.get_dag("partnership_returns").test(logical_date=datetime(AS_OF.year, AS_OF.month, AS_OF.day,
                                                                          tzinfo=timezone.utc))
    return env, dr, {(ti.task_id, ti.map_index): ti for ti in dr.get_task_instances()}


def test_killed_backend_mid_load_retries_and_ends_like_a_clean_run(dagbag, tmp_path, monkeypatch, request):
    stem = f"reviews_test_{__import__('os').getpid()}_fault"
    clean_url, faulty_url = _postgres_database(stem + "_clean"), _postgres_database(stem + "_killed")

    clean_env, dr, _tis = _run(dagbag, monkeypatch, tmp_path, "clean", clean_url)
    assert dr.state == "success"
    clean = _tables(clean_url, clean_env.data_dir)
    assert len(clean["notifications"]) > 10 and len(clean["record_history"]) > 20

    killer = BackendKiller(faulty_url.rsplit("/", 1)[1], nth=2)
    event.listen(Engine, "after_cursor_execute", killer)
    try:
        faulty_env, dr, tis = _run(dagbag, monkeypatch, tmp_path, "killed", faulty_url)
    finally:
        event.remove(Engine, "after_cursor_execute", killer)
    assert killer.killed_pid is not None  # the fault really happened, mid-load
    assert dr.state == "success", {k: ti.state for k, ti in tis.items()}
    retried = [ti for (task, _i), ti in tis.items() if task == "ingest" and ti.try_number > 1]
    assert len(retried) == 1 and retried[0].state == "success"  # only the partnership that met it, once

    faulty = _tables(faulty_url, faulty_env.data_dir)
    assert faulty.keys() == clean.keys()
    for name in clean:
        assert faulty[name] == clean[name], name
    # Every file once; rows read = loaded + quarantined.
    files = faulty_env.rows("select sha256, rows_read, rows_loaded, rows_quarantined from return_files")
    assert len({f["sha256"] for f in files}) == len(files)
    assert all(f["rows_read"] == f["rows_loaded"] + f["rows_quarantined"] for f in files)
