"""`make demo`: one regional cycle on the embedded default, run through Airflow itself.

Resets the demo's own data under var/ (inbox, warehouse, outputs), generates synthetic returns
for the five partnerships (some returns late, one or two never sent), runs the five DAGs with
`airflow dags test`, and prints what they did, what the business unit has to chase (rows loaded
with flags, case journeys' consistency findings, the case tracker) and where the results are.
`--prepare-only` sets up var/ and var/demo.env for `make up`.
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
# Five financial years of returns at real volumes (single-digit serious cases a year per
# partnership, docs/domain.md), so the outputs look like what the partnerships will get: the yearly
# report's five-year trends, a rolling 12 months in the bulletin. Last return: Q3, dated 10 October.
SYNTHETIC_START, SYNTHETIC_END = date(2021, 4, 1), date(2026, 10, 31)
INFLATE = 1  # the tests and benchmarks choose their own volumes
DEMO_YEARLY_RUN = "2026-05-01"  # the run on 1 May builds the financial year 2025-26
TRACKER_PATH = "/reviews/tracker"  # the business unit's case tracker, behind the Airflow login
EXAMPLES = 5  # flags and findings shown by example (all of them are in the warehouse and the tracker)


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


def signing_off(dag_id: str):
    """bulletin_circulation and yearly_report wait for the business unit's sign-off (Required actions in the UI).
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

    return Answerer(decide, user="demo (make demo)", dag_id=dag_id)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def tracker_file(var: Path, as_of: date) -> Path | None:
    """The dated XLSX tracker statutory_timeliness wrote for `as_of` (the newest one otherwise)."""
    exact = var / "tracker" / f"case_tracker_{as_of.isoformat()}.xlsx"
    if exact.exists():
        return exact
    found = sorted((var / "tracker").glob("case_tracker_*.xlsx"))
    return found[-1] if found else None


def action_summary(engine, as_of: date, var: Path) -> str:
    """The action registers after the cycle: per partnership the actions on review recommendations
    by state as of the day, how many reminders the ledger holds (each sent once per action and
    state), and where the register (internal, unsuppressed) is."""
    from collections import Counter

    from sqlalchemy import func, select

    from reviews.core import warehouse as wh
    from reviews.core.config import load_config
    from reviews.learning.actions import DUE_SOON, action_rows, register_path

    cfg = load_config()
    rows = action_rows(engine, cfg, as_of)
    with engine.connect() as conn:
        sent = dict(conn.execute(select(wh.action_reminders.c.partnership_code, func.count())
                                 .where(wh.action_reminders.c.send_status == "sent")
                                 .group_by(wh.action_reminders.c.partnership_code)).all())
    lines = [f"Action registers as of {as_of} (actions on review recommendations; reminders to the learning contact):"]
    for code, p in cfg.partnerships.items():
        mine = [r for r in rows if r["partnership_code"] == code]
        n = Counter(r["action_state"] for r in mine)
        soon = sum(r["reminder_state"] == DUE_SOON for r in mine)
        path = register_path(var, code, as_of)
        lines.append(f"  {p.name:<11} {len(mine):>3} actions: {n['overdue']} overdue, {soon} due within "
                     f"{cfg.actions.remind_working_days_before} working days, {n['open'] + n['in_progress']} "
                     f"not yet due, {n['completed']} completed; {_plural(sent.get(code, 0), 'reminder')} sent")
        lines.append(f"              register: {path if path.exists() else '(not written)'}")
    return "\n".join(lines)


