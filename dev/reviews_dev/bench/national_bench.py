"""National scale: the whole pipeline for all of England, fast, in bounded memory (issue 8).

What runs, in order (one `make bench`):
  data       seeded synthetic returns (reviews_dev.synthetic, the generator the demo and tests use) for
             152 invented local authorities (a Config built in memory: template headers, CSV, day
             first dates), 10 years of quarterly cumulative returns at 100 times real volume: about
             500,000 notifications with their rapid reviews, practice reviews and learning. Written
             by 2 processes (half the authorities each).
  per database (a PostgreSQL database created for the run and dropped after, then a SQLite file):
    partnership_returns   the `ingest` task's body for every partnership, as tasks.ingest calls
             it: sources.gather (folder), ingest.ingest_partnership(..., folder=, docs_dir=) with
             its Data Docs pages, then feedback.build_quality_reports. Two worker processes take
             partnerships in turn, as the mapped task does under an executor with parallelism 2.
    statutory_timeliness  timeliness.run.run_timeliness as of the run's date (tasks.judge_timeliness).
    regional_learning_summary  publication.build_period for the month, as tasks.build_bulletins
             calls it, with PDF printing off (summary.pdf: printing 153 PDFs times Chromium, not
             the pipeline); every other output (HTML, text, XLSX, briefings) is built.
    rerun    the three stages again with no new files (every file skipped by its checksum).
  baseline   the heaviest stage, partnership_returns, the naive way on a sample of partnerships:
             each file cleaned on its own, rows turned into records one by one (to_dict, a JSON
             dump and hash per row), the whole case table read per file to compare return dates,
             delete-then-insert upserts and row inserts through SQLAlchemy executemany. Run beside
             the fast path on the same sample and fresh databases; the tables are compared.
  DAG files  each file's parse time in Airflow's DagBag, and `python dags/x.py` wall time.

Each stage runs in a fresh process (spawn) so its peak memory is its own: ru_maxrss of the
process (of each worker, for partnership_returns). Not timed tests: see reviews_dev.bench.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from reviews_dev.bench import Target, benchmark, say
from reviews_dev.bench.postgres_server import benchmark_server

LOCAL_AUTHORITIES = 152
INFLATE = 100
FIRST_DAY = date(2016, 1, 1)  # ten years of quarterly returns: 2016 to 2025
LAST_DAY = date(2025, 12, 31)
# The runs: partnership_returns as of the year's end (every return is in: the last, dated 10 October
# 2025, covers the quarter to 30 September); then, with the quarter's data in, statutory_timeliness
# for 30 September and the September bulletins (as an analyst reruns them once late data is in).
AS_OF = date(2025, 12, 31)
TIMELINESS_AS_OF = date(2025, 9, 30)
PERIOD = (date(2025, 9, 1), date(2025, 9, 30))  # summary.period is month; as of its last day
WORKERS = 2
KEY = b"national-benchmark-pseudonymisation-key"
QUICK = {"partnerships": 8, "first": date(2023, 1, 1), "baseline": 1}
PROJECT = Path(__file__).resolve().parents[3]
FIXED_NOW = datetime(2026, 1, 1, 6, 0, tzinfo=timezone.utc)  # the baseline comparison's clock

TARGET_RUN_SECONDS = 300.0
TARGET_PEAK_MB = 2048.0
TARGET_VALIDATION_ROWS_PER_S = 50_000.0
TARGET_PARSE_SECONDS = 0.5
TARGET_RERUN_SHARE = 0.10
MB = 1024.0  # ru_maxrss is in KiB on Linux


# --------------------------------------------------------------------------- the national config


def ons_codes(n: int) -> list[str]:
    """ONS-like codes in the real series' shape: unitary (E06), metropolitan (E08), London (E09), county (E10)."""
    series = (("E06", 63), ("E08", 36), ("E09", 33), ("E10", 26))
    out = []
    for prefix, size in series:
        out += [f"{prefix}{i:06d}" for i in range(1, size + 1)]
    while len(out) < n:
        out.append(f"E99{len(out):06d}")
    return out[:n]


def national_config(n: int = LOCAL_AUTHORITIES):
    """The project's config with its five partnerships replaced by n invented local authorities."""
    from reviews.core.config import Partnership, load_config

    base = load_config()
    partnerships = {}
    for i, ons in enumerate(ons_codes(n), start=1):
        code = f"la_{i:03d}"
        partnerships[code] = Partnership(
            code=code, name=f"Local Authority {i:03d}", ons_code=ons, source={"kind": "folder"},
            file_format="csv", date_format="%d/%m/%Y", columns={}, data_contact=(), distribution=(),
        )
    return dataclasses.replace(base, region_name="England (synthetic national benchmark)", partnerships=partnerships)


# --------------------------------------------------------------------------- generating the returns


def _generate_shard(inbox: str, n: int, codes: list[str], seed: int, inflate: int, first: date, last: date) -> dict:
    """Child process: write the returns of some of the authorities; counts back."""
    cfg = national_config(n)
    start = time.perf_counter()
    from reviews_dev import synthetic

    report = synthetic.generate_returns(Path(inbox), cfg, start=first, end=last, seed=seed, inflate=inflate,
                                        partnerships=codes)
    rows = Counter()
    for per in report.rows.values():
        rows.update(per)
    records = Counter()
    for per in report.records.values():
        records.update(per)
    return {"files": len(report.files), "rows": dict(rows), "records": dict(records),
            "bytes": sum(p.stat().st_size for p in report.files), "seconds": time.perf_counter() - start,
            "faults": sum(report.faults.values())}


