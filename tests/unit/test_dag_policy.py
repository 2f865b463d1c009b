"""Every DAG loads, and follows the project's policy: doc, owner, tags, retries, notifier."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((ROOT / "dags").glob("*.py"))
EXPECTED = {"partnership_returns", "statutory_timeliness", "regional_learning_summary", "bulletin_circulation",
            "yearly_report"}


def test_dagbag_has_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert EXPECTED <= set(dagbag.dag_ids)


def test_every_dag_follows_policy(dagbag):
    from reviews_airflow.notifier import BusinessUnitNotifier

    for dag_id, dag in dagbag.dags.items():
        assert dag.doc_md and len(dag.doc_md.strip()) > 100, f"{dag_id} needs doc_md"
        assert dag.tags and "merseyside" in dag.tags, f"{dag_id} needs tags"
        assert dag.owner == "merseyside-business-unit", dag_id
        for t in dag.tasks:
            assert t.retries >= 1, f"{dag_id}.{t.task_id} has no retries"
            callbacks = t.on_failure_callback if isinstance(t.on_failure_callback, list) else [t.on_failure_callback]
            assert any(isinstance(cb, BusinessUnitNotifier) for cb in callbacks), f"{dag_id}.{t.task_id} has no notifier"


@pytest.mark.parametrize("path", DAG_FILES, ids=[p.name for p in DAG_FILES])
def test_dag_file_parses_without_heavy_imports(path, airflow_db):
    """`python dags/x.py` succeeds and imports neither pandas, GX nor SQLAlchemy engines' work."""
    code = (
        "import runpy, sys; runpy.run_path(sys.argv[1]); "
        "heavy = [m for m in ('pandas', 'great_expectations', 'matplotlib', 'yagmail', 'openpyxl') if m in sys.modules]; "
        "print('HEAVY:' + ','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "HEAVY:\n" in out.stdout or out.stdout.strip().endswith("HEAVY:"), out.stdout


def test_every_scheduled_dag_has_a_deadline_alert_to_the_business_unit(airflow_db, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    from reviews_airflow.dag_defaults import DEADLINES

    monkeypatch.setenv("REVIEWS_DEADLINES", "on")  # as deployed (the tests turn them off for dag.test)
    deployed = DagBag(dag_folder=str(ROOT / "dags"))
    assert deployed.import_errors == {}
    for dag_id, dag in deployed.dags.items():
        alerts = dag.deadline if isinstance(dag.deadline, list) else [dag.deadline]
        assert alerts and alerts[0] is not None, f"{dag_id} has no deadline"
        assert alerts[0].callback.path == "reviews_airflow.deadlines.deadline_missed", dag_id
        assert alerts[0].interval == DEADLINES[dag_id][0], dag_id
