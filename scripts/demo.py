"""`make demo`: one regional cycle on the embedded default, run through Airflow itself.

Resets the demo's own data under var/ (inbox, warehouse, outputs), generates synthetic returns
for the five partnerships, runs the four DAGs with `airflow dags test`, and prints what they did
and where the results are. `--prepare-only` sets up var/ and var/demo.env for `make up`.
"""
from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import time
from contextlib import nullcontext
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VAR = Path(os.environ.get("REVIEWS_VAR") or ROOT / "var")  # `make ... REVIEWS_VAR=/elsewhere` (the README test)
BIN = Path(sys.executable).parent
DEMO_AS_OF = "2026-10-31"  # the returns and timeliness runs
DEMO_SUMMARY_RUN = "2026-10-01"  # the run on 1 October builds July to September 2026 (every return is in by 10 October)
SYNTHETIC_START, SYNTHETIC_END = date(2023, 10, 1), date(2026, 10, 31)  # last return: Q3, dated 10 October
INFLATE = 10  # realistic volumes are single digits a year per partnership (docs/domain.md)


def demo_env() -> dict[str, str]:
    key_file = VAR / "secrets" / "pseudonymisation.key"
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(32))
        key_file.chmod(0o600)
    env = {
        "AIRFLOW_HOME": str(VAR / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW_CONN_REVIEWS_WAREHOUSE": f"sqlite:///{VAR / 'warehouse.db'}",
        "AIRFLOW_VAR_REVIEWS_INBOX": str(VAR / "inbox"),
        "AIRFLOW_VAR_REVIEWS_DATA_DIR": str(VAR),
        "AIRFLOW_VAR_REVIEWS_CONFIG": str(ROOT / "config" / "reviews.yaml"),
        "REVIEWS_PSEUDONYMISATION_KEY": key_file.read_text().strip(),
        "GX_ANALYTICS_ENABLED": "false",
        "REVIEWS_RETRY_DELAY_SECONDS": "5",
    }
    with (VAR / "demo.env").open("w") as fh:  # for `make up` (kept out of git: var/ is ignored)
        fh.write("# written by scripts/demo.py; source it before running airflow on the demo\n")
        for k, v in env.items():
            fh.write(f"{k}='{v}'\n")
    (VAR / "demo.env").chmod(0o600)  # it holds the demo's pseudonymisation key
    return env


def reset_demo_data() -> None:
    for sub in ("inbox", "raw", "outbox", "bulletins", "reports", "logs"):
        shutil.rmtree(VAR / sub, ignore_errors=True)
    for name in ("warehouse.db", "warehouse.db-wal", "warehouse.db-shm"):
        (VAR / name).unlink(missing_ok=True)


def run(cmd: list[str], env: dict, log: Path) -> float:
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    # A `dags test` run shows in the UI (`make up`) with its real start and its task logs.
    from dags_test_logs import recording

    with log.open("w") as fh, recording(cmd[3], log) if cmd[1:3] == ["dags", "test"] else nullcontext():
        proc = subprocess.run(cmd, env={**os.environ, **env}, stdout=fh, stderr=subprocess.STDOUT)
    took = time.monotonic() - started
    if proc.returncode != 0:
        print(f"  FAILED: {' '.join(cmd[1:])} (exit {proc.returncode}); log: {log}")
        print("  " + "\n  ".join(log.read_text().splitlines()[-15:]))
        sys.exit(proc.returncode)
    return took


def signing_off():
    """bulletin_circulation waits for the business unit's sign-off (Required actions in the UI).
    In the demo, you are the business unit: the request is printed and approved for you, through
    the same Airflow code the REST API runs (reviews_dev.signoff)."""
    from reviews_dev.signoff import APPROVE, Answerer

    def decide(subject: str, body: str) -> tuple[str, str]:
        print(f"  sign-off requested: {subject}")
        for line in body.splitlines():
            if line.strip():
                print(f"    | {line}")
        print("  approved by you, the demo's business unit (in production: a person, under Required actions)")
        return APPROVE, ""

    return Answerer(decide, user="demo (make demo)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prepare-only", action="store_true")
    args = parser.parse_args()
    VAR.mkdir(exist_ok=True)
    env = demo_env()
    os.environ.update(env)
    airflow = str(BIN / "airflow")
    logs = VAR / "logs" / "demo"
    print("Merseyside practice reviews: demo cycle on the embedded default (SQLite, outbox folder)")
    t0 = time.monotonic()
    run([airflow, "db", "migrate"], env, VAR / "airflow-db-migrate.log")
    if args.prepare_only:
        print(f"prepared {VAR}; settings in {VAR / 'demo.env'}")
        return
    reset_demo_data()

    from reviews.core.config import load_config
    from reviews_dev.synthetic import generate_returns

    report = generate_returns(VAR / "inbox", load_config(), start=SYNTHETIC_START, end=SYNTHETIC_END,
                              seed=2024, inflate=INFLATE)
    print(f"  generated synthetic returns in {VAR / 'inbox'} (x{INFLATE} realistic volume)")
    for line in report.describe().splitlines():
        print("    " + line)
    steps = [
        ("partnership_returns", DEMO_AS_OF),
        ("statutory_timeliness", DEMO_AS_OF),
        ("regional_learning_summary", DEMO_SUMMARY_RUN),
        ("bulletin_circulation", DEMO_AS_OF),
    ]
    test_env = {**env, "REVIEWS_DEADLINES": "off"}  # `dags test` cannot run deadlines (see dag_defaults.deadline)
    for dag_id, day in steps:
        with signing_off() if dag_id == "bulletin_circulation" else nullcontext():
            took = run([airflow, "dags", "test", dag_id, day], test_env, logs / f"{dag_id}.log")
        print(f"  airflow dags test {dag_id} {day}: success in {took:.1f}s (log: {logs / (dag_id + '.log')})")

    from reviews.status.cycle_report import cycle_report
    from reviews.core.warehouse import make_engine

    engine = make_engine(env["AIRFLOW_CONN_REVIEWS_WAREHOUSE"])
    print()
    print(cycle_report(engine, date.fromisoformat(DEMO_AS_OF)))
    print()
    print("Where the results are:")
    print(f"  warehouse (SQLite):   {VAR / 'warehouse.db'}   e.g. sqlite3 {VAR / 'warehouse.db'} 'select * from timeliness limit 5'")
    print(f"  raw files, by sha256: {VAR / 'raw'}")
    print(f"  bulletins (HTML/txt): {VAR / 'bulletins'}")
    print(f"  analysts' extract:    {VAR / 'analyst'}   (internal, unsuppressed; views: sqlite3 {VAR / 'warehouse.db'} "
          "'select * from v_case_journeys limit 5'; docs/analysts.md)")
    print(f"  emails sent (.eml):   {VAR / 'outbox'}")
    print(f"  Airflow logs:         {VAR / 'airflow' / 'logs'} and {logs}")
    print("  watch it in the UI:   make up  (http://localhost:8080)")
    print(f"demo finished in {time.monotonic() - t0:.0f}s")


if __name__ == "__main__":
    main()
