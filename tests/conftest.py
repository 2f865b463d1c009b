"""Test set-up. Airflow reads its settings at import time, so they are set here, first."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="reviews-test-airflow-"))
os.environ["AIRFLOW_HOME"] = str(AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["GX_ANALYTICS_ENABLED"] = "false"
os.environ["REVIEWS_RETRY_DELAY_SECONDS"] = "0"
# bulletin_circulation.remind_signoff polls each second under dag.test() (under a real scheduler:
# tests/integration/deployment.py, SCHEDULER_POKE_SECONDS)
os.environ["REVIEWS_SIGNOFF_POKE_SECONDS"] = "1"
os.environ["REVIEWS_DEADLINES"] = "off"  # dag.test() cannot run DAGs with deadlines (dag_defaults.deadline)
for name in list(os.environ):  # nothing from the developer's own shell leaks into a test
    if name.startswith(("AIRFLOW_CONN_REVIEWS", "AIRFLOW_VAR_REVIEWS")) or name == "REVIEWS_PSEUDONYMISATION_KEY":
        del os.environ[name]

import pytest  # noqa: E402

from tests.smtp_fixtures import *  # noqa: E402,F401,F403  (smtp_server fixture)

POSTGRES_ADMIN_URL = os.environ.get("REVIEWS_TEST_POSTGRES", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")

# `make test-fast` runs tests/unit without these marks (pyproject.toml lists them); `make test` runs all.
# Marked here, so a new test needs no mark of its own: tests/integration (whole DAG runs) slow,
# tests/browser browser, and a test that asks for the PostgreSQL server through a fixture postgres.
# One that reaches the server otherwise (request.getfixturevalue, _postgres_database) must carry
# `postgres` itself, or _postgres_database fails it and says so.
_DIRECTORY_MARKS = {ROOT / "tests" / "integration": pytest.mark.slow, ROOT / "tests" / "browser": pytest.mark.browser}
_POSTGRES_FIXTURES = {"postgres_url"}
_running: list = []  # the test being set up, run or torn down


def _uses_postgres(item) -> bool:
    params = getattr(getattr(item, "callspec", None), "params", {})
    return (bool(_POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())))
            or params.get("two_engines") == "postgres"
            or any(isinstance(v, str) and v in _POSTGRES_FIXTURES for v in params.values()))


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = Path(item.path)
        for folder, mark in _DIRECTORY_MARKS.items():
            if path.is_relative_to(folder) and item.get_closest_marker(mark.name) is None:
                item.add_marker(mark)
        if _uses_postgres(item) and item.get_closest_marker("postgres") is None:
            item.add_marker(pytest.mark.postgres)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _running.append(item)
    try:
        return (yield)
    finally:
        _running.pop()


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated Airflow metadata database (SQLite under a temporary AIRFLOW_HOME)."""
    subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    return AIRFLOW_HOME


@pytest.fixture(scope="session")
def dagbag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


@pytest.fixture
def own_dagbag(airflow_db):
    """A DagBag of the test's own, for a test that passes a run conf (e.g. send_alerts false):
    dag.test() runs the tasks in this process, and a run's conf lands in the task's params object,
    which the session `dagbag` would carry into every later test's runs of that DAG."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def _postgres_database(name: str) -> str:
    """Create (or recreate) a database on the local PostgreSQL server; return its URL."""
    import sqlalchemy as sa

    if _running and _running[-1].get_closest_marker("postgres") is None:
        pytest.fail(f"{_running[-1].nodeid} uses the PostgreSQL server: mark it (or its parameter) "
                    "pytest.mark.postgres, so that `make test-fast` leaves it out")
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:  # pragma: no cover - CI starts PostgreSQL
        pytest.fail(f"the local PostgreSQL server is needed for this test: {exc}")
    finally:
        admin.dispose()
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def postgres_url(request):
    """A fresh database on the local server for the test, dropped after it (the shared server
    kept every test's database before)."""
    name = f"reviews_test_{os.getpid()}_{request.node.name[:20].lower()}".replace("[", "_").replace("]", "_").replace("-", "_")
    yield _postgres_database(name)
    _drop_postgres_database(name)


def _drop_postgres_database(name: str) -> None:
    import sqlalchemy as sa

    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def two_engines(request, tmp_path):
    """Two empty warehouses (schema made) on the same kind of database, for a fast path and its
    reference; PostgreSQL ones are dropped afterwards."""
    from reviews.core import warehouse as wh

    names = [f"reviews_test_{os.getpid()}_pair_{x}" for x in ("a", "b")]
    if request.param == "sqlite":
        urls = [f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"]
    else:
        urls = [_postgres_database(name) for name in names]
    engines = [wh.make_engine(u) for u in urls]
    for e in engines:
        wh.ensure_schema(e)
    yield engines
    for e in engines:
        e.dispose()
    if request.param == "postgres":
        for name in names:
            _drop_postgres_database(name)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'warehouse.db'}"


@pytest.fixture
def cfg():
    from reviews.core.config import load_config

    return load_config()
