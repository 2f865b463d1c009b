"""`make bench` keeps working: the national benchmark runs end to end at a tiny scale.

No timing is asserted (a benchmark is not a test): only that every part runs on both databases,
that every target is printed with PASS or FAIL, that the rerun skips every file, and that the
naive baseline and the pipeline build identical warehouses.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from reviews_dev.bench import discover, main

@pytest.mark.postgres
@pytest.mark.slow  # about 2 minutes
def test_the_national_benchmark_runs_small_on_both_databases(capsys, tmp_path):
    assert "national" in discover()
    main(["--only", "national", "--quick", "--national-partnerships", "2", "--national-skip", "dags",
          "--national-data", str(tmp_path / "returns")])
    out = capsys.readouterr().out
    for label in ("PostgreSQL", "SQLite"):
        assert re.search(rf"{label}: stage .*\n(.*\n){{3}}    whole run ", out), out
        assert re.search(rf"{label}: peak memory under 2 GiB .* (PASS|FAIL)", out)
        assert re.search(rf"{label}: GX validation at least 50,000 rows/s .* (PASS|FAIL)", out)
    assert re.search(r"PostgreSQL: whole run under 5 min .* (PASS|FAIL)", out)
    assert out.count("rerun with no new files: ") == 2 and ", 0 new" in out
    skipped = [int(n.replace(",", "")) for n in re.findall(r"rerun with no new files: ([\d,]+) files skipped", out)]
    files = int(re.search(r"data: .*?: ([\d,]+) CSV files", out).group(1).replace(",", ""))
    assert skipped == [files, files] and files > 0
    assert "identical tables (every row of every table): yes" in out
    assert re.search(r"^bench summary: \d+/\d+ targets passed \(national \d+/\d+\)", out, re.M)
    # The returns kept with --national-data are reused, not written again, by a second run.
    main(["--only", "national", "--quick", "--national-partnerships", "2", "--national-skip", "dags",
          "--national-skip", "sqlite", "--national-skip", "baseline", "--national-skip", "rerun",
          "--national-data", str(tmp_path / "returns")])
    assert "reused from" in capsys.readouterr().out


@pytest.mark.postgres  # starts a private PostgreSQL server
def test_the_benchmark_measures_postgresql_with_production_settings(tmp_path, monkeypatch):
    """The national benchmark's PostgreSQL runs with the warehouse-db settings of docker-compose.yml
    (read from that file), in a private server that is gone afterwards; the shared server is not touched."""
    import sqlalchemy as sa

    from reviews_dev.bench.postgres_server import benchmark_server, compose_settings

    root = Path(__file__).resolve().parents[2]
    settings = compose_settings(root / "docker-compose.yml")
    assert settings["max_wal_size"] == "8GB" and settings["shared_buffers"] == "2GB"
    monkeypatch.delenv("REVIEWS_BENCH_POSTGRES", raising=False)
    with benchmark_server(root / "docker-compose.yml") as server:
        assert ":5432/" not in server.admin_url, server.described
        engine = sa.create_engine(server.admin_url)
        with engine.connect() as conn:
            shown = {name: conn.execute(sa.text(f"show {name}")).scalar() for name in settings}
        engine.dispose()
        assert shown == settings and "private PostgreSQL" in server.described
    with pytest.raises(sa.exc.OperationalError):
        sa.create_engine(server.admin_url, connect_args={"connect_timeout": 2}).connect()
    # A server named by the environment is used as it is: nothing is started.
    monkeypatch.setenv("REVIEWS_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    with benchmark_server(root / "docker-compose.yml") as named:
        assert named.admin_url.endswith(":5432/postgres") and named.settings == {}


def test_compose_settings_reads_only_name_value_pairs(tmp_path):
    from reviews_dev.bench.postgres_server import compose_settings

    compose = tmp_path / "compose.yml"
    compose.write_text('services:\n  warehouse-db:\n    command: ["postgres", "-c", "work_mem = 64MB", "-p", "5433"]\n')
    assert compose_settings(compose) == {"work_mem": "64MB"}
    compose.write_text('services:\n  warehouse-db:\n    command: ["postgres", "-c", "work_mem"]\n')
    with pytest.raises(ValueError, match="not name=value"):
        compose_settings(compose)
    compose.write_text("services:\n  warehouse-db:\n    image: postgres:16\n")
    assert compose_settings(compose) == {}