def generate(inbox: Path, n: int, seed: int, inflate: int, first: date, last: date, workers: int = WORKERS) -> dict:
    """Write the national returns with `workers` processes (authorities dealt out in turn)."""
    codes = list(national_config(n).partnerships)
    shards = [codes[i::workers] for i in range(workers)]
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(_generate_shard, [str(inbox)] * workers, [n] * workers, shards,
                                [seed] * workers, [inflate] * workers, [first] * workers, [last] * workers))
    total = {"files": 0, "rows": Counter(), "records": Counter(), "bytes": 0, "faults": 0}
    for r in results:
        total["files"] += r["files"]
        total["rows"].update(r["rows"])
        total["records"].update(r["records"])
        total["bytes"] += r["bytes"]
        total["faults"] += r["faults"]
    return total


# --------------------------------------------------------------------------- stage processes


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / MB


_STATE: dict[str, Any] = {}
GX_SETUP = "import GX, make its context (once per process)"


class _Timers:
    """Time spent in some functions of reviews.returns.ingest, per worker process (the breakdown): wall
    seconds, and CPU seconds of the process (what the machine's other load does not inflate)."""

    def __init__(self):
        self.seconds: Counter = Counter()
        self.cpu: Counter = Counter()
        self.rows: Counter = Counter()

    def wrap(self, module, name: str, label: str, rows=None, setup=None) -> None:
        """Time `module.name` under `label`; `setup`: (label, fn) where fn() -> bool does a one-off
        set-up before the first timed call (True when it did), timed under its own label."""
        original = getattr(module, name)

        def timed(*args, **kwargs):
            if setup is not None:
                start, cpu = time.perf_counter(), time.process_time()
                if setup[1]():
                    self.seconds[setup[0]] += time.perf_counter() - start
                    self.cpu[setup[0]] += time.process_time() - cpu
            start, cpu = time.perf_counter(), time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - start
                self.cpu[label] += time.process_time() - cpu
                if rows is not None:
                    self.rows[label] += rows(*args, **kwargs)

        setattr(module, name, timed)


def _gx_setup() -> bool:
    """Import GX and make its context, once per process (an Airflow task process pays it once per
    task that validates anything): timed on its own, not counted in the validation rate. A rerun
    with no new files validates nothing, so never pays it."""
    from reviews.returns.quality import _gx_batch_definition

    if _gx_batch_definition.cache_info().currsize:
        return False
    _gx_batch_definition()
    return True


def _worker_state(url: str, n: int) -> dict:
    """Per worker process: the config, one engine, the timers around ingest's parts."""
    if _STATE.get("url") != url:
        import reviews.returns.ingest as ingest
        from reviews.core.warehouse import make_engine

        if "timers" not in _STATE:
            timers = _Timers()
            timers.wrap(ingest, "_read", "read and map (per file)")
            timers.wrap(ingest, "_clean_all", "clean and pseudonymise (batched)")
            timers.wrap(ingest, "validate", "validate with GX", rows=lambda frame, *a, **k: len(frame),
                        setup=(GX_SETUP, _gx_setup))
            timers.wrap(ingest, "write_data_docs", "Data Docs pages")
            timers.wrap(ingest, "_load_files", "load (one transaction per run)")
            _STATE["timers"] = timers
        _STATE.update(url=url, cfg=national_config(n), engine=make_engine(url))
    return _STATE


def _ingest_task(url: str, n: int, code: str, inbox: str, data: str, as_of: date) -> dict:
    """One partnership, as tasks.ingest runs it (gather, ingest with Data Docs, quality reports)."""
    from reviews.returns.quality_reports import build_quality_reports
    from reviews.returns.ingest import ingest_partnership
    from reviews.returns.sources import gather

    start, start_cpu = time.perf_counter(), time.process_time()
    state = _worker_state(url, n)
    cfg, engine, timers = state["cfg"], state["engine"], state["timers"]
    before_s, before_cpu, before_rows = Counter(timers.seconds), Counter(timers.cpu), Counter(timers.rows)
    data_dir = Path(data)
    got = gather(cfg.partnership(code), Path(inbox), data_dir / "staging", as_of)
    summary = ingest_partnership(engine, cfg, code, Path(inbox), data_dir / "raw", KEY, as_of,
                                 folder=got.folder, docs_dir=data_dir / "reports" / "data_docs" / code)
    loaded, loaded_cpu = time.perf_counter(), time.process_time()
    reports = build_quality_reports(engine, cfg, code, data_dir / "reports" / "quality", as_of)
    done, done_cpu = time.perf_counter(), time.process_time()
    seconds = Counter(timers.seconds)
    seconds.subtract(before_s)
    cpu = Counter(timers.cpu)
    cpu.subtract(before_cpu)
    rows = Counter(timers.rows)
    rows.subtract(before_rows)
    seconds["quality reports"] = done - loaded
    cpu["quality reports"] = done_cpu - loaded_cpu
    seconds["(rest: landing, checksums, lookups)"] = (done - start) - sum(seconds.values())
    cpu["(rest: landing, checksums, lookups)"] = (done_cpu - start_cpu) - sum(cpu.values())
    return {"code": code, "pid": os.getpid(), "maxrss_mb": _maxrss_mb(), "seconds": done - start,
            "cpu": done_cpu - start_cpu, "parts_cpu": dict(cpu),
            "files_new": summary.files_new, "files_skipped": summary.files_skipped_already_loaded,
            "rows_read": summary.rows_read, "rows_loaded": summary.rows_loaded,
            "rows_quarantined": summary.rows_quarantined, "reports": len(reports),
            "parts": dict(seconds), "validated_rows": rows.get("validate with GX", 0)}


