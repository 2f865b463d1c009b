"""Hostile returns through the real DAGs, on SQLite and on PostgreSQL (issue 14's "Done when").

One inbox (`tests/hostile_inputs.py`) holds every hostile input of issue 14 and the bad inputs
already handled, each in its own file or row, with personal details planted in them. The four
DAGs run over it with `dag.test()` once per database (partnership_returns, statutory_timeliness,
regional_learning_summary, bulletin_circulation; outbox folder). Then:

- `test_case[db-case]`: each case's outcome (row quarantined with a reason naming its column or
  rule, or loaded with the bad cell blank and a `row_flags` row when the rule's severity is
  `flag`; file failed with its reason; the rest loaded), one test per case;
- `test_same_outcome_on_sqlite_and_postgresql`: return_files, quarantine, return_expectations,
  the case tables' ids, the timeliness alerts and the emails sent are identical on both;
- `test_planted_detail_is_nowhere[db-marker]`: a byte search, per planted detail, of the
  warehouse (every value of every table; the SQLite file and its WAL), the Airflow home (logs,
  the metadata database and its tables), what the tasks logged, quality reports, Data Docs,
  notices, bulletins (HTML, text, PDF text, XLSX) and every .eml in the outbox (each MIME part
  decoded): nothing but the inbox and the raw copies may hold them;
- `test_config_error_fails_fast_with_one_alert`: a missing or short pseudonymisation key.

Rerun: `.venv/bin/python -m pytest tests/integration/test_hostile_inputs.py` (`-m "not postgres"`
for SQLite only); `make test` runs it.
"""
from __future__ import annotations

import builtins
import functools
import io
import json
import logging
import os
import re
import resource
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from reviews_dev.signoff import Answerer

from tests import hostile_inputs as hx
from tests.integration.returns_support import Env, prepare, write_config

pytestmark = pytest.mark.slow

AS_OF = date(2025, 10, 31)
SUMMARY_RUN = date(2025, 10, 1)  # builds September 2025: the reviews published 25 September
RETURNS = {"frequency": "quarterly", "due_days_after_period_end": 10, "expected_from": "2025-09-30"}
DBS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
UNREADABLE = "notifications_2025-10-08.csv"
CYCLE = (("partnership_returns", AS_OF), ("statutory_timeliness", AS_OF),
         ("regional_learning_summary", SUMMARY_RUN), ("bulletin_circulation", AS_OF))
GIB = 1024**3


# ------------------------------------------------------------------------------- one cycle per database


@dataclass
class Run:
    db: str
    env: Env
    inbox: hx.Inbox
    dag_states: dict[str, str]
    task_states: dict[str, dict[str, tuple[str, int]]]  # dag -> "task[map]" -> (state, try_number)
    console: str
    fifo_opened: bool
    rss_growth: int  # bytes the process's peak memory grew by during partnership_returns
    seconds: dict[str, float]
    found: dict[str, set[str]] = field(default_factory=dict)  # marker -> where
    outputs: dict[str, list[str]] = field(default_factory=dict)  # data dir file -> its texts
    readable: dict[str, list[str]] = field(default_factory=dict)  # the same, UTF-8 decodings only
    html: list[tuple[str, str]] = field(default_factory=list)

    def rows(self, sql: str, **params) -> list[dict]:
        return self.env.rows(sql, **params)

    def file(self, name: str, partnership: str = "knowsley") -> dict | None:
        got = self.rows("select * from return_files where partnership_code = :p and file_name = :f", p=partnership, f=name)
        assert len(got) <= 1, (name, got)
        return got[0] if got else None

    def quarantined(self, name: str) -> list[dict]:
        return self.rows("select * from quarantine where partnership_code = 'knowsley' and file_name = :f "
                         "order by row_number", f=name)

    def flags(self, name: str) -> list[dict]:
        return self.rows("select * from row_flags where partnership_code = 'knowsley' and file_name = :f "
                         "order by row_number, rule_id", f=name)

    def ids(self, table: str) -> set[str]:
        column = {"notifications": "notification_id", "practice_reviews": "review_id", "learning": "finding_id"}[table]
        return {r[column] for r in self.rows(f"select {column} from {table}")}

    def texts(self, where: str) -> list[str]:
        """The texts of the data-dir outputs whose path contains `where`."""
        return [t for path, texts in self.outputs.items() if where in path for t in texts]

    def outcome(self) -> dict:
        """What must be the same on SQLite and PostgreSQL."""
        def norm(rows):  # values as text, rows sorted here (the databases collate text differently)
            rows = [{k: (v if v is None or isinstance(v, (int, float)) else str(v)) for k, v in r.items()} for r in rows]
            for r in rows:  # openpyxl stamps the time into each workbook: its size differs by a byte or so
                if str(r.get("file_name", "")).endswith(".xlsx"):
                    r.pop("size_bytes", None)
            return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))

        return {
            "return_files": norm(self.rows(
                "select partnership_code, file_name, status, size_bytes, rows_read, rows_loaded, rows_quarantined, "
                "rows_flagged, error, notes, dropped_columns, datasets from return_files "
                "order by partnership_code, file_name")),
            "row_flags": norm(self.rows(
                "select partnership_code, dataset, record_id, file_name, row_number, rule_id, columns, blanked, "
                "original_text, message, superseded_by_file_id is null as current from row_flags "
                "order by partnership_code, file_name, row_number, rule_id")),
            "quarantine": norm(self.rows(
                "select partnership_code, dataset, file_name, row_number, record_id, failed_checks, failed_rules "
                "from quarantine order by partnership_code, file_name, row_number, dataset")),
            "return_expectations": norm(self.rows(
                "select partnership_code, period_end, as_of_date, status from return_expectations "
                "order by partnership_code, period_end, as_of_date")),
            "ids": {t: sorted(self.ids(t)) for t in ("notifications", "practice_reviews", "learning")},
            "timeliness_alerts": norm(self.rows(
                "select partnership_code, stage, record_id, status from timeliness_alerts "
                "order by partnership_code, stage, record_id, status")),
            "emails": sorted(str(m["Subject"]) for m in self.env.outbox()),
        }


