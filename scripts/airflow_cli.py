"""`make airflow ARGS="..."`: the Airflow CLI on this project, run after the Makefile sources var/demo.env.

Runs `airflow ARGS` as is, except `dags test` and `tasks test`: those run without the DAGs'
Deadline Alerts (`REVIEWS_DEADLINES=off`; see `reviews_airflow.dag_defaults.deadline`), and a
`dags test` run is then recorded as the UI should show it: its real start and its task logs
(scripts/dags_test_logs.py).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from dags_test_logs import recording

AIRFLOW = str(Path(sys.executable).parent / "airflow")
OPTIONS_WITH_VALUES = {"-B", "--bundle-name", "-c", "--conf", "-f", "--dagfile-path", "--mark-success-pattern",
                       "--save-dagrun"}  # of `airflow dags test`


def positional(args: list[str]) -> list[str]:
    """The positional arguments of `airflow dags test` (DAG id, logical date), options left out."""
    found, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in OPTIONS_WITH_VALUES:
            skip = True
        elif not arg.startswith("-"):
            found.append(arg)
    return found


def dags_test(args: list[str]) -> int:
    """Run `airflow dags test ...`, echoing its output, then record its run for the UI."""
    dag_id = positional(args[2:])[0]
    with tempfile.NamedTemporaryFile("w", suffix=".log") as output, recording(dag_id, Path(output.name)):
        proc = subprocess.Popen([AIRFLOW, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            sys.stdout.write(line)
            output.write(line)
            output.flush()
        return proc.wait()


def main(args: list[str]) -> int:
    if args[1:2] == ["test"]:
        os.environ["REVIEWS_DEADLINES"] = "off"
    if args[:2] == ["dags", "test"]:
        return dags_test(args)
    os.execv(AIRFLOW, [AIRFLOW, *args])  # the CLI itself, with the terminal and signals


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