def run_partnership_returns(url: str, n: int, inbox: Path, data: Path, as_of: date, workers: int = WORKERS) -> dict:
    """Every partnership through the ingest task body, `workers` at a time; wall time and peaks."""
    from reviews.core.warehouse import ensure_schema, make_engine

    engine = make_engine(url)
    ensure_schema(engine)  # as settings.warehouse_engine() does before the first task
    engine.dispose()
    codes = list(national_config(n).partnerships)
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_ingest_task, url, n, code, str(inbox), str(data), as_of) for code in codes]
        results = [f.result() for f in futures]
    wall = time.perf_counter() - start
    peaks: dict[int, float] = {}
    for r in results:
        peaks[r["pid"]] = max(peaks.get(r["pid"], 0.0), r["maxrss_mb"])
    parts: Counter = Counter()
    parts_cpu: Counter = Counter()
    for r in results:
        parts.update(r["parts"])
        parts_cpu.update(r["parts_cpu"])
    return {
        "seconds": wall, "peak_mb": max(peaks.values()), "peak_total_mb": sum(peaks.values()),
        "processes": len(peaks), "rows": sum(r["rows_read"] for r in results),
        "files_new": sum(r["files_new"] for r in results), "files_skipped": sum(r["files_skipped"] for r in results),
        "rows_loaded": sum(r["rows_loaded"] for r in results), "rows_quarantined": sum(r["rows_quarantined"] for r in results),
        "reports": sum(r["reports"] for r in results), "parts": dict(parts), "parts_cpu": dict(parts_cpu),
        "cpu": sum(r["cpu"] for r in results),
        "validated_rows": sum(r["validated_rows"] for r in results),
        "slowest": max(results, key=lambda r: r["seconds"])["seconds"] if results else 0.0,
    }


def _timeliness_stage(url: str, n: int, as_of: date) -> dict:
    from reviews.timeliness.run import run_timeliness
    from reviews.core.warehouse import make_engine

    cfg, engine = national_config(n), make_engine(url)
    start, cpu = time.perf_counter(), time.process_time()
    counts = run_timeliness(engine, cfg, as_of)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "cpu": time.process_time() - cpu, "peak_mb": _maxrss_mb(),
            "rows": sum(sum(c.values()) for c in counts.values()), "counts": counts}


def _summary_stage(url: str, n: int, out: str) -> dict:
    from reviews.learning.publication import build_period
    from reviews.core.warehouse import make_engine

    cfg, engine = national_config(n), make_engine(url)
    cfg = dataclasses.replace(cfg, summary=dataclasses.replace(cfg.summary, pdf=False))
    start, cpu = time.perf_counter(), time.process_time()
    report = build_period(engine, cfg, PERIOD[0], PERIOD[1], PERIOD[1], Path(out))
    seconds = time.perf_counter() - start
    # Its rendering workers' CPU and memory count too (RUSAGE_CHILDREN: the largest worker's peak,
    # counted once per worker as an upper bound of what they held together).
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    workers = cfg.summary.workers
    return {"seconds": seconds, "cpu": time.process_time() - cpu + children.ru_utime + children.ru_stime,
            "peak_mb": _maxrss_mb() + (workers * children.ru_maxrss / MB if children.ru_maxrss else 0.0),
            "bulletins": len(report.built),
            "new": sum(b["new"] for b in report.built), "briefings": report.briefings}


