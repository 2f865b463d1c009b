"""The README's Airflow commands work as written: every `make airflow ARGS="..."` it shows.

They run in the README's order through `make`, with `REVIEWS_VAR` pointing the demo's files
(var/demo.env, the Airflow home and metadata DB, the warehouse) at a temporary folder and HOME at
another, so a command that fell back to `~/airflow` would show. Then the metadata DB must hold
what each asked for: the backfills with their dates, the triggered runs with their conf, and the
`dags test` run with its real start and its task logs where the UI reads them.
"""
from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MAKE_AIRFLOW = re.compile(r"""make airflow ARGS="[^"]*"(?: CONF='[^']*')?""")
PLACEHOLDER = re.compile(r"\.\.\.|\b[A-Z]+(?:_[A-Z]+)*\b")  # ARGS="..." or DAG_ID, DATE: templates, not commands
TESTED_BLOCK = "<!-- tests/integration/test_readme_commands.py runs this block as written -->"


def readme_commands() -> list[str]:
    """Every runnable `make airflow` command in the README, in order (templates left out)."""
    commands = MAKE_AIRFLOW.findall(README.read_text())
    return [c for c in commands if not PLACEHOLDER.search(c.split('ARGS="', 1)[1].split('"', 1)[0])]


def marked_block() -> list[str]:
    """The commands of the fenced block the README marks as run by this test."""
    text = README.read_text()
    assert TESTED_BLOCK in text, "the README's backfill example lost its marker"
    block = text.split(TESTED_BLOCK, 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.strip().splitlines()]


def uk_date(utc: str) -> str:
    """A metadata DB timestamp (naive UTC) as the UK date it falls on."""
    return datetime.fromisoformat(utc).replace(tzinfo=timezone.utc).astimezone(ZoneInfo("Europe/London")).date().isoformat()


def clean_env(var: Path, home: Path) -> dict[str, str]:
    """The shell of someone who just cloned the project: none of the test session's Airflow settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "_AIRFLOW", "REVIEWS_", "MAKE", "MFLAGS"))}
    return {**env, "HOME": str(home), "REVIEWS_VAR": str(var)}


def run(command: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{command}\nexit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory):
    """Run the README's commands once; the metadata DB, the demo folder and the time they began."""
    var, home = tmp_path_factory.mktemp("var"), tmp_path_factory.mktemp("home")
    env = clean_env(var, home)
    began = datetime.now(timezone.utc).replace(tzinfo=None)  # the metadata DB's dates are naive UTC
    # What a running `make up` has done before anyone types a command: its dag-processor put the DAGs in the DB.
    run('make airflow ARGS="dags reserialize"', env)
    commands = readme_commands()
    for command in commands:
        run(command, env)
    assert not (home / "airflow").exists(), "a command ignored var/demo.env and used ~/airflow"
    db = sqlite3.connect(var / "airflow" / "airflow.db")
    yield db, var, began, commands
    db.close()


def test_the_readme_shows_the_backfill_and_dags_test_commands():
    commands = readme_commands()
    block = marked_block()
    assert len(block) == 2 and all(line in commands for line in block)
    assert any("backfill create --dag-id statutory_timeliness" in line for line in block)
    assert any(re.search(r'ARGS="dags test \w+ \d{4}-\d\d-\d\d"', c) for c in commands)
    assert any("CONF='" in c for c in commands), "no example of passing JSON conf"


def test_backfills_are_created_as_the_readme_says(readme_run):
    db, _, _, _ = readme_run
    for line in marked_block():
        args = line.split('ARGS="', 1)[1].rstrip('"').split()
        dag_id = args[args.index("--dag-id") + 1]
        from_date, to_date = args[args.index("--from-date") + 1], args[args.index("--to-date") + 1]
        backfills = db.execute("select id, from_date, to_date, reprocess_behavior from backfill where dag_id = ?",
                               (dag_id,)).fetchall()
        assert len(backfills) == 1, dag_id
        backfill_id, start, end, behaviour = backfills[0]
        assert (start[:10], end[:10], behaviour) == (from_date, to_date, "completed")
        runs = db.execute("select r.logical_date, r.run_type from dag_run r join backfill_dag_run b "
                          "on b.dag_run_id = r.id where b.backfill_id = ?", (backfill_id,)).fetchall()
        assert runs, f"the {dag_id} backfill made no runs"
        uk_days = [uk_date(day) for day, _ in runs]  # the DAGs' dates are UK time (midnight BST is 23:00 UTC)
        assert all(run_type == "backfill" for _, run_type in runs)
        assert from_date <= min(uk_days) and max(uk_days) <= to_date, (dag_id, uk_days)


def test_triggered_runs_carry_their_conf(readme_run):
    db, _, _, commands = readme_run
    triggers = [(m[1], json.loads(m[2]) if m[2] else {}) for c in commands
                if (m := re.search(r"""ARGS="dags trigger (\w+)[^"]*"(?: CONF='([^']*)')?""", c))]
    assert triggers and any(conf for _, conf in triggers)
    for dag_id, conf in triggers:
        confs = [json.loads(c or "{}") for (c,) in db.execute(
            "select conf from dag_run where dag_id = ? and run_type = 'manual' and triggered_by = 'CLI'", (dag_id,))]
        assert conf in confs, (dag_id, conf, confs)


def test_unpause_unpauses_only_the_dag_named(readme_run):
    db, _, _, commands = readme_run
    unpaused = {c.split("dags unpause ", 1)[1].rstrip('"') for c in commands if "dags unpause " in c}
    assert unpaused
    paused = dict(db.execute("select dag_id, is_paused from dag"))
    assert {d for d, p in paused.items() if not p} == unpaused


def test_a_dags_test_run_shows_its_real_duration_and_task_logs(readme_run):
    db, var, began, commands = readme_run
    command = next(c for c in commands if 'ARGS="dags test ' in c)
    dag_id, day = command.split('ARGS="dags test ', 1)[1].rstrip('"').split()
    run_id, logical, start, end = db.execute(
        "select run_id, logical_date, start_date, end_date from dag_run where dag_id = ? and triggered_by = 'TEST'",
        (dag_id,)).fetchone()
    assert logical[:10] == day
    start, end = datetime.fromisoformat(start), datetime.fromisoformat(end)
    assert began - timedelta(seconds=5) <= start <= end <= start + timedelta(minutes=5)  # not "lasting 2 years"
    tasks = db.execute("select task_id, map_index, try_number, start_date from task_instance where run_id = ?",
                       (run_id,)).fetchall()
    assert tasks and all(started for *_, started in tasks)
    run_logs = var / "airflow" / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
    for task_id, map_index, try_number, _ in tasks:
        folder = run_logs / f"task_id={task_id}" / (f"map_index={map_index}" if map_index >= 0 else "")
        lines = [json.loads(line) for line in (folder / f"attempt={try_number}.log").read_text().splitlines()
                 if line.startswith("{")]
        assert any(f"task_id={task_id}" in line["event"] for line in lines)
        assert all({"timestamp", "level", "event"} <= line.keys() for line in lines)