_RUNS: dict[str, Run | BaseException] = {}
_PG_DATABASES: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def _drop_postgres_databases():
    yield
    if _PG_DATABASES:
        from tests.conftest import _drop_postgres_database

        for name in _PG_DATABASES:
            _drop_postgres_database(name)


def _deny_reading(mp: pytest.MonkeyPatch, path: Path) -> None:
    """Opening `path` fails with PermissionError, as a file the worker may not read does (the tests
    run as root here, where chmod 000 does not stop a read; it is set as well)."""
    target = os.path.realpath(path)
    real_open, real_os_open = builtins.open, os.open

    def denied(file) -> bool:
        if isinstance(file, int):
            return False
        try:
            name = os.fsdecode(file)
        except TypeError:
            return False
        return name.endswith(path.name) and os.path.realpath(name) == target

    def _open(file, *args, **kwargs):
        if denied(file):
            raise PermissionError(13, "Permission denied", os.fsdecode(file))
        return real_open(file, *args, **kwargs)

    def _os_open(file, *args, **kwargs):
        if denied(file):
            raise PermissionError(13, "Permission denied", os.fsdecode(file))
        return real_os_open(file, *args, **kwargs)

    mp.setattr(builtins, "open", _open)
    mp.setattr(io, "open", _open)
    mp.setattr(os, "open", _os_open)


class _Records(logging.Handler):
    """Every record of the project's own loggers (Airflow's task runner may set up the root
    logger's handlers again, taking caplog's away with them; these loggers keep this one)."""

    LOGGERS = ("reviews", "reviews_airflow")

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)

    def __enter__(self):
        self._levels = {}
        for name in self.LOGGERS:
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            logger.setLevel(logging.DEBUG)
            logger.addHandler(self)
        return self

    def __exit__(self, *exc):
        for name in self.LOGGERS:
            logging.getLogger(name).removeHandler(self)
            logging.getLogger(name).setLevel(self._levels[name])


def _log_text(caplog) -> str:
    lines = []
    for r in caplog.records:
        try:
            lines.append(f"{r.name} {r.levelname} {r.getMessage()}")
        except Exception:  # a record whose arguments do not format: keep its parts
            lines.append(f"{r.name} {r.levelname} {r.msg!r} {r.args!r}")
    return "\n".join(lines)