def in_child(fn, *args) -> dict:
    """Run fn(*args) in a fresh (spawned) process, so its peak memory is its own."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def _case_rows(url: str) -> int:
    import sqlalchemy as sa

    from reviews.core import warehouse as wh

    engine = wh.make_engine(url)
    with engine.connect() as conn:
        total = sum(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                    for t in (wh.notifications, wh.rapid_reviews, wh.practice_reviews))
    engine.dispose()
    return total


ANALYZE_CHECK_SECONDS = 10.0


@contextmanager
def autovacuum_analyze(url: str):
    """On a PostgreSQL server with autovacuum off, do its analyze job while the block runs.

    The local server runs with autovacuum off (a test set-up), so tables filled from empty keep
    the planner's guesses for empty tables, and some plans go badly wrong as they grow. With
    PostgreSQL's default (autovacuum on) the analyze daemon refreshes a table's statistics when
    more than autovacuum_analyze_threshold + autovacuum_analyze_scale_factor x its rows have
    changed since the last time; this applies the same rule every ANALYZE_CHECK_SECONDS, in the
    measured time. Nothing happens when the server's autovacuum is on.
    """
    import threading

    if not url.startswith("postgresql"):
        yield
        return
    import sqlalchemy as sa

    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        on = conn.execute(sa.text("show autovacuum")).scalar() == "on"
        threshold = float(conn.execute(sa.text("show autovacuum_analyze_threshold")).scalar())
        scale = float(conn.execute(sa.text("show autovacuum_analyze_scale_factor")).scalar())
    stop = threading.Event()
    due = sa.text(
        "select s.relname from pg_stat_user_tables s join pg_class c on c.oid = s.relid "
        "where s.n_mod_since_analyze > :threshold + :scale * greatest(c.reltuples, 0)")

    def analyze() -> None:
        while not stop.wait(ANALYZE_CHECK_SECONDS):
            try:
                with engine.connect() as conn:
                    for (name,) in conn.execute(due, {"threshold": threshold, "scale": scale}).all():
                        conn.execute(sa.text(f'ANALYZE "{name}"'))
            except Exception:  # noqa: BLE001 - statistics are a help, not part of the run
                pass

    thread = None if on else threading.Thread(target=analyze, daemon=True)
    if thread:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        if thread:
            thread.join()
        engine.dispose()


def run_cycle(url: str, n: int, inbox: Path, data: Path) -> dict:
    """The three stages, each in its own processes."""
    with autovacuum_analyze(url):
        out = {"partnership_returns": run_partnership_returns(url, n, inbox, data, AS_OF)}
        out["statutory_timeliness"] = in_child(_timeliness_stage, url, n, TIMELINESS_AS_OF)
        out["statutory_timeliness"]["cases"] = _case_rows(url)
        out["regional_learning_summary"] = in_child(_summary_stage, url, n, str(data / "bulletins"))
    return out


# --------------------------------------------------------------------------- the naive baseline


def naive_ingest_partnership(engine, cfg, code: str, inbox: Path, raw_root: Path, key: bytes, as_of: date, clock):
    """partnership_returns' ingest the straightforward way (see the module doc): the same reading,
    rules and validation, then every file cleaned on its own and loaded row by row."""
    import pandas as pd

    from reviews.returns import ingest
    from reviews.core import warehouse as wh
    from reviews.returns.landing import discover, keep_raw
    from reviews.returns.quality import RuleContext, validate
    from reviews.core.template import DATASET_ORDER

    partnership = cfg.partnership(code)
    wh.ensure_schema(engine)
    seen = ingest.already_loaded(engine, code)
    prepared = []
    for inc in discover(Path(inbox) / code, code, max_bytes=cfg.limits.max_file_bytes):
        if inc.sha256 in seen or (inc.return_date is not None and inc.return_date > as_of):
            continue
        prep = ingest._Prepared(inc, keep_raw(inc, raw_root))
        ingest._read(prep, partnership, cfg, key)  # cleaned file by file
        prepared.append(prep)
    failures, failed_rules, flags = {}, {}, {}
    known_ids, dates = ingest._known_records(engine, code)
    next_key = 0
    for dataset in DATASET_ORDER:
        keyed = naive_keyed_tables(prepared, dataset, next_key)
        if not keyed:
            continue
        for i, table in keyed.items():
            prepared[i].tables[dataset] = table
        next_key += sum(map(len, keyed.values()))
        batch = pd.concat(list(keyed.values()), ignore_index=True)
        result = validate(batch, dataset, cfg, RuleContext(as_of=as_of, known_ids=known_ids, dates=dates))
        failures[dataset], failed_rules[dataset] = result.rejections()
        flags[dataset] = result.flags
        for table in [*keyed.values(), batch]:  # flagged cells stored blank
            ingest.blank_flagged(table, dataset, result.flags)
        ingest._remember_valid(batch, dataset, failures[dataset], known_ids, dates)
    now = clock()
    rows = 0
    for prep in prepared:
        rows += _naive_load_file(engine, prep, failures, failed_rules, now, flags)
    return rows


def naive_keyed_tables(prepared: list, dataset: str, first_key: int) -> dict:
    """The old way of keying a run's rows: file position -> a copy of that file's table of
    `dataset` with its row keys (numbered on from `first_key`) and its file's position."""
    from reviews.returns.quality import FILE_COLUMN, KEY_COLUMN

    out, next_key = {}, first_key
    for i, prep in enumerate(prepared):
        table = prep.tables.get(dataset)
        if table is None:
            continue
        table = table.copy()
        table[KEY_COLUMN] = range(next_key, next_key + len(table))
        table[FILE_COLUMN] = i
        next_key += len(table)
        out[i] = table
    return out


