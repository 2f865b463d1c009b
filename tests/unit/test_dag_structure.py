"""Each DAG's shape, as Airflow's best practices show it: the task ids and each task's downstream
task ids, exactly. A change of wiring in dags/ must be made here too, on purpose; a new DAG
fails until its structure is written down here."""
from __future__ import annotations

import pytest

EXPECTED_STRUCTURE: dict[str, dict[str, set[str]]] = {
    "partnership_returns": {
        "list_partnerships": {"ingest"},
        "ingest": {"publish_cases", "all_partnerships_loaded", "check_returns_due"},  # mapped per partnership
        "publish_cases": set(),
        "all_partnerships_loaded": set(),
        "check_returns_due": {"send_feedback"},
        "send_feedback": set(),
    },
    "statutory_timeliness": {
        "judge": {"alert", "journeys"},
        "alert": set(),
        "journeys": set(),
        "remind_actions": set(),
    },
    "regional_learning_summary": {
        "plan_builds": {"build_bulletins"},
        "build_bulletins": {"write_analyst_extract"},
        "write_analyst_extract": set(),
    },
    "bulletin_circulation": {
        "plan_signoff": {"ask_or_send"},
        "ask_or_send": {"sign_off", "remind_signoff", "resume_sends"},
        "sign_off": {"record_signoff"},
        "record_signoff": {"queue"},
        "queue": {"send"},
        "resume_sends": {"send"},
        "remind_signoff": set(),
        "send": set(),
    },
    "retention": {
        "apply_retention": set(),
    },
    "yearly_report": {
        "build_report": {"plan_signoff"},
        "plan_signoff": {"ask_or_send"},
        "ask_or_send": {"sign_off", "remind_signoff", "resume_sends"},
        "sign_off": {"record_signoff"},
        "record_signoff": {"queue"},
        "queue": {"send"},
        "resume_sends": {"send"},
        "remind_signoff": set(),
        "send": set(),
    },
}


def test_every_dag_has_an_expected_structure(dagbag):
    assert dagbag.import_errors == {}
    assert sorted(dagbag.dag_ids) == sorted(EXPECTED_STRUCTURE), (
        "a DAG was added or removed: write its task ids and downstream tasks in EXPECTED_STRUCTURE")


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_STRUCTURE))
def test_dag_structure(dagbag, dag_id):
    dag = dagbag.dags.get(dag_id)
    assert dag is not None, f"{dag_id} is not in the DagBag"
    expected = EXPECTED_STRUCTURE[dag_id]
    assert set(dag.task_dict) == set(expected), f"{dag_id}: task ids"
    got = {task_id: set(task.downstream_task_ids) for task_id, task in dag.task_dict.items()}
    assert got == expected, f"{dag_id}: downstream task ids"
