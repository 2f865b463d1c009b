"""`make up`: say which DAGs are paused, why, and what unpausing each would do, before Airflow starts.

Airflow creates every DAG paused (`[core] dags_are_paused_at_creation`), so under `make up`
nothing runs by itself until the business unit unpauses a DAG; a DAG unpaused at once runs its
latest interval (`catchup=False`), which can email. The DAGs come from the dags folder, their
state from the metadata DB, and when each would first run from its own timetable.
"""
from __future__ import annotations

import os
import warnings
from datetime import datetime, timezone

# What a run does that people notice, by DAG; a DAG not listed shows its schedule only.
EFFECTS = {
    "partnership_returns": "loads new returns from the inbox; emails each return's data quality report "
                           "and the business unit late or missing returns",
    "statutory_timeliness": "judges every case; emails the business unit the cases that became at risk "
                            "or overdue (a timeliness alert)",
    "regional_learning_summary": "builds a period's bulletins once its returns are in (or waited for); sends nothing",
    "bulletin_circulation": "asks you to sign off a period's bulletins (Required actions), then sends what you approve",
    "retention": "anonymises or deletes cases past the retention period, and older raw files (legal holds kept)",
}


def first_run(dag, now: datetime) -> str:
    """When the scheduler would start this DAG's first scheduled run if it were unpaused now."""
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import TimeRestriction

    timetable = coerce_to_core_timetable(dag.timetable)
    restriction = TimeRestriction(earliest=dag.start_date, latest=dag.end_date, catchup=dag.catchup)
    info = timetable.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    assets = [key.name for key, _ in timetable.asset_condition.iter_assets()]
    also = f", and again whenever {' or '.join(assets)} is updated" if assets else ""
    if info is None:
        return "has no scheduled run" + also
    when = f"{info.run_after.in_timezone('Europe/London'):%d %b %Y %H:%M} UK time"
    if info.run_after <= now:
        return f"runs at once (its latest interval, due {when}){also}"
    return f"first runs {when}{also}"


def main() -> None:
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "ERROR")  # no parsing chatter before the list
    warnings.simplefilter("ignore")
    from airflow.configuration import conf
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    dags = DagBag(dag_folder=conf.get("core", "dags_folder")).dags
    with create_session() as session:
        paused = {m.dag_id: m.is_paused for m in session.query(DagModel).filter(DagModel.dag_id.in_(dags))}
    at_creation = conf.getboolean("core", "dags_are_paused_at_creation")
    now = datetime.now(timezone.utc)
    print("DAGs (Airflow creates them paused: [core] dags_are_paused_at_creation"
          f" = {at_creation}; nothing runs by itself until you unpause it):")
    for dag_id in sorted(dags):
        dag = dags[dag_id]
        state = "paused" if paused.get(dag_id, at_creation) else "ACTIVE"
        if dag_id not in paused:
            state += " (new)" if at_creation else ""
        effect = EFFECTS.get(dag_id, f"runs on its schedule ({dag.timetable.summary})")
        print(f"  {dag_id} ({state}): unpaused, it {first_run(dag, now)}.\n      A run {effect}.")
    outbox = os.path.join(os.environ.get("AIRFLOW_VAR_REVIEWS_DATA_DIR", "var"), "outbox")
    print(f"Emails go to {outbox} as .eml files unless the reviews_smtp connection is set.")
    print('Unpause one: make airflow ARGS="dags unpause DAG_ID" (pause again: dags pause);'
          " or the toggle in the UI.")


if __name__ == "__main__":
    main()