def _naive_load_file(engine, prep, failures, failed_rules, now, flags=None) -> int:
    """One file, row by row: a dict, a JSON dump and a hash per row; the partnership's whole case
    table read to compare return dates; delete-then-insert; executemany inserts."""
    from sqlalchemy import insert

    from reviews.returns import ingest
    from reviews.core import warehouse as wh
    from reviews.returns.quality import KEY_COLUMN, blanked_column, quarantine_record, rule_columns
    from reviews.returns.readers import ROW_COLUMN
    from reviews.core.template import DATASET_ORDER, DATASETS

    inc = prep.incoming
    read = loaded = quarantined_n = flagged_n = 0
    flags = flags or {}
    with engine.begin() as conn:
        file_id = conn.execute(insert(wh.return_files).returning(wh.return_files.c.file_id), {
            "partnership_code": inc.partnership_code, "file_name": inc.safe_name, "sha256": inc.sha256,
            "size_bytes": inc.size_bytes, "return_date": inc.return_date, "received_at": now,
            "raw_path": str(prep.raw_path), "datasets": ",".join(d for d in DATASET_ORDER if d in prep.tables) or None,
            "dropped_columns": ", ".join(sorted(prep.dropped)) or None, "notes": "\n".join(prep.notes) or None,
            "status": "failed", "error": prep.error,
        }).scalar_one()
        for dataset in DATASET_ORDER:
            table = prep.tables.get(dataset)
            if table is None:
                continue
            ds = DATASETS[dataset]
            current = wh.existing_keys(conn, wh.CASE_TABLES[dataset], ["partnership_code", ds.id_column],
                                       {"partnership_code": inc.partnership_code})
            loads, history, quarantined, flagged = [], [], [], []
            bad, bad_rules = failures.get(dataset, {}), failed_rules.get(dataset, {})
            row_flags = flags.get(dataset, {})
            for row in table.to_dict(orient="records"):
                read += 1
                reasons = bad.get(int(row[KEY_COLUMN]))
                if reasons:
                    rules = bad_rules.get(int(row[KEY_COLUMN]), [])
                    record_id, raw_values = quarantine_record(dataset, rules, row.get(ds.id_column),  # ids withheld
                                                              ingest._raw_values(row, dataset), int(row[ROW_COLUMN]))
                    quarantined.append({
                        "partnership_code": inc.partnership_code, "dataset": dataset, "file_id": file_id,
                        "file_name": inc.safe_name, "row_number": int(row[ROW_COLUMN]),
                        "record_id": record_id, "failed_checks": "\n".join(reasons),
                        "failed_rules": "\n".join(rules), "raw_values": raw_values, "quarantined_at": now,
                    })
                    continue
                values = ingest._record_values(row, dataset)
                digest = ingest._row_hash(values)
                record_id = values[ds.id_column]
                found = row_flags.get(int(row[KEY_COLUMN]), [])
                flagged_n += bool(found)
                flagged += [{
                    "partnership_code": inc.partnership_code, "dataset": dataset, "record_id": record_id,
                    "file_id": file_id, "file_name": inc.safe_name, "row_number": int(row[ROW_COLUMN]),
                    "rule_id": f.rule_id, "columns": ",".join(rule_columns(f.rule_id)),
                    "blanked": int(blanked_column(f.rule_id) is not None), "original_text": f.original_text,
                    "message": f.message, "flagged_at": now,
                } for f in found]
                history.append({
                    "partnership_code": inc.partnership_code, "dataset": dataset, "record_id": record_id,
                    "file_id": file_id, "return_date": inc.return_date, "row_hash": digest,
                    "values_json": json.dumps(values, default=str, sort_keys=True), "loaded_at": now,
                })
                existing = current.get((inc.partnership_code, record_id))
                if existing is None or existing["return_date"] <= inc.return_date:
                    loads.append({"partnership_code": inc.partnership_code, **values, "return_date": inc.return_date,
                                  "source_file_id": file_id, "source_row": int(row[ROW_COLUMN]),
                                  "row_hash": digest, "loaded_at": now})
            if loads:
                wh._delete_then_insert(conn, wh.CASE_TABLES[dataset], loads, ["partnership_code", ds.id_column])
            if history:
                conn.execute(insert(wh.record_history), history)
            if quarantined:
                conn.execute(insert(wh.quarantine), quarantined)
            if flagged:
                conn.execute(insert(wh.row_flags), flagged)
            if history and inc.return_date is not None:
                ingest._resolve_quarantine(conn, inc, file_id, dataset, [h["record_id"] for h in history], now)
                ingest._supersede_flags(conn, inc, file_id, dataset, [h["record_id"] for h in history])
            quarantined_n += len(quarantined)
            loaded = read - quarantined_n
        status = "failed" if prep.error else ("loaded" if quarantined_n == 0 else ("partial" if loaded else "rejected"))
        conn.execute(wh.return_files.update().where(wh.return_files.c.file_id == file_id).values(
            rows_read=read, rows_loaded=loaded, rows_quarantined=quarantined_n, rows_flagged=flagged_n, status=status,
            error=prep.error if status == "failed" else None))
    return read


def _baseline_run(url: str, n: int, codes: list[str], inbox: str, data: str, naive: bool) -> dict:
    """Child process: the sample's partnerships one after another, naive or fast; tables back as a digest."""
    from reviews.core import warehouse as wh
    from reviews.returns.ingest import ingest_partnership

    cfg, engine = national_config(n), wh.make_engine(url)
    wh.ensure_schema(engine)
    clock = lambda: FIXED_NOW  # noqa: E731 - the same stamps on both sides, so the tables compare
    start = time.perf_counter()
    rows = 0
    for code in codes:
        if naive:
            rows += naive_ingest_partnership(engine, cfg, code, Path(inbox), Path(data) / "raw", KEY, AS_OF, clock)
        else:
            rows += ingest_partnership(engine, cfg, code, Path(inbox), Path(data) / "raw", KEY, AS_OF, clock).rows_read
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rows": rows, "digest": table_digest(engine), "peak_mb": _maxrss_mb()}


def table_digest(engine) -> str:
    """A hash of every row of every warehouse table (sorted; values as text)."""
    import sqlalchemy as sa

    from reviews.core import warehouse as wh

    h = hashlib.sha256()
    with engine.connect() as conn:
        for table in wh.metadata.sorted_tables:
            rows = sorted(tuple("" if v is None else str(v) for v in r) for r in conn.execute(sa.select(table)))
            h.update(f"{table.name}:{len(rows)}\n".encode())
            for r in rows:
                h.update("\t".join(r).encode() + b"\n")
    return h.hexdigest()


# --------------------------------------------------------------------------- databases


@contextmanager
def postgres_database(admin_url: str, name: str, keep: bool = False):
    """A fresh database on the server of `admin_url` (its URL), dropped afterwards unless `keep`."""
    import sqlalchemy as sa

    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        if not keep:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def postgres_available(admin_url: str) -> str | None:
    """None when the server answers, else why not."""
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(admin_url)
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - reported, the SQLite half still runs
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"


# --------------------------------------------------------------------------- DAG files


PARSE_SCRIPT = PROJECT / "scripts" / "dag_parse_times.py"  # imports Airflow: kept out of include/