def _cycle(db: str, dagbag, tmp_path_factory, capfd, caplog) -> Run:
    tmp = tmp_path_factory.mktemp(f"hostile-{db}")
    if db == "sqlite":
        url = f"sqlite:///{tmp / 'warehouse.db'}"
    else:
        from tests.conftest import _postgres_database

        name = f"reviews_test_{os.getpid()}_hostile"
        url = _postgres_database(name)
        _PG_DATABASES.append(name)
    config = write_config(tmp, {"knowsley": {}, "sefton": {}}, returns=RETURNS)
    outside = tmp / "outside"
    outside.mkdir()
    console: list[str] = []
    dag_states, task_states, seconds = {}, {}, {}
    rss_growth = 0
    caplog.set_level("DEBUG")
    with pytest.MonkeyPatch.context() as mp:
        env = prepare(mp, tmp, url, config)
        mp.setenv("REVIEWS_SEND_BACKOFF_SECONDS", "0")
        inbox = hx.write_inbox(env.inbox, outside)
        unreadable = env.inbox / "knowsley" / UNREADABLE
        os.chmod(unreadable, 0)
        _deny_reading(mp, unreadable)
        capfd.readouterr()
        caplog.clear()
        with hx.FifoGuard(inbox.fifo) as guard, _Records() as ours:
            for dag_id, day in CYCLE:
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
                started = time.monotonic()
                with Answerer():  # the business unit approves the bulletins' sign-off request
                    dr = dagbag.get_dag(dag_id).test(logical_date=datetime(day.year, day.month, day.day, tzinfo=timezone.utc))
                seconds[dag_id] = round(time.monotonic() - started, 1)
                if dag_id == "partnership_returns":
                    rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - peak
                dag_states[dag_id] = dr.state
                task_states[dag_id] = {f"{ti.task_id}[{ti.map_index}]": (ti.state, ti.try_number)
                                       for ti in dr.get_task_instances()}
                captured = capfd.readouterr()
                console += [captured.out, captured.err, _log_text(caplog), _log_text(ours)]
                caplog.clear()
                ours.records.clear()
    os.chmod(unreadable, 0o644)
    run = Run(db, env, inbox, dag_states, task_states, "\n".join(console), guard.opened, rss_growth, seconds)
    (tmp / "console.log").write_text(run.console, encoding="utf-8", errors="replace")  # to read when a test fails
    (tmp / "measured.json").write_text(json.dumps({"seconds": seconds, "peak_memory_growth_mib": rss_growth >> 20}))
    _search_everything(run)
    return run