def chase_report(engine, as_of: date, var: Path) -> str:
    """What the business unit has to chase after the cycle, read back from the warehouse: late and
    missing returns, rows loaded with flags (row_flags), stages judged unknown and why, the case
    journeys' consistency findings (case_journeys, latest as-of date), and the case tracker.
    Case references and file rows only: no child's reference or key, no cell of a child column."""
    from sqlalchemy import func, inspect, select

    from reviews.core import warehouse as wh

    tables = set(inspect(engine).get_table_names())
    lines: list[str] = []
    with engine.connect() as conn:
        rx = wh.return_expectations.c
        flagged = conn.execute(
            select(rx.partnership_code, rx.period_end, rx.due_date, rx.received_date, rx.status)
            .where(rx.as_of_date == as_of, rx.status != "on_time").order_by(rx.partnership_code, rx.period_end)
        ).all()
        lines.append(f"Late and missing returns as of {as_of:%d %B %Y} (partnership_returns; the business unit told once each)")
        for r in flagged:
            got = f"received {r.received_date}" if r.received_date else "nothing received"
            lines.append(f"  {r.partnership_code:<10} period ending {r.period_end}: {r.status}, due {r.due_date}, {got}")
        if not flagged:
            lines.append("  none")

        lines.append("")
        if "row_flags" in tables:
            f = wh.row_flags.c
            per = conn.execute(
                select(f.partnership_code, func.count(), func.count(func.distinct(f.file_id)),
                       func.sum((f.superseded_by_file_id.is_(None)).cast(wh.Integer)))
                .group_by(f.partnership_code).order_by(f.partnership_code)
            ).all()
            total = sum(n for _, n, _, _ in per)
            lines.append(f"Rows loaded with flags (row_flags: loaded and monitored, the bad cell blank, sent back "
                         f"to the partnership): {total}")
            if per:
                from reviews.status.cycle_report import _table

                lines += ["  " + x for x in _table(["partnership", "flags raised", "in files", "still current"],
                                                   [[c, n, files, current or 0] for c, n, files, current in per])]
                # one example per rule, the newest first: file, row as a spreadsheet shows it, the rule's sentence
                examples = conn.execute(
                    select(f.rule_id, f.file_name, f.row_number, f.message)
                    .where(f.superseded_by_file_id.is_(None))
                    .order_by(f.file_id.desc(), f.row_number)
                ).all()
                shown: dict[str, tuple] = {}
                for rule, file_name, row_number, message in examples:
                    shown.setdefault(rule.split(":", 1)[0], (file_name, row_number, message))
                lines.append("  e.g.")
                for file_name, row_number, message in list(shown.values())[:EXAMPLES]:
                    lines.append(f"  - {file_name} row {row_number}: {message.splitlines()[0]}")
        else:
            lines.append("Rows loaded with flags: table row_flags is not in the warehouse")

        t = wh.timeliness.c
        unknown = conn.execute(
            select(t.stage, t.partnership_code, t.record_id, t.reason)
            .where(t.as_of_date == as_of, t.status == "unknown").order_by(t.partnership_code, t.record_id)
        ).all()
        lines.append("")
        lines.append(f"Stages judged unknown as of {as_of:%d %B %Y} (statutory_timeliness; never met, late or "
                     f"overdue on a guess): {len(unknown)}")
        stages = ["notification", "rapid_review", "lcspr_completion", "publication_notice"]
        by_stage = sorted(unknown, key=lambda r: stages.index(r.stage) if r.stage in stages else len(stages))
        # examples: the first of each stage, then the rest, stage by stage
        firsts = [r for i, r in enumerate(by_stage) if i == 0 or by_stage[i - 1].stage != r.stage]
        for r in (firsts + [r for r in by_stage if r not in firsts])[:EXAMPLES]:
            reason = (r.reason or "no reason recorded").splitlines()[0]
            lines.append(f"  - {r.partnership_code} {r.record_id} {r.stage}: {reason}")
        if len(unknown) > EXAMPLES:
            lines.append(f"  ... and {len(unknown) - EXAMPLES} more")

        lines.append("")
        if "case_journeys" in tables:
            j = wh.case_journeys.c
            latest = conn.execute(select(func.max(j.as_of_date))).scalar()
            journeys = conn.execute(
                select(j.partnership_code, j.notification_id, j.findings).where(j.as_of_date == latest)
                .order_by(j.partnership_code, j.notification_id)
            ).all() if latest else []
            findings = [(r.partnership_code, r.notification_id, line.strip()) for r in journeys
                        for line in (r.findings or "").splitlines() if line.strip()]
            when = f"as of {latest:%d %B %Y}" if latest else "no journeys written"
            lines.append(f"Consistency findings in case journeys ({when}; case_journeys, "
                         f"{_plural(len(journeys), 'case')}): {len(findings)}")
            for code, case, finding in findings[:2 * EXAMPLES]:
                lines.append(f"  - {code} {case}: {finding}")
            if len(findings) > 2 * EXAMPLES:
                lines.append(f"  ... and {len(findings) - 2 * EXAMPLES} more (all in the tracker)")
        else:
            lines.append("Consistency findings: table case_journeys is not in the warehouse")

    xlsx = tracker_file(var, as_of)
    lines.append("")
    lines.append("Case tracker (what is due first, each case's journey and the returns it came from):")
    lines.append(f"  XLSX for the business unit (internal, pseudonymised keys only): {xlsx or 'not written'}")
    lines.append(f"  page: {TRACKER_PATH} behind the Airflow login (make up: http://localhost:8080{TRACKER_PATH})")
    return "\n".join(lines)


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
                              seed=2024, inflate=INFLATE, late_and_missing_returns=True)
    print(f"  generated synthetic returns in {VAR / 'inbox'} ({SYNTHETIC_START:%B %Y} to {SYNTHETIC_END:%B %Y}, "
          "real volumes)")
    for line in report.describe().splitlines():
        print("    " + line)
    steps = [
        ("partnership_returns", DEMO_AS_OF),
        ("statutory_timeliness", DEMO_AS_OF),
        ("regional_learning_summary", DEMO_SUMMARY_RUN),
        ("bulletin_circulation", DEMO_AS_OF),
        ("yearly_report", DEMO_YEARLY_RUN),
    ]
    test_env = {**env, "REVIEWS_DEADLINES": "off",  # `dags test` cannot run deadlines (see dag_defaults.deadline)
                # the sign-off reminder's sensor, when it poked before the demo's answer, looks again
                # within seconds rather than the production 10 minutes
                "REVIEWS_SIGNOFF_POKE_SECONDS": "5"}
    for dag_id, day in steps:
        with signing_off(dag_id) if dag_id in ("bulletin_circulation", "yearly_report") else nullcontext():
            took = run([airflow, "dags", "test", dag_id, day], test_env, logs / f"{dag_id}.log")
        print(f"  airflow dags test {dag_id} {day}: success in {took:.1f}s (log: {logs / (dag_id + '.log')})")

    from reviews.status.cycle_report import cycle_report
    from reviews.core.warehouse import make_engine

    engine = make_engine(env["AIRFLOW_CONN_REVIEWS_WAREHOUSE"])
    print()
    print(cycle_report(engine, date.fromisoformat(DEMO_AS_OF)))
    print()
    print(chase_report(engine, date.fromisoformat(DEMO_AS_OF), VAR))
    print()
    print(action_summary(engine, date.fromisoformat(DEMO_AS_OF), VAR))
    print()
    print("Where the results are:")
    print(f"  warehouse (SQLite):   {VAR / 'warehouse.db'}   e.g. sqlite3 {VAR / 'warehouse.db'} 'select * from timeliness limit 5'")
    print(f"  raw files, by sha256: {VAR / 'raw'}")
    print(f"  bulletins (HTML/txt): {VAR / 'bulletins'}")
    extracts = sorted((VAR / "analyst").glob("analyst_extract_*.xlsx"))
    print(f"  analysts' extract:    {extracts[-1] if extracts else VAR / 'analyst'}   (internal, unsuppressed; views: sqlite3 {VAR / 'warehouse.db'} "
          "'select * from v_case_journeys limit 5'; docs/analysts.md)")
    yearly = sorted((VAR / "yearly").glob("*/merseyside-yearly-report-*-v*.html"))
    print(f"  yearly report:        {yearly[-1] if yearly else VAR / 'yearly'}   (HTML, .txt, .pdf, .xlsx per "
          "partnership beside it)")
    print(f"  emails sent (.eml):   {VAR / 'outbox'}")
    print(f"  case tracker (XLSX):  {tracker_file(VAR, date.fromisoformat(DEMO_AS_OF)) or VAR / 'tracker'}")
    print(f"  Airflow logs:         {VAR / 'airflow' / 'logs'} and {logs}")
    print("  watch it in the UI:   make up  (http://localhost:8080)")
    print(f"demo finished in {time.monotonic() - t0:.0f}s")


if __name__ == "__main__":
    main()