def dag_parse_times() -> dict:
    """Airflow's own per-file parse time (DagBag, as the dag processor measures it), and the wall
    time of `python dags/x.py` beside that of a process that only loads airflow.sdk (scripts/dag_parse_times.py)."""
    env = dict(os.environ)
    home = tempfile.mkdtemp(prefix="reviews-bench-airflow-")
    env.update(AIRFLOW_HOME=home, AIRFLOW__CORE__DAGS_FOLDER=str(PROJECT / "dags"),
               AIRFLOW__CORE__PLUGINS_FOLDER=str(PROJECT / "plugins"), AIRFLOW__CORE__LOAD_EXAMPLES="False",
               GX_ANALYTICS_ENABLED="false")
    try:
        out = subprocess.run([sys.executable, str(PARSE_SCRIPT), "dagbag", str(PROJECT / "dags")], env=env,
                             capture_output=True, text=True, timeout=300)
        bag = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else {"files": {}, "errors": -1}

        def wall(args: list[str]) -> float:
            start = time.perf_counter()
            subprocess.run([sys.executable, *args], env=env, capture_output=True, timeout=300, check=False)
            return time.perf_counter() - start

        bare = min(wall([str(PARSE_SCRIPT), "import", "airflow.sdk"]) for _ in range(2))
        files = sorted((PROJECT / "dags").glob("*.py"))
        scripts = {p.name: min(wall([str(p)]) for _ in range(2)) for p in files}
        own = {}
        for p in files:
            out = subprocess.run([sys.executable, str(PARSE_SCRIPT), "own", str(p)], env=env, capture_output=True,
                                 text=True, timeout=300)
            own[p.name] = float(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else float("inf")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return {"dagbag": bag, "bare": bare, "scripts": scripts, "own": own}



# --------------------------------------------------------------------------- printing


def _mb(x: float) -> str:
    return f"{x:,.0f} MB"


def _rate(rows: float, seconds: float) -> str:
    return f"{rows / seconds:,.0f}" if seconds > 0 else "-"


STAGES = ("partnership_returns", "statutory_timeliness", "regional_learning_summary")


def _print_cycle(label: str, cycle: dict, rerun: dict | None) -> None:
    say(f"  {label}: stage                       wall s   cpu s  peak memory          rows      rows/s  rerun wall s")
    pr = cycle["partnership_returns"]
    for name in STAGES:
        st = cycle[name]
        if name == "partnership_returns":
            peak, rows = f"{_mb(st['peak_mb'])} x{st['processes']}", st["rows"]
        elif name == "statutory_timeliness":
            peak, rows = _mb(st["peak_mb"]), st["cases"]
        else:
            peak, rows = _mb(st["peak_mb"]), st["bulletins"]
        again = f"{rerun[name]['seconds']:12.1f}" if rerun else f"{'-':>12}"
        say(f"    {name:<30} {st['seconds']:8.1f} {st['cpu']:7.1f}  {peak:<16} {rows:>11,} {_rate(rows, st['seconds']):>11} {again}")
    total = sum(cycle[n]["seconds"] for n in STAGES)
    again = f"{sum(rerun[n]['seconds'] for n in STAGES):12.1f}" if rerun else f"{'-':>12}"
    say(f"    {'whole run':<30} {total:8.1f} {sum(cycle[n]['cpu'] for n in STAGES):7.1f}  {'':<16} {pr['rows']:>11,} "
        f"{_rate(pr['rows'], total):>11} {again}")
    say("    (cpu s: CPU time of the stage's own processes, both ingest workers summed; the database server's is "
        "not in it. rows: rows read; cases judged; bulletins built)")
    say(f"    partnership_returns: {pr['files_new']:,} files, {pr['rows']:,} rows read, {pr['rows_loaded']:,} loaded, "
        f"{pr['rows_quarantined']:,} quarantined, {pr['reports']:,} quality reports; slowest partnership "
        f"{pr['slowest']:.1f} s")
    parts, parts_cpu = pr["parts"], pr["parts_cpu"]
    worker_s = sum(parts.values())
    say("    where the ingest workers' time went (both processes summed):      wall s        cpu s")
    for part, s in sorted(parts.items(), key=lambda kv: -kv[1]):
        extra = ""
        if part == "validate with GX":
            c = parts_cpu.get(part, 0.0)
            extra = (f"   {pr['validated_rows']:,} rows: {_rate(pr['validated_rows'], s)} rows/s per process, "
                     f"{_rate(pr['validated_rows'], c)} per CPU-second")
        say(f"      {part:<38} {s:9.1f} ({100 * s / worker_s if worker_s else 0:4.1f}%) {parts_cpu.get(part, 0.0):9.1f}{extra}")
    tl, rs = cycle["statutory_timeliness"], cycle["regional_learning_summary"]
    say(f"    statutory_timeliness as of {TIMELINESS_AS_OF}: {tl['cases']:,} cases -> {tl['rows']:,} timeliness rows; "
        f"regional_learning_summary {PERIOD[0]:%B %Y}: {rs['bulletins']} bulletins, {rs['briefings']} 7-minute "
        "briefings (PDF printing off)")
    if rerun:
        rr = rerun["partnership_returns"]
        say(f"    rerun with no new files: {rr['files_skipped']:,} files skipped by checksum, {rr['files_new']} new")


# --------------------------------------------------------------------------- the benchmark


def _add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--quick", action="store_true",
                       help=f"national benchmark at a small scale to try it out ({QUICK['partnerships']} authorities, "
                            f"returns from {QUICK['first'].year}); the default is the full national scale")
    group.add_argument("--national-partnerships", type=int, default=None, metavar="N",
                       help=f"local authorities (default {LOCAL_AUTHORITIES})")
    group.add_argument("--national-inflate", type=int, default=INFLATE, metavar="K",
                       help=f"volume multiplier over real volumes (default {INFLATE})")
    group.add_argument("--national-baseline", type=int, default=None, metavar="N",
                       help="partnerships in the naive baseline's sample (default 1)")
    group.add_argument("--national-data", type=Path, default=None, metavar="DIR",
                       help="keep the generated returns in DIR and reuse them when they are there (default: a "
                            "temporary folder, generated every run)")
    group.add_argument("--national-skip", action="append", default=[],
                       choices=("sqlite", "postgres", "rerun", "baseline", "dags"), help="leave out a part (repeatable)")
    group.add_argument("--national-keep", type=Path, default=None, metavar="DIR",
                       help="keep the warehouses for a look afterwards: the SQLite file and data under DIR, the "
                            "PostgreSQL database not dropped (its name is printed; on a server of your own, named "
                            "by REVIEWS_BENCH_POSTGRES: the private server is deleted at the end)")


