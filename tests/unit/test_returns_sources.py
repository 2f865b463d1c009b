"""Sources on their own: SQL pulls (a SQLite file and PostgreSQL), SFTP fetches (a real server),
the drop folder, and the config that chooses between them."""
from __future__ import annotations

import hashlib
from datetime import date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from reviews.core.config import ConfigError, load_config
from reviews.returns.sources import SourceError, fetch_sftp, gather, snapshot_sql
from tests.integration.returns_support import write_config
from tests.sftp_server import PASSWORD, USER, sftp_server  # noqa: F401  (fixture)

AS_OF = date(2024, 7, 15)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _case_system(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("create table cases (ref varchar(20), child varchar(30), aware date, notified timestamp, "
                             "age numeric, looked_after boolean)"))
        conn.execute(sa.text("insert into cases values (:r, :c, :a, :n, :g, :l)"), [
            {"r": "B-2", "c": "CHILD-B", "a": date(2024, 5, 2), "n": datetime(2024, 5, 9, 14, 30), "g": 7.0, "l": True},
            {"r": "A-1", "c": "CHILD-A", "a": date(2024, 5, 1), "n": None, "g": 12, "l": False},
            {"r": "C-3", "c": "CHILD-C", "a": date(2024, 8, 1), "n": None, "g": None, "l": None},
        ])
    engine.dispose()


QUERIES = {"notifications": "select ref as notification_id, child as child_ref, aware as aware_date, "
                            "notified as notified_date, age as age_years, looked_after from cases where aware <= :as_of"}


def _check_snapshot(url: str, tmp_path: Path, yes: str, no: str) -> None:
    """Dates as ISO, a time kept when there is one, whole numbers without '.0' (PostgreSQL's
    numeric is a Decimal), booleans as Y/N (SQLite has none: 1/0 come back as numbers)."""
    _case_system(url)
    got = snapshot_sql(url, QUERIES, tmp_path / "sql", AS_OF)
    path = tmp_path / "sql" / "notifications_2024-07-15.csv"
    assert got.fetched == [path.name] and got.kind == "sql"
    assert path.read_text(encoding="utf-8").splitlines() == [
        "notification_id,child_ref,aware_date,notified_date,age_years,looked_after",
        f"A-1,CHILD-A,2024-05-01,,12,{no}",
        f"B-2,CHILD-B,2024-05-02,2024-05-09 14:30:00,7,{yes}",
    ]
    first = _sha(path)
    snapshot_sql(url, QUERIES, tmp_path / "sql", AS_OF)  # the same data is the same file
    assert _sha(path) == first


def test_sql_snapshot_from_a_sqlite_file(tmp_path):
    _check_snapshot(f"sqlite:///{tmp_path / 'cases.db'}", tmp_path, "1", "0")


@pytest.mark.postgres
def test_sql_snapshot_from_postgres(tmp_path, postgres_url):
    _check_snapshot(postgres_url, tmp_path, "Y", "N")
    engine = sa.create_engine(postgres_url)  # the pull wrote nothing and left nothing open
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from cases")).scalar() == 3
    engine.dispose()


def test_sql_errors_say_what_failed_but_not_the_data(tmp_path):
    url = f"sqlite:///{tmp_path / 'cases.db'}"
    _case_system(url)
    with pytest.raises(SourceError, match=r"^the notifications query failed \(OperationalError\)$"):
        snapshot_sql(url, {"notifications": "select nonsense from cases"}, tmp_path / "sql", AS_OF)
    with pytest.raises(SourceError, match="cannot be read"):
        snapshot_sql("postgresql+psycopg2://nobody@127.0.0.1:1/none", QUERIES, tmp_path / "sql", AS_OF)


def test_sftp_fetch_from_a_real_server(sftp_server, tmp_path):  # noqa: F811
    import paramiko

    remote = sftp_server.root / "out"
    remote.mkdir()
    (remote / "notifications_2024-07-10.csv").write_text("a,b\n1,2\n")
    (remote / "learning_2024-07-10.csv").write_text("c\n3\n")
    (remote / ".partial.csv").write_text("x")
    (remote / "old").mkdir()
    transport = paramiko.Transport((sftp_server.host, sftp_server.port))
    transport.connect(username=USER, password=PASSWORD)
    client = paramiko.SFTPClient.from_transport(transport)
    try:
        local = tmp_path / "staging"
        got = fetch_sftp(client, "/out", local)
        assert sorted(got.fetched) == ["learning_2024-07-10.csv", "notifications_2024-07-10.csv"]
        assert sorted(p.name for p in local.iterdir()) == got.fetched  # no partial or hidden files left
        assert (local / "learning_2024-07-10.csv").read_text() == "c\n3\n"
        assert fetch_sftp(client, "/out", local).fetched == []  # already here: not fetched again
        (remote / "learning_2024-07-10.csv").write_text("c\n3\n4\n")  # changed on the server
        assert fetch_sftp(client, "/out", local).fetched == ["learning_2024-07-10.csv"]
        with pytest.raises(SourceError, match="cannot be listed"):
            fetch_sftp(client, "/missing", local)
    finally:
        client.close()
        transport.close()


def test_gather_folder_and_missing_clients(tmp_path):
    cfg = load_config()
    got = gather(cfg.partnership("knowsley"), tmp_path / "inbox", tmp_path / "staging", AS_OF)
    assert got.folder == tmp_path / "inbox" / "knowsley" and got.kind == "folder"
    path = write_config(tmp_path, {
        "knowsley": {"source": {"kind": "sftp", "conn_id": "k", "path": "/out"}},
        "sefton": {"source": {"kind": "sql", "conn_id": "s", "queries": {"notifications": "select 1"}}},
    })
    cfg = load_config(path)
    with pytest.raises(SourceError, match="SFTP client"):
        gather(cfg.partnership("knowsley"), tmp_path, tmp_path, AS_OF)
    with pytest.raises(SourceError, match="database URL"):
        gather(cfg.partnership("sefton"), tmp_path, tmp_path, AS_OF)


@pytest.mark.parametrize("source,message", [
    ({"kind": "ftp"}, "partnerships.knowsley.source.kind: must be one of folder, sftp, sql"),
    ({"kind": "sftp", "path": "/out"}, "needs conn_id"),
    ({"kind": "sftp", "conn_id": "k"}, "needs path"),
    ({"kind": "sql", "conn_id": "k"}, "needs queries"),
    ({"kind": "sql", "conn_id": "k", "queries": {"reviews": "select 1"}}, "unknown dataset 'reviews'"),
    ({"kind": "sql", "conn_id": "k", "queries": {"learning": " "}}, "the query is empty"),
])
def test_bad_sources_are_refused_naming_the_key(tmp_path, source, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write_config(tmp_path, {"knowsley": {"source": source}}))


def test_returns_and_authors_config(tmp_path):
    cfg = load_config()
    assert (cfg.returns.frequency, cfg.returns.due_days_after_period_end) == ("quarterly", 10)
    assert "Independent reviewer A (regional list)" in cfg.approved_authors
    with pytest.raises(ConfigError, match="frequency"):
        load_config(write_config(tmp_path, {"knowsley": {}}, returns={"frequency": "weekly", "expected_from": "2024-03-31"}))
    with pytest.raises(ConfigError, match="expected_from"):
        load_config(write_config(tmp_path, {"knowsley": {}}, returns={"frequency": "monthly"}))
