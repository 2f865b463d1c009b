"""Make an `airflow dags test` run look in the UI like the run it was (`make demo`, then `make up`).

`dags test` records the run as starting at its logical date (a run for 31 October, made on
7 December, "lasts 37 days") and prints every task's log to its own output instead of the
Airflow log folder (the task logs in the UI are empty). `recording` writes each finished task's
part of that output where the api-server reads task logs ($AIRFLOW_HOME/logs, the run's log
filename template) while the command runs, so a run waiting for a sign-off already shows its
earlier tasks' logs, and when it ends sets the run's start to its first task's start (not
before: `dags test` writes its own start back while it runs).
"""
from __future__ import annotations

import json
import re
import threading
from collections import defaultdict
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

# The markers dag.test() logs around each task it runs (airflow/sdk/definitions/dag.py, _run_task).
TASK_START = re.compile(r"\[DAG TEST\] starting task_id=(\S+) map_index=(-?\d+)")
TASK_END = re.compile(r"\[DAG TEST\] end task task_id=(\S+) map_index=(-?\d+)")
# A console log line: "2026-12-07T06:33:18.913159Z [info     ] event ..."
CONSOLE_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\S+Z) \[(\w+)\s*\] (.*)$")


def task_sections(output: str) -> dict[tuple[str, int], list[list[str]]]:
    """Each task's lines in a `dags test` output, one list per time it ran, oldest first."""
    sections: dict[tuple[str, int], list[list[str]]] = defaultdict(list)
    current: list[str] | None = None
    for line in output.splitlines():
        if started := TASK_START.search(line):
            current = [line]
            sections[(started[1], int(started[2]))].append(current)
        elif current is not None:
            current.append(line)
            if TASK_END.search(line):
                current = None
    return sections


def as_log_line(line: str) -> str:
    """A console line as the JSON line a worker writes (level and time shown in the UI); else as is."""
    if match := CONSOLE_LINE.match(line):
        return json.dumps({"timestamp": match[1], "level": match[2], "event": match[3]})
    return line


def record_dags_test(dag_id: str, output_file: Path, since: datetime, fix_start: bool = True) -> list[Path]:
    """Write the task logs of the `dags test` run of `dag_id` made after `since`, fix its start; the files."""
    from airflow.configuration import conf
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.log.file_task_handler import FileTaskHandler
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunTriggeredByType
    from sqlalchemy import select

    sections = task_sections(output_file.read_text(errors="replace"))
    handler = FileTaskHandler(base_log_folder=conf.get("logging", "base_log_folder"))
    written: list[Path] = []
    with create_session() as session:
        run = session.scalars(
            select(DagRun).where(DagRun.dag_id == dag_id, DagRun.triggered_by == DagRunTriggeredByType.TEST,
                                 DagRun.run_after >= since)
            .order_by(DagRun.run_after.desc()).limit(1)
        ).first()
        if run is None:
            return written
        tis = session.scalars(select(TaskInstance).where(
            TaskInstance.dag_id == dag_id, TaskInstance.run_id == run.run_id)).all()
        starts = [ti.start_date for ti in tis if ti.start_date]
        if fix_start:
            run.start_date = min(starts) if starts else run.run_after
        for ti in tis:
            runs = sections.get((ti.task_id, ti.map_index), [])
            # the last time it ran is its current try; earlier ones are the tries before
            for attempt, lines in zip(range(ti.try_number - len(runs) + 1, ti.try_number + 1), runs):
                if attempt < 1:
                    continue
                path = Path(handler.local_base) / handler._render_filename(ti, attempt, session=session)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("".join(as_log_line(line) + "\n" for line in lines))
                written.append(path)
    return written


@contextmanager
def recording(dag_id: str, output_file: Path, every_seconds: float = 5):
    """Around an `airflow dags test dag_id` writing to `output_file`: record its run as it goes and at the end."""
    import airflow.settings  # noqa: F401  (configured here, in the main thread, before the recorder's thread uses it)

    since, stop = datetime.now(timezone.utc), threading.Event()

    def keep_recording() -> None:
        while not stop.wait(every_seconds):
            try:
                record_dags_test(dag_id, output_file, since, fix_start=False)
            except Exception:  # noqa: BLE001  (the metadata DB busy: the next round or the last one catches up)
                pass

    thread = threading.Thread(target=keep_recording, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        record_dags_test(dag_id, output_file, since)