def _database_runs(label: str, url: str, db_dir: Path, n: int, inbox: Path, rerun: bool, keep: bool) -> tuple:
    """The cycle on one database (its files under db_dir), then again with no new files; printed."""
    shutil.rmtree(db_dir, ignore_errors=True)
    db_dir.mkdir(parents=True)
    cycle = run_cycle(url, n, inbox, db_dir)
    again = run_cycle(url, n, inbox, db_dir) if rerun else None
    _print_cycle(label, cycle, again)
    if keep:
        say(f"  kept: {url}")
    else:
        shutil.rmtree(db_dir, ignore_errors=True)
    return cycle, again


@benchmark("national", "the whole pipeline at national scale: 152 authorities, 10 years, x100 (issue 8)", _add_arguments)
def run(options: argparse.Namespace) -> list[Target]:
    began = time.perf_counter()
    quick = options.quick
    n = options.national_partnerships or (QUICK["partnerships"] if quick else LOCAL_AUTHORITIES)
    first = QUICK["first"] if quick else FIRST_DAY
    baseline_n = options.national_baseline if options.national_baseline is not None else QUICK["baseline"]
    skip = set(options.national_skip)
    targets: list[Target] = []
    work = Path(tempfile.mkdtemp(prefix="reviews-national-"))
    kept = options.national_keep
    stack = ExitStack()
    try:
        # ---- the returns
        inbox_dir = options.national_data or (work / "inbox")
        stamp = inbox_dir / ".national-bench.json"
        params = {"n": n, "seed": options.seed, "inflate": options.national_inflate, "first": first.isoformat(),
                  "last": LAST_DAY.isoformat(), "generator": hashlib.sha256(
                      (PROJECT / "dev" / "reviews_dev" / "synthetic.py").read_bytes()).hexdigest()}
        if stamp.is_file() and json.loads(stamp.read_text()).get("params") == params:
            data = json.loads(stamp.read_text())["data"]
            made = f"reused from {inbox_dir} (generated earlier in {data['seconds']:.0f} s)"
        else:
            if inbox_dir.exists():
                shutil.rmtree(inbox_dir)
            start = time.perf_counter()
            data = generate(inbox_dir, n, options.seed, options.national_inflate, first, LAST_DAY)
            data["seconds"] = time.perf_counter() - start
            data["rows"], data["records"] = dict(data["rows"]), dict(data["records"])
            stamp.write_text(json.dumps({"params": params, "data": data}, default=str))
            made = f"generated in {data['seconds']:.1f} s by {WORKERS} processes"
        rows_total = sum(data["rows"].values())
        say(f"  data: {n} local authorities, returns {first.year}-{LAST_DAY.year} (quarterly, cumulative), "
            f"volumes x{options.national_inflate}, seed {options.seed}: {data['files']:,} CSV files, "
            f"{data['bytes'] / 1e6:,.0f} MB, {rows_total:,} rows; {made}")
        say("        records: " + ", ".join(f"{k} {v:,}" for k, v in data["records"].items())
            + "; rows: " + ", ".join(f"{k} {v:,}" for k, v in data["rows"].items())
            + f"; {data['faults']:,} faults injected")

        results: dict[str, tuple[dict, dict]] = {}
        # ---- PostgreSQL (production's warehouse settings: postgres_server), then SQLite
        server = stack.enter_context(benchmark_server(PROJECT / "docker-compose.yml")) if "postgres" not in skip \
            or "baseline" not in skip else None
        pg_problem = postgres_available(server.admin_url) if server is not None else "skipped"
        if server is not None and pg_problem is None:
            say(f"  PostgreSQL server: {server.described}")
        if pg_problem is None and "postgres" not in skip:
            with postgres_database(server.admin_url, f"reviews_bench_{os.getpid()}", keep=bool(kept)) as url:
                results["PostgreSQL"] = _database_runs("PostgreSQL", url, (kept or work) / "postgres", n, inbox_dir,
                                                       "rerun" not in skip, bool(kept))
        elif "postgres" not in skip:
            say(f"  PostgreSQL: not reachable at {server.admin_url} ({pg_problem})")
            targets.append(Target("PostgreSQL reachable", "no", False))
        if "sqlite" not in skip:
            db_dir = (kept or work) / "sqlite"
            results["SQLite"] = _database_runs("SQLite", f"sqlite:///{db_dir / 'warehouse.db'}", db_dir, n, inbox_dir,
                                               "rerun" not in skip, bool(kept))
        for label, (cycle, rerun) in results.items():
            total = sum(cycle[x]["seconds"] for x in STAGES)
            if label == "PostgreSQL":
                targets.append(Target(f"{label}: whole run under {TARGET_RUN_SECONDS / 60:g} min", f"{total:.0f} s",
                                      total < TARGET_RUN_SECONDS))
            runs = [cycle] + ([rerun] if rerun else [])
            peak = max([*(c["partnership_returns"]["peak_total_mb"] for c in runs),
                        *(c[x]["peak_mb"] for c in runs for x in STAGES[1:])])
            targets.append(Target(f"{label}: peak memory under {TARGET_PEAK_MB / 1024:g} GiB (worst stage, "
                                  "ingest workers summed)", _mb(peak), peak < TARGET_PEAK_MB))
            pr = cycle["partnership_returns"]
            v_rate = pr["validated_rows"] / max(pr["parts"].get("validate with GX", 0.0), 1e-9)
            targets.append(Target(f"{label}: GX validation at least {TARGET_VALIDATION_ROWS_PER_S:,.0f} rows/s "
                                  "(per process, wall time)", f"{v_rate:,.0f}/s", v_rate >= TARGET_VALIDATION_ROWS_PER_S))
            if rerun:
                share = rerun["partnership_returns"]["seconds"] / pr["seconds"]
                targets.append(Target(f"{label}: partnership_returns rerun, no new files, under "
                                      f"{TARGET_RERUN_SHARE:.0%} of the first", f"{share:.1%}", share < TARGET_RERUN_SHARE))
                whole = sum(rerun[x]["seconds"] for x in STAGES) / total
                targets.append(Target(f"{label}: whole rerun (timeliness and bulletins redone) under "
                                      f"{TARGET_RERUN_SHARE:.0%} of the first", f"{whole:.1%}", whole < TARGET_RERUN_SHARE))

        # ---- the naive baseline, on PostgreSQL when there is one
        if "baseline" not in skip and baseline_n > 0:
            codes = list(national_config(n).partnerships)[:baseline_n]
            if pg_problem is None:
                with postgres_database(server.admin_url, f"reviews_bench_naive_{os.getpid()}") as naive_url, \
                        postgres_database(server.admin_url, f"reviews_bench_fast_{os.getpid()}") as fast_url:
                    naive = in_child(_baseline_run, naive_url, n, codes, str(inbox_dir), str(work / "baseline"), True)
                    fast = in_child(_baseline_run, fast_url, n, codes, str(inbox_dir), str(work / "baseline"), False)
                where = "PostgreSQL"
            else:
                (work / "b").mkdir()
                naive = in_child(_baseline_run, f"sqlite:///{work / 'b' / 'naive.db'}", n, codes, str(inbox_dir),
                                 str(work / "baseline"), True)
                fast = in_child(_baseline_run, f"sqlite:///{work / 'b' / 'fast.db'}", n, codes, str(inbox_dir),
                                str(work / "baseline"), False)
                where = "SQLite"
            ratio = naive["seconds"] / fast["seconds"]
            same = naive["digest"] == fast["digest"]
            say(f"  baseline, partnership_returns' ingest on {where}, {len(codes)} partnership(s), "
                f"{naive['rows']:,} rows, fresh databases:")
            say(f"    naive (row by row, delete-then-insert, per-file cleaning) {naive['seconds']:8.1f} s  "
                f"{_rate(naive['rows'], naive['seconds']):>8} rows/s")
            say(f"    this pipeline (ingest.ingest_partnership)                  {fast['seconds']:8.1f} s  "
                f"{_rate(fast['rows'], fast['seconds']):>8} rows/s   -> {ratio:.1f}x faster")
            say(f"    identical tables (every row of every table): {'yes' if same else 'NO'}")
            targets.append(Target(f"naive baseline ({where}) and this pipeline give identical tables; "
                                  "ratio measured", f"{ratio:.1f}x", same and ratio > 1))

        # ---- DAG files
        if "dags" not in skip:
            parse = dag_parse_times()
            files = parse["dagbag"]["files"]
            say("  DAG files: parse time in Airflow's DagBag (first file pays the shared imports); `python dags/x.py`: "
                "the file's own time (run as a script once airflow.sdk is imported) and the whole command's wall "
                f"time (a process that only loads airflow.sdk takes {parse['bare']:.2f} s of it):")
            for name, wall in parse["scripts"].items():
                say(f"    {name:<32} DagBag {files.get(name, float('nan')):6.3f} s   python: own {parse['own'][name]:6.3f} s,"
                    f" whole command {wall:5.2f} s")
            worst = max(files.values()) if files else float("inf")
            targets.append(Target(f"every DAG file parsed (DagBag) in under {TARGET_PARSE_SECONDS:g} s",
                                  f"{worst:.3f} s", bool(files) and worst < TARGET_PARSE_SECONDS
                                  and parse["dagbag"]["errors"] == 0))
            own = max(parse["own"].values()) if parse["own"] else float("inf")
            targets.append(Target(f"every `python dags/x.py` runs its file in under {TARGET_PARSE_SECONDS:g} s "
                                  "(beyond importing Airflow)", f"{own:.3f} s", own < TARGET_PARSE_SECONDS))
        say(f"  national benchmark total (generation, both databases, reruns, baseline, DAG files): "
            f"{time.perf_counter() - began:.0f} s")
    finally:
        stack.close()
        shutil.rmtree(work, ignore_errors=True)
    return targets