def _sqlite_tables(path: Path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        parts = []
        for (name,) in conn.execute("select name from sqlite_master where type = 'table'").fetchall():
            for row in conn.execute(f'select * from "{name}"'):
                parts.append(" | ".join(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in row))
        return "\n".join(parts)
    finally:
        conn.close()


def _search_everything(run: Run) -> None:
    """Every place an output can be, searched for every planted detail (right after the run, so
    the shared Airflow home is searched as this run left it)."""
    found = run.found
    hx.search("warehouse tables", [run.env.every_table_text()], found)
    if run.db == "sqlite":
        db = Path(run.env.url.removeprefix("sqlite:///"))
        for part in sorted(db.parent.glob(db.name + "*")):
            hx.search(f"warehouse file {part.name}", hx.texts_of(part.name, part.read_bytes()), found)
    home = Path(os.environ["AIRFLOW_HOME"])
    for path in hx.regular_files(home):
        hx.search(f"airflow home {path.relative_to(home)}", hx.texts_of(path.name, path.read_bytes()), found)
    if (home / "airflow.db").exists():
        hx.search("airflow metadata tables", [_sqlite_tables(home / "airflow.db")], found)
    hx.search("task logs (console)", [run.console], found)
    data = run.env.data_dir
    for path in hx.regular_files(data, skip=(run.env.inbox, data / "raw")):
        raw = path.read_bytes()
        where = str(path.relative_to(data))
        run.outputs[where] = hx.texts_of(path.name, raw)
        run.readable[where] = hx.texts_of(path.name, raw, encodings=False)
        hx.search(f"data dir {where}", run.outputs[where], found)
        run.html += [(where, t) for t in hx.html_parts(path.name, raw)]


@pytest.fixture
def run(db, dagbag, tmp_path_factory, capfd, caplog) -> Run:
    if db not in _RUNS:
        try:
            _RUNS[db] = _cycle(db, dagbag, tmp_path_factory, capfd, caplog)
        except Exception as exc:  # every test of this database reports it, not only the first
            _RUNS[db] = exc
    got = _RUNS[db]
    if isinstance(got, BaseException):
        pytest.fail(f"the hostile cycle on {db} did not complete: {got!r}")
    return got


# ------------------------------------------------------------------------------------- the runs


@pytest.mark.parametrize("db", DBS)
def test_every_dag_run_completes_without_retries(run):
    # The circulation's branch skips `resume_sends` when a sign-off is asked for; the reminder sensor
    # (reschedule mode) counts each poke as a try in Airflow 3, so its try number is not a retry.
    problems = {dag: {t: s for t, s in tasks.items()
                      if not (s[0] == "success" or (t == "resume_sends[-1]" and s[0] == "skipped"))
                      or (s[1] > 1 and t != "remind_signoff[-1]")}
                for dag, tasks in run.task_states.items()}
    problems = {dag: p for dag, p in problems.items() if p}
    assert run.dag_states == {dag_id: "success" for dag_id, _ in CYCLE} and not problems, (
        f"{run.db}: runs {run.dag_states}; tasks failed or retried (state, try): {problems}; seconds {run.seconds}")


@pytest.mark.parametrize("db", DBS)
def test_good_rows_load_around_the_hostile_ones(run):
    loaded = run.ids("notifications")
    missing = sorted(set(run.inbox.good_ids) - loaded)
    assert not missing, f"{len(missing)} good rows not loaded, e.g. {missing[:8]}"
    unbalanced = run.rows("select file_name from return_files where rows_read != rows_loaded + rows_quarantined")
    assert unbalanced == []
    # every hostile file is on record (but those never to be read: symlink, FIFO, sub-folders)
    recorded = {r["file_name"] for r in run.rows("select file_name from return_files where partnership_code = 'knowsley'")}
    expected = {c.file for c in run.inbox.cases if c.partnership == "knowsley"} - {
        "notifications_2025-10-16.csv", "notifications_2025-10-17.csv", "hx_old_returns"}
    assert expected <= recorded, sorted(expected - recorded)


# ---------------------------------------------------------------------------------- per case


def _quarantined_row(run: Run, name: str, row: int) -> dict:
    rows = [r for r in run.quarantined(name) if r["row_number"] == row]
    f = run.file(name)
    assert rows, f"row {row} of {name} is not quarantined (file: {f and {k: f[k] for k in ('status', 'rows_read', 'rows_loaded', 'rows_quarantined', 'error')}})"
    return rows[0]


def _withheld(q: dict, *secrets: str) -> None:
    shown = f"{q['record_id']} {q['failed_checks']} {q['raw_values']}"
    for s in secrets:
        assert s.lower() not in shown.lower(), f"{s!r} kept in quarantine (record_id {q['record_id']!r})"


def _partial(run: Run, name: str, loaded: int, quarantined: int) -> dict:
    f = run.file(name)
    assert f is not None, f"{name} not recorded"
    got = (f["status"], f["rows_loaded"], f["rows_quarantined"])
    assert got[1:] == (loaded, quarantined), f"{name}: (status, loaded, quarantined) = {got}, error {f['error']!r}"
    return f


def _names_column(q: dict, column: str) -> None:
    assert column in q["failed_checks"] or column in (q["failed_rules"] or ""), (column, q["failed_checks"])


def _briefings(run: Run, token: str) -> list[str]:
    return [path for path, texts in run.outputs.items() if "briefings" in path and any(token in t for t in texts)]


def _finding(run: Run, fid: str) -> str:
    got = run.rows("select finding from learning where finding_id = :f", f=fid)
    assert got, f"{fid} not loaded"
    return got[0]["finding"]


def check_free_text(run: Run, fid: str) -> None:
    token, _text = hx.FINDINGS[fid]
    finding = _finding(run, fid)
    assert finding.startswith(token), finding
    forms = [f for name, forms in hx.MARKERS.items() if "in a finding" in name and any(
        f.lower() in hx.FINDINGS[fid][1].lower() for f in forms) for f in forms]
    assert forms, fid
    stored = finding.lower()
    left = [f for f in forms if f.lower() in stored or re.sub(r"\s+", "", f.lower()) in re.sub(r"\s+", "", stored)]
    assert not left, f"{fid}: stored finding still holds {left}: {finding!r}"
    assert "[redacted]" in finding, finding
    assert _briefings(run, token), f"{token} reached no briefing (the search would prove nothing)"


def check_control(run: Run) -> None:
    """No bulletin, briefing, report or email that shows the finding carries its control characters."""
    token = hx.FINDINGS["KNO-HX-F-CONTROL"][0]
    _finding(run, "KNO-HX-F-CONTROL")
    assert _briefings(run, token), token
    places = [p for p, texts in run.readable.items() if any(token in t for t in texts)]
    bad = {(name, p) for p in places for t in run.readable[p] for name, ch in hx.CONTROL_CHARS.items()
           if token in t and ch in t}
    assert not bad, sorted(bad)


def check_html(run: Run) -> None:
    assert run.html
    raw = [where for where, t in run.html if hx.XSS in t]
    assert not raw, raw
    assert any("&lt;script&gt;alert(" in t for _w, t in run.html)


def check_briefing_collision(run: Run) -> None:
    loaded = run.ids("practice_reviews") & {"KNO-R-100", "KNO/R/100"}
    assert "KNO-R-100" in loaded
    first, second = set(_briefings(run, "HXFIND-R100")), set(_briefings(run, "HXFIND-R101"))
    assert first, "no briefing for KNO-R-100"
    if "KNO/R/100" in loaded:
        assert second and not (first & second), f"KNO-R-100 {sorted(first)}, KNO/R/100 {sorted(second)}"
    else:
        [q] = [r for r in run.quarantined("practice_reviews_2025-10-01.csv") if r["row_number"] == 4]
        _names_column(q, "review_id")


def check_id_over_100(run: Run) -> None:
    _partial(run, "notifications_2025-10-03.csv", 1, 1)
    q = _quarantined_row(run, "notifications_2025-10-03.csv", 3)
    _names_column(q, "notification_id")
    _withheld(q, hx.LONG_ID, "0151.496.0055")


def check_footer_over_100(run: Run) -> None:
    _partial(run, "notifications_2025-10-04.csv", 1, 1)
    q = _quarantined_row(run, "notifications_2025-10-04.csv", 3)
    _withheld(q, "Prepared by", "0151.496.0077", "hx.footer.long@example.org")


def check_text_over_200(run: Run) -> None:
    """length:ethnicity is a `flag`: the row loads, ethnicity stored blank, the flag kept (text withheld)."""
    f = _partial(run, "notifications_2025-10-05.csv", 2, 0)
    assert f["rows_flagged"] == 1, f
    [flag] = run.flags("notifications_2025-10-05.csv")
    assert (flag["row_number"], flag["record_id"], flag["rule_id"], flag["columns"], flag["blanked"]) == (
        3, "KNO-HX-LT1", "length:ethnicity", "ethnicity", 1)
    assert flag["original_text"].startswith("(withheld: ") and "ethnicity" in flag["message"], flag
    assert run.rows("select ethnicity from notifications where notification_id = 'KNO-HX-LT1'") == [{"ethnicity": None}]


def check_nul(run: Run) -> None:
    _partial(run, "notifications_2025-10-06.csv", 700, 1)
    q = _quarantined_row(run, "notifications_2025-10-06.csv", 702)
    _names_column(q, "ethnicity")
    assert "KNO-HX-NUL1" not in run.ids("notifications")


def check_flagged_date(column: str, row: int, nid: str, value: str):
    """An optional date that is no date (severity `flag`): the row loads with it blank, the flag kept."""
    def check(run: Run) -> None:
        [flag] = [f for f in run.flags("notifications_2025-10-07.csv") if f["row_number"] == row]
        assert (flag["record_id"], flag["rule_id"], flag["original_text"], flag["blanked"]) == (
            nid, f"date:{column}", f"'{value}'", 1), flag
        stored = run.rows(f"select {column} from notifications where notification_id = :n", n=nid)
        assert stored == [{column: None}], f"{nid} stored with {column} = {stored}"
        assert not [r for r in run.quarantined("notifications_2025-10-07.csv") if r["row_number"] == row]
    return check


def check_impossible_date(column: str, row: int, nid: str):
    def check(run: Run) -> None:
        q = _quarantined_row(run, "notifications_2025-10-07.csv", row)
        _names_column(q, column)
        stored = run.rows(f"select {column} from notifications where notification_id = :n", n=nid)
        assert stored == [], f"{nid} stored with {column} = {stored}"
    return check


def check_unreadable(run: Run) -> None:
    f = run.file(UNREADABLE)
    assert f is not None and f["status"] == "failed", f
    assert re.search(r"permission|could not be read|cannot be read|unreadable", f["error"] or "", re.I), f["error"]
    ingest = {t: s for t, s in run.task_states["partnership_returns"].items() if t.startswith("ingest")}
    assert all(s == ("success", 1) for s in ingest.values()), ingest
    assert "KNO-HX-N9" in run.ids("notifications")  # a later file of the same partnership


def check_shifted(run: Run) -> None:
    q = _quarantined_row(run, "notifications_2025-10-09.csv", 3)
    _withheld(q, hx.SHIFTED_REF)


def check_footer_note(run: Run) -> None:
    q = _quarantined_row(run, "notifications_2025-10-10.csv", 3)
    _withheld(q, "Contact Jane", "0151.496.0033", "hx.footer@example.org")


def check_phone_id(run: Run) -> None:
    q = _quarantined_row(run, "notifications_2025-10-11.csv", 3)
    _names_column(q, "notification_id")
    _withheld(q, hx.PHONE_ID, "01514960022")
    alerts = {r["record_id"] for r in run.rows("select record_id from timeliness_alerts")}
    assert "KNO-HX-N2" in alerts  # the overdue case with a proper id is alerted (positive control)
    assert not [a for a in alerts if re.search(r"0151\W?496", a)], alerts


def check_child_ref_id(run: Run) -> None:
    q = _quarantined_row(run, "notifications_2025-10-12.csv", 3)
    _withheld(q, hx.COPIED_REF)
    assert hx.COPIED_REF not in {r["record_id"] for r in run.rows("select record_id from timeliness_alerts")}


def check_wide(run: Run) -> None:
    f = run.file("notifications_2025-10-13.csv")
    assert f is not None
    failed_with_reason = f["status"] == "failed" and re.search(r"column|line", f["error"] or "", re.I)
    row_refused = any(r["row_number"] == 3 for r in run.quarantined("notifications_2025-10-13.csv"))
    assert failed_with_reason or row_refused, f
    assert run.rss_growth < GIB, f"peak memory grew by {run.rss_growth / GIB:.2f} GiB during partnership_returns"


def check_sheets(run: Run) -> None:
    f = run.file("return_2025-10-14.xlsx")
    assert f is not None and f["status"] == "failed" and "sheet" in (f["error"] or "").lower(), f
    assert not {"KNO-HX-SH1", "KNO-HX-SH2"} & run.ids("notifications")


def check_mixed_encoding(run: Run) -> None:
    f = run.file("notifications_2025-10-15.csv")
    assert f is not None and f["rows_loaded"] == 2, f
    assert "encod" in (f["notes"] or "").lower(), f["notes"]


def check_logged_and_skipped(*names: str, table_name: str | None = None, nid: str):
    def check(run: Run) -> None:
        for name in names:
            lines = [ln for ln in run.console.splitlines() if name in ln]
            assert lines, f"no log line names {name} (what was logged: {run.env.data_dir.parent / 'console.log'})"
        assert nid not in run.ids("notifications")
        if table_name:
            assert run.file(table_name) is None
    return check


def check_fifo(run: Run) -> None:
    assert not run.fifo_opened, "the FIFO was opened"
    check_logged_and_skipped("notifications_2025-10-17.csv", table_name="notifications_2025-10-17.csv",
                             nid="none")(run)


def check_failed(name: str, phrase: str):
    def check(run: Run) -> None:
        f = run.file(name)
        assert f is not None and f["status"] == "failed" and phrase in (f["error"] or ""), f
        assert f["rows_loaded"] == 0
    return check


def check_formula(run: Run) -> None:
    assert run.rows("select ethnicity from notifications where notification_id = 'KNO-HX-FM1'") == [{"ethnicity": "=1+1"}]
    q = _quarantined_row(run, "notifications_2025-10-20.xlsx", 3)
    _names_column(q, "aware_date")


def check_sql(run: Run) -> None:
    got = run.rows("select ethnicity from notifications where notification_id = 'KNO-HX-SQ1'")
    assert got == [{"ethnicity": "'; DROP TABLE notifications; --"}], got
    assert len(run.ids("notifications")) > 700


def check_huge(run: Run) -> None:
    from reviews.returns.landing import NOT_KEPT

    check_failed("notifications_2025-10-24.csv", "over the size limit")(run)
    f = run.file("notifications_2025-10-24.csv")
    assert f["raw_path"] == NOT_KEPT
    assert f["size_bytes"] == 5 * 1024**3, f"size recorded as {f['size_bytes']:,} bytes"


def check_arrived_but_failed(run: Run) -> None:
    f = run.file("notifications_2025-10-05.csv", "sefton")
    assert f is not None and f["status"] == "failed" and "binary data" in (f["error"] or ""), f
    flags = run.rows("select period_end, status from return_expectations where partnership_code = 'sefton' "
                     "and as_of_date = :d", d=AS_OF)
    assert flags and all(r["status"] != "missing" for r in flags), flags
    knowsley = run.rows("select status from return_expectations where partnership_code = 'knowsley' and as_of_date = :d",
                        d=AS_OF)
    assert [r["status"] for r in knowsley] == ["on_time"], knowsley  # the check does judge this quarter
    missing = [s for s in run.outcome()["emails"] if s.startswith("Return missing") and "Sefton" in s]
    assert not missing, missing


CHECKS = {
    "briefing-name-collision": check_briefing_collision,
    **{fid: functools.partial(check_free_text, fid=fid) for fid in (
        "KNO-HX-F-NHSDOT", "KNO-HX-F-NHSSPACE", "KNO-HX-F-PHONEDOT", "KNO-HX-F-FULLWIDTH", "KNO-HX-F-ADDRESS",
        "KNO-HX-F-SPELLED", "KNO-HX-F-NAMES", "KNO-HX-F-EMAIL")},
    "KNO-HX-F-CONTROL": check_control,
    "KNO-HX-F-HTML": check_html,
    "id-over-100": check_id_over_100,
    "footer-over-100": check_footer_over_100,
    "text-over-200": check_text_over_200,
    "nul-after-64k": check_nul,
    "impossible-date-incident_date": check_impossible_date("incident_date", 3, "KNO-HX-D1"),
    "impossible-date-aware_date": check_impossible_date("aware_date", 4, "KNO-HX-D2"),
    "impossible-date-notified_date": check_flagged_date("notified_date", 5, "KNO-HX-D3", "2024-06-31"),
    "unreadable-file": check_unreadable,
    "row-missing-first-cell": check_shifted,
    "footer-note-row": check_footer_note,
    "phone-as-id": check_phone_id,
    "child-ref-as-id": check_child_ref_id,
    "wide-csv-line": check_wide,
    "sheet-name-collision": check_sheets,
    "mixed-encoding": check_mixed_encoding,
    "symlink": check_logged_and_skipped("notifications_2025-10-16.csv", table_name="notifications_2025-10-16.csv",
                                        nid="KNO-HX-LINK"),
    "fifo": check_fifo,
    "unknown-folders": check_logged_and_skipped("hx_old_returns", "hx_unknown_folder", nid="KNO-HX-SUB"),
    "xlsx-zip-bomb": check_failed("notifications_2025-10-19.xlsx", "zip bomb"),
    "formula-cells": check_formula,
    "sql-meta-characters": check_sql,
    "path-traversal-name": check_failed("returns_.._.._notifications_2025-10-22.csv", "does not follow the template"),
    "malformed-csv": check_failed("notifications_2025-10-23.csv", "the CSV is malformed at line"),
    "huge-file": check_huge,
    "arrived-but-failed": check_arrived_but_failed,
}


@pytest.mark.parametrize("case", list(CHECKS))
@pytest.mark.parametrize("db", DBS)
def test_case(run, case):
    CHECKS[case](run)


def test_every_case_of_the_inbox_is_checked(tmp_path):
    inbox = hx.write_inbox(tmp_path / "inbox", tmp_path)
    assert [c.id for c in inbox.cases] == list(dict.fromkeys(c.id for c in inbox.cases))  # ids unique
    assert {c.id for c in inbox.cases} == set(CHECKS)
    doc = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text(encoding="utf-8")
    assert [c for c in CHECKS if f"`{c}`" not in doc] == [], "docs/security.md's hostile-input table misses these"


# ------------------------------------------------------------------------------ the two databases


@pytest.mark.parametrize("db", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_same_outcome_on_sqlite_and_postgresql(run, dagbag, tmp_path_factory, capfd, caplog):
    if "sqlite" not in _RUNS:
        _RUNS["sqlite"] = _cycle("sqlite", dagbag, tmp_path_factory, capfd, caplog)
    sqlite = _RUNS["sqlite"]
    if isinstance(sqlite, BaseException):
        pytest.fail(f"the SQLite cycle did not complete: {sqlite!r}")
    theirs, ours = sqlite.outcome(), run.outcome()
    differences = []
    for part in ours:
        a, b = theirs[part], ours[part]
        if a != b:
            if isinstance(a, list):
                only_a = [x for x in a if x not in b]
                only_b = [x for x in b if x not in a]
                differences.append(f"{part}: SQLite only {json.dumps(only_a, default=str)[:1500]}; "
                                   f"PostgreSQL only {json.dumps(only_b, default=str)[:1500]}")
            else:
                differences.append(f"{part}: {json.dumps(a, default=str)[:800]} != {json.dumps(b, default=str)[:800]}")
    assert not differences, "\n".join(differences)


# ---------------------------------------------------------------------------------- the byte search


@pytest.mark.parametrize("marker", list(hx.MARKERS))
@pytest.mark.parametrize("db", DBS)
def test_planted_detail_is_nowhere(run, marker):
    assert marker not in run.found, f"{marker!r} found in: {sorted(run.found[marker])}"


@pytest.mark.parametrize("db", DBS)
def test_the_search_looks_where_the_data_went(run):
    """Positive controls: the harmless words planted beside the details are in the warehouse and
    the bulletins (PDF text too), the raw references in the raw copies, the overdue case in the
    timeliness alert, and every kind of output was searched."""
    warehouse = run.env.every_table_text()
    for token in ("HXFIND-NHSDOT", "HXFIND-NAMES", "KNO-HX-N1", "HXRECOMMEND"):
        assert token in warehouse, token
    kinds = {Path(p).suffix for p in run.outputs}
    assert kinds >= {".eml", ".html", ".txt", ".pdf", ".xlsx"}, kinds
    assert any("data_docs" in p for p in run.outputs) and any("quality" in p for p in run.outputs)
    pdfs = [t for p, texts in run.outputs.items() if p.endswith(".pdf") for t in texts]
    assert any("Merseyside" in t for t in pdfs), "no text read from the bulletin PDFs"
    assert any("HXFIND-" in t for t in run.texts(".eml")), "no email carries the findings"
    alerts = [t for p, texts in run.outputs.items() if p.endswith(".eml") for t in texts if "KNO-HX-N2" in t]
    assert alerts, "the overdue case KNO-HX-N2 is in no email"
    raw = b"".join(p.read_bytes() for p in hx.regular_files(run.env.data_dir / "raw"))
    assert b"HXREF-CLEAN-1" in raw and b"401.023.2137" in raw
    assert "knowsley" in run.console and len(run.console) > 10_000


# ---------------------------------------------------------------------------- configuration errors


@pytest.mark.parametrize("db", DBS)
def test_config_error_fails_fast_with_one_alert(db, dagbag, tmp_path, monkeypatch, request):
    """A missing or short pseudonymisation key: no retries, and one alert to the business unit
    that says what to set (never the key)."""
    if db == "sqlite":
        url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    config = write_config(tmp_path, {"knowsley": {}, "sefton": {}}, returns=RETURNS)
    env = prepare(monkeypatch, tmp_path, url, config)
    for code in ("knowsley", "sefton"):
        (env.inbox / code).mkdir()
        (env.inbox / code / "notifications_2025-10-01.csv").write_text(
            hx.csv_text(hx.HEADER, [hx.note(f"{code}-1", f"HXREF-CLEAN-{code}")]), encoding="utf-8")
    outbox = env.data_dir / "outbox"
    results = {}
    for label, key, day in (("short key", "too-short", date(2025, 10, 30)), ("no key", None, AS_OF)):
        if key is None:
            monkeypatch.delenv("REVIEWS_PSEUDONYMISATION_KEY", raising=False)
        else:
            monkeypatch.setenv("REVIEWS_PSEUDONYMISATION_KEY", key)
        before = set(outbox.glob("*.eml")) if outbox.exists() else set()
        dr = dagbag.get_dag("partnership_returns").test(logical_date=datetime(day.year, day.month, day.day,
                                                                             tzinfo=timezone.utc))
        tries = {f"{ti.task_id}[{ti.map_index}]": ti.try_number for ti in dr.get_task_instances()}
        new = sorted(set(outbox.glob("*.eml")) - before) if outbox.exists() else []
        alerts = [m for m in (hx.message(p.read_bytes()) for p in new) if str(m["Subject"]).startswith("[reviews]")]
        results[label] = (dr.state, tries, alerts)
    for label, (state, tries, alerts) in results.items():
        assert state == "failed", label
        assert max(tries.values()) <= 1, f"{label}: retried: {tries}"
        assert len(alerts) == 1, f"{label}: {len(alerts)} alerts: {[str(m['Subject']) for m in alerts]}"
        body = "\n".join(p.get_content() for p in alerts[0].walk() if p.get_content_type() == "text/plain")
        assert "reviews_pseudonymisation" in body or "REVIEWS_PSEUDONYMISATION_KEY" in body, body[:2000]
        assert "too-short" not in body and "too-short" not in str(alerts[0]["Subject"])
