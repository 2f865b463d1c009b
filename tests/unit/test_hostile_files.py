"""Hostile files and folders (issue 14, items 3, 6, 7, 9 and the load-isolation half of 1): one file
never stops another; what cannot be landed, read or loaded is recorded as failed with the kind of
error only; CSVs are bounded like workbooks; sheet names that fold alike are an error in words;
mixed encodings are read right and noted; links, pipes, sockets and folders are skipped, logged.

Every fault here is real: a permission error from a process without root's file-access
capabilities (`setpriv`), a copy that fails because its partial file's place is a folder, a file
swapped for a link after the folder was listed, a named pipe, a Unix socket, the warehouse
refusing a row through a constraint of its own (a trigger on SQLite, a CHECK on PostgreSQL).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from reviews.core import warehouse as wh
from reviews.core.config import Limits
from reviews.returns import landing
from reviews.returns.ingest import LoadError, ingest_partnership
from reviews.returns.readers import BEYOND, MAX_CELLS, MAX_COLUMNS, ReadError, read_csv_return, read_xlsx_return
from tests.unit.test_security_bad_input import HEADER, _csv, _row

KEY = b"hostile-files-test-key-0123456789"
AS_OF = date(2024, 7, 31)
CLOCK = lambda: datetime(2030, 1, 1, tzinfo=timezone.utc)  # noqa: E731
SECRET = "REF-SECRET-77"  # a child reference in a file the warehouse refuses: never in a log


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)

    def messages(self) -> list[str]:
        return [r.getMessage() for r in self.records]

    def text(self) -> str:
        out = []
        for r in self.records:
            out.append(r.getMessage())
            if r.exc_info:
                out.append(logging.Formatter().formatException(r.exc_info))
        return "\n".join(out)


@pytest.fixture
def logs():
    handler = _Records()
    logger = logging.getLogger("reviews")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def _files(engine) -> dict[str, dict]:
    with engine.connect() as conn:
        return {r["file_name"]: dict(r) for r in conn.execute(sa.text(
            "select * from return_files where partnership_code = 'knowsley' order by file_id")).mappings()}


def _ids(engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.text("select notification_id from notifications")).scalars())


def _ingest(engine, cfg, tmp_path):
    return ingest_partnership(engine, cfg, "knowsley", tmp_path / "inbox", tmp_path / "raw", KEY, AS_OF, clock=CLOCK)


def _three_files(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox" / "knowsley"
    folder.mkdir(parents=True)
    for day, nid in (("01", "KNO-A1"), ("02", "KNO-B1"), ("03", "KNO-C1")):
        (folder / f"notifications_2024-07-{day}.csv").write_text(_csv(_row(nid, f"REF-{nid}")), encoding="utf-8")
    return folder


# ------------------------------------------------------------------ one file never stops another

_CHILD = """
import json, sys
from datetime import date, datetime, timezone
from pathlib import Path
from reviews.core import warehouse as wh
from reviews.core.config import load_config
from reviews.returns.ingest import ingest_partnership
tmp = Path(sys.argv[1])
engine = wh.make_engine(f"sqlite:///{tmp / 'warehouse.db'}")
summary = ingest_partnership(engine, load_config(), "knowsley", tmp / "inbox", tmp / "raw", sys.argv[2].encode(),
                             date(2024, 7, 31), clock=lambda: datetime(2030, 1, 1, tzinfo=timezone.utc))
print(json.dumps(summary.to_dict()))
"""


def _without_file_capabilities() -> list[str]:
    """A command prefix that runs a process as root without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH,
    so file permissions apply to it (the tests run as root, where chmod 000 stops nothing)."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv (util-linux) to drop the file-access capabilities")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search", "--"]


def test_a_file_that_cannot_be_read_fails_alone_and_loads_once_readable(tmp_path, cfg, logs):
    folder = _three_files(tmp_path)
    locked = folder / "notifications_2024-07-02.csv"
    locked.chmod(0)
    prefix = _without_file_capabilities()
    probe = subprocess.run([*prefix, sys.executable, "-c", "import sys; open(sys.argv[1], 'rb')", str(locked)],
                           capture_output=True, text=True)
    assert "PermissionError" in probe.stderr  # the fault is real: the file cannot be read
    done = subprocess.run([*prefix, sys.executable, "-c", _CHILD, str(tmp_path), KEY.decode()],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert (summary["files_new"], summary["files_failed"], summary["rows_loaded"]) == (3, 1, 2)
    engine = wh.make_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    try:
        files = _files(engine)
        bad = files["notifications_2024-07-02.csv"]
        assert bad["status"] == "failed" and bad["rows_read"] == 0
        assert bad["error"] == "PermissionError while reading the file: it was not read or copied"
        assert bad["raw_path"] == landing.NOT_COPIED
        assert [files[n]["status"] for n in ("notifications_2024-07-01.csv", "notifications_2024-07-03.csv")] == [
            "loaded", "loaded"]
        assert _ids(engine) == ["KNO-A1", "KNO-C1"]
        assert "knowsley: notifications_2024-07-02.csv could not be read (PermissionError while reading the file)" \
            in done.stderr
        # Found again, still unreadable: recorded once, not every day.
        again = subprocess.run([*prefix, sys.executable, "-c", _CHILD, str(tmp_path), KEY.decode()],
                               capture_output=True, text=True, timeout=300)
        assert json.loads(again.stdout.strip().splitlines()[-1])["files_skipped_already_loaded"] == 3
        # Made readable, it loads: its real checksum is new.
        locked.chmod(0o644)
        summary = _ingest(engine, cfg, tmp_path)
        assert (summary.files_new, summary.files_failed, summary.rows_loaded) == (1, 0, 1)
        assert _ids(engine) == ["KNO-A1", "KNO-B1", "KNO-C1"]
    finally:
        engine.dispose()


def test_a_file_that_cannot_be_copied_fails_alone_and_is_copied_next_time(tmp_path, cfg, logs):
    folder = _three_files(tmp_path)
    [_a, b, _c] = landing.discover(folder, "knowsley")
    part = tmp_path / "raw" / "knowsley" / f"{b.sha256}.csv.part"
    part.mkdir(parents=True)  # the copy's partial file cannot be written: a real IsADirectoryError
    engine = wh.make_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    try:
        summary = _ingest(engine, cfg, tmp_path)
        assert (summary.files_new, summary.files_failed, summary.rows_loaded) == (3, 1, 2)
        bad = _files(engine)["notifications_2024-07-02.csv"]
        assert (bad["status"], bad["raw_path"]) == ("failed", landing.NOT_COPIED)
        assert bad["error"] == "IsADirectoryError while copying the file: it was not kept or read"
        assert bad["sha256"] != b.sha256  # a stand-in: the file is copied again next run
        assert _ids(engine) == ["KNO-A1", "KNO-C1"]
        assert any(m == "knowsley: notifications_2024-07-02.csv could not be kept (IsADirectoryError while copying "
                   "the file)" for m in logs.messages())
        again = _ingest(engine, cfg, tmp_path)  # still failing: not recorded twice
        assert (again.files_new, again.files_skipped_already_loaded) == (0, 3)
        part.rmdir()
        fixed = _ingest(engine, cfg, tmp_path)
        assert (fixed.files_new, fixed.files_failed, fixed.rows_loaded) == (1, 0, 1)
        assert _ids(engine) == ["KNO-A1", "KNO-B1", "KNO-C1"]
    finally:
        engine.dispose()


# ------------------------------------------------------- the warehouse refusing one file's rows


def _refuse_a_row(engine, value: str) -> None:
    """The warehouse's own refusal of one value, as a real database error: a trigger on SQLite, a
    CHECK constraint on PostgreSQL (whose error text quotes the whole failing row)."""
    wh.ensure_schema(engine)
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(sa.text(f"create trigger refuse before insert on notifications when new.notification_id = "
                                 f"'{value}' begin select raise(abort, 'refused {value}'); end"))
        else:
            conn.execute(sa.text(f"alter table notifications add constraint refuse check (notification_id <> '{value}')"))


@pytest.mark.parametrize("url", ["sqlite_url", pytest.param("postgres_url", marks=pytest.mark.postgres)])
def test_rows_the_warehouse_refuses_fail_only_their_file(url, request, tmp_path, cfg, logs):
    folder = _three_files(tmp_path)
    (folder / "notifications_2024-07-02.csv").write_text(
        _csv(_row("KNO-B1", "REF-KNO-B1"), _row("KNO-BAD", SECRET)), encoding="utf-8")
    engine = wh.make_engine(request.getfixturevalue(url))
    try:
        _refuse_a_row(engine, "KNO-BAD")
        summary = _ingest(engine, cfg, tmp_path)  # the task does not fail for one file's data
        assert (summary.files_new, summary.files_failed, summary.rows_loaded) == (3, 1, 2)
        files = _files(engine)
        bad = files["notifications_2024-07-02.csv"]
        assert bad["status"] == "failed" and bad["rows_loaded"] == 0 and bad["datasets"] is None
        kind = "IntegrityError" if engine.dialect.name == "sqlite" else "CheckViolation, SQLSTATE 23514"
        assert bad["error"] == (f"the warehouse refused the file's rows ({kind}, table notifications): "
                                "nothing of it was loaded")
        assert [files[n]["status"] for n in ("notifications_2024-07-01.csv", "notifications_2024-07-03.csv")] == [
            "loaded", "loaded"]
        assert _ids(engine) == ["KNO-A1", "KNO-C1"]  # nothing of the refused file, not even its good row
        with engine.connect() as conn:
            assert conn.execute(sa.text("select count(*) from record_history")).scalar() == 2
            assert conn.execute(sa.text("select count(*) from quarantine")).scalar() == 0
        # The database's own text quotes the value ("refused KNO-BAD", "Failing row contains (...)"):
        # none of it is logged, only the kind, the SQLSTATE and the table.
        text = logs.text()
        assert "KNO-BAD" not in text and SECRET not in text and "Failing row" not in text
        assert f"knowsley: notifications_2024-07-02.csv failed (read 0, loaded 0, quarantined 0): {bad['error']}" \
            in logs.messages()
    finally:
        engine.dispose()


@pytest.mark.parametrize("url", ["sqlite_url", pytest.param("postgres_url", marks=pytest.mark.postgres)])
def test_a_file_of_several_gigabytes_is_recorded_with_its_reason_on_both_databases(url, request, tmp_path, cfg, logs):
    """Its size does not fit PostgreSQL's 32-bit return_files.size_bytes: the record is refused, so
    the file is recorded on its own, its size capped, its reason kept; the other files load."""
    folder = _three_files(tmp_path)
    with (folder / "notifications_2024-07-08.csv").open("wb") as fh:
        fh.truncate(5 * 1024**3)  # sparse: no disk used
    engine = wh.make_engine(request.getfixturevalue(url))
    try:
        summary = _ingest(engine, cfg, tmp_path)
        assert (summary.files_new, summary.files_failed, summary.rows_loaded) == (4, 1, 3)
        big = _files(engine)["notifications_2024-07-08.csv"]
        assert big["status"] == "failed" and big["raw_path"] == landing.NOT_KEPT
        assert big["error"].startswith("the file is 5.0 GB, over the size limit of 100.0 MB")
        assert big["size_bytes"] == 5 * 1024**3  # return_files.size_bytes is 64-bit on both databases
        assert _ids(engine) == ["KNO-A1", "KNO-B1", "KNO-C1"]
    finally:
        engine.dispose()


@pytest.mark.parametrize("url", ["sqlite_url", pytest.param("postgres_url", marks=pytest.mark.postgres)])
def test_a_warehouse_fault_that_is_not_the_data_fails_the_task(url, request, tmp_path, cfg, logs):
    """A missing table is the warehouse's fault, not a file's: raised (so Airflow retries), its
    text reduced to the kind and table, and nothing recorded as failed."""
    _three_files(tmp_path)
    engine = wh.make_engine(request.getfixturevalue(url))
    try:
        wh.ensure_schema(engine)
        real = wh.ensure_schema
        with engine.begin() as conn:
            conn.execute(sa.text("drop table record_history"))
        request.getfixturevalue("monkeypatch").setattr(wh, "ensure_schema", lambda e: None)  # keep it missing
        with pytest.raises(LoadError) as raised:
            _ingest(engine, cfg, tmp_path)
        assert not raised.value.data_problem
        assert str(raised.value).endswith("table record_history") and "REF-" not in str(raised.value)
        real(engine)
        assert _files(engine) == {}  # nothing recorded: the next try loads everything
    finally:
        engine.dispose()


# ------------------------------------------------------------------------- bounded CSV reading


def _peak_reading(path: Path, limits: str = "") -> tuple[dict, int]:
    """Read `path` in a fresh process: (what came of it, peak memory in bytes)."""
    code = ("import json, resource, sys, time\n"
            "from pathlib import Path\n"
            "from reviews.core.config import Limits\n"
            "from reviews.returns.readers import ReadError, read_csv_return\n"
            "start = time.perf_counter()\n"
            "try:\n"
            f"    t = read_csv_return(Path(sys.argv[1]), 'notifications', {{}}, limits=Limits({limits}))\n"
            "    out = {'rows': len(t.tables['notifications'])}\n"
            "except ReadError as exc:\n"
            "    out = {'error': str(exc)}\n"
            "out['seconds'] = time.perf_counter() - start\n"
            # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, so a child of a big pytest
            # process would report the parent's size.
            "hwm = [line for line in Path('/proc/self/status').read_text().splitlines() if line.startswith('VmHWM:')]\n"
            "print(json.dumps(out)); print(int(hwm[0].split()[1]) * 1024)\n")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out, peak = done.stdout.strip().splitlines()[-2:]
    return json.loads(out), int(peak)


def test_a_ten_megabyte_line_is_refused_at_once_with_little_memory(tmp_path):
    path = tmp_path / "notifications_2024-07-01.csv"
    with path.open("wb") as fh:
        fh.write(f"{HEADER}\r\n{_row('KNO-1', 'REF-1')}\r\n".encode())
        fh.write(b"," * (10 * 1000 * 1000) + b"\r\n")
    got, peak = _peak_reading(path)
    assert got["error"].startswith("line 3 is longer than the limit of 1,048,576 characters (config "
                                   "limits.max_line_bytes)")
    assert got["seconds"] < 2
    # Before the limit this took 2.8 GB; now the imports are most of it (pandas alone is ~100 MB).
    assert peak < 400 * 2**20, peak


def test_the_line_limit_comes_from_the_config_and_counts_a_quoted_record_whole(tmp_path):
    path = tmp_path / "n.csv"
    path.write_text(f"{HEADER}\r\n{_row('KNO-1', 'x' * 900)}\r\n", encoding="utf-8")
    assert len(read_csv_return(path, "notifications", {}).tables["notifications"]) == 1
    with pytest.raises(ReadError, match=r"^line 2 is longer than the limit of 800 characters"):
        read_csv_return(path, "notifications", {}, limits=Limits(max_line_bytes=800))
    # A quoted cell holding line breaks: each line short, the record over the limit.
    path.write_text(f'{HEADER}\r\nKNO-1,"' + "short line\r\n" * 100 + '",x\r\n', encoding="utf-8")
    assert len(read_csv_return(path, "notifications", {}).tables["notifications"]) == 1
    with pytest.raises(ReadError, match=r"^the record starting at line 2 is longer than the limit of 800 characters"):
        read_csv_return(path, "notifications", {}, limits=Limits(max_line_bytes=800))

def test_lines_cut_between_chunks_are_read_whole(tmp_path):
    """The file is read 1 MiB at a time: a line across the edge, and a \r\n split by it, are one line."""
    head = HEADER + "\r\n"
    rows = []
    while len(head) + sum(map(len, rows)) < (1 << 20) - 2000:
        rows.append(_row(f"KNO-{len(rows)}", f"REF-{len(rows)}") + "\r\n")
    body = "".join(rows)
    cut = (1 << 20) - 1 - len(head) - len(body)  # the filler's cell makes its \r the chunk's last byte
    filler = _row("KNO-F", "REF-F", ethnicity="y" * (cut - len(_row("KNO-F", "REF-F"))))
    assert len((head + body + filler).encode()) == (1 << 20) - 1
    path = tmp_path / "n.csv"
    path.write_text(head + body + filler + "\r\n" + _row("KNO-Z", "REF-Z") + "\r", encoding="utf-8")
    table = read_csv_return(path, "notifications", {}).tables["notifications"]
    assert table["notification_id"].tolist() == [f"KNO-{i}" for i in range(len(rows))] + ["KNO-F", "KNO-Z"]
    assert table["_row"].tolist() == list(range(2, len(rows) + 4))  # no blank line between \r and \n


def test_a_csv_keeps_its_first_columns_and_reports_a_row_with_more_as_ragged(tmp_path, cfg):
    path = tmp_path / "n.csv"
    wide = [f"h{i}" for i in range(MAX_COLUMNS + 300)]
    path.write_text(",".join(HEADER.split(",") + wide) + "\r\n"
                    + _row("KNO-1", "REF-1") + "," * (MAX_COLUMNS + 300) + "\r\n"  # blank beyond: nothing
                    + _row("KNO-2", "REF-2") + "," * (MAX_COLUMNS + 200) + "late\r\n"
                    + '"KNO-3",' + _row("KNO-3", "REF-3").split(",", 1)[1] + ",x" * (MAX_COLUMNS + 10) + "\r\n",
                    encoding="utf-8")
    table = read_csv_return(path, "notifications", {}).tables["notifications"]
    assert table.shape[1] == MAX_COLUMNS + 1 + 2  # the first MAX_COLUMNS, one for what is beyond, _row and _extra
    assert table.columns[MAX_COLUMNS] == BEYOND
    assert table["notification_id"].tolist() == ["KNO-1", "KNO-2", "KNO-3"]
    assert table[BEYOND].tolist() == ["", BEYOND, BEYOND]
    # The row cap applies after the column cap: MAX_CELLS cells in all (blank ones too).
    path.write_text(HEADER + "\r\n" + ("," * (MAX_COLUMNS - 1) + "\r\n") * (MAX_CELLS // MAX_COLUMNS + 1))
    with pytest.raises(ReadError, match=f"^the table has more than {MAX_CELLS:,} cells"):
        read_csv_return(path, "notifications", {})


def test_a_sheet_is_held_to_the_cell_cap_too(tmp_path, monkeypatch):
    from reviews.returns import readers

    path = tmp_path / "notifications_2024-07-01.xlsx"
    _two_sheet_workbook(path, "notifications", "Notes")  # 2 rows of 2 cells
    assert len(read_xlsx_return(path, {}, "notifications").tables["notifications"]) == 1
    monkeypatch.setattr(readers, "MAX_CELLS", 3)
    with pytest.raises(ReadError, match="^the table has more than 3 cells"):
        read_xlsx_return(path, {}, "notifications")


def test_a_csv_with_more_columns_than_the_cap_loads_its_good_rows(tmp_path, cfg, logs):
    folder = tmp_path / "inbox" / "knowsley"
    folder.mkdir(parents=True)
    (folder / "notifications_2024-07-01.csv").write_text(
        _csv(_row("KNO-1", "REF-1"), _row("KNO-2", "REF-2") + "," * MAX_COLUMNS + "beyond"), encoding="utf-8")
    engine = wh.make_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    try:
        summary = _ingest(engine, cfg, tmp_path)
        assert (summary.rows_loaded, summary.rows_quarantined) == (1, 1)
        with engine.connect() as conn:
            assert conn.execute(sa.text("select record_id, failed_rules from quarantine")).all() == [
                ("KNO-2", "ragged_row")]
    finally:
        engine.dispose()


# ----------------------------------------------------------------------------- sheet names


def _two_sheet_workbook(path: Path, first: str, second: str) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    for i, title in enumerate((first, second)):
        ws = wb.active if i == 0 else wb.create_sheet()
        ws.title = title
        ws.append(["notification_id", "aware_date"])
        ws.append([f"KNO-{i}", "01/05/2024"])
    wb.save(path)


@pytest.mark.parametrize("name,dataset", [("return_2024-07-01.xlsx", None),
                                          ("notifications_2024-07-01.xlsx", "notifications")])
def test_two_sheets_whose_names_fold_alike_are_an_error_naming_both(tmp_path, name, dataset):
    path = tmp_path / name
    _two_sheet_workbook(path, "notifications", "Notifications_")
    with pytest.raises(ReadError) as raised:
        read_xlsx_return(path, {}, dataset)
    assert str(raised.value).startswith("the workbook has two sheets for the notifications, 'notifications' and "
                                        "'Notifications_' (sheet names are compared ignoring case")
    _two_sheet_workbook(path, "Notifications", "Notes")  # no collision: read as before
    assert read_xlsx_return(path, {}, dataset).tables["notifications"]["notification_id"].tolist() == ["KNO-0"]


def test_a_sheet_name_in_an_error_is_shown_safely(tmp_path):
    path = tmp_path / "return_2024-07-01.xlsx"
    _two_sheet_workbook(path, "notifications", "\u3000NOTIFICATIONS\u2003")  # spaces fold, and are not shown
    with pytest.raises(ReadError, match=r"'notifications' and '_NOTIFICATIONS_'"):
        read_xlsx_return(path, {})


def test_a_sheet_collision_fails_the_file_in_words_through_ingest(tmp_path, cfg, logs):
    folder = _three_files(tmp_path)
    _two_sheet_workbook(folder / "return_2024-07-04.xlsx", "notifications", "Notifications_")
    engine = wh.make_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    try:
        summary = _ingest(engine, cfg, tmp_path)
        assert (summary.files_failed, summary.rows_loaded) == (1, 3)
        assert _files(engine)["return_2024-07-04.xlsx"]["error"].startswith(
            "the workbook has two sheets for the notifications, 'notifications' and 'Notifications_'")
    finally:
        engine.dispose()


# --------------------------------------------------------------------------------- encodings


def test_mixed_utf8_and_windows_1252_are_each_read_right_and_noted(tmp_path, cfg):
    path = tmp_path / "notifications_2024-07-01.csv"
    path.write_bytes((HEADER + "\r\n").encode() + _row("KNO-1", "REF-1", ethnicity="Café").encode("utf-8")
                     + b"\r\n" + _row("KNO-2", "REF-2", ethnicity="Café – “x”").encode("cp1252") + b"\r\n")
    result = read_csv_return(path, "notifications", {})
    assert result.tables["notifications"]["ethnicity"].tolist() == ["Café", "Café – “x”"]
    assert result.notes == ["the file mixes UTF-8 with another encoding: 4 character(s) that were not UTF-8 were "
                            "read as Windows-1252; check the file's encoding (save it as CSV UTF-8)"]
    # A byte neither defines: U+FFFD, counted. All Windows-1252, or all UTF-8: no note.
    path.write_bytes((HEADER + "\r\n" + _row("KNO-3", "REF-3", ethnicity="Caf\xe9 \x81\x8d")).encode("latin-1"))
    result = read_csv_return(path, "notifications", {})
    assert result.tables["notifications"]["ethnicity"].tolist() == ["Café \ufffd\ufffd"]
    assert result.notes == ["2 character(s) could not be read in any encoding and are shown as \ufffd; check the "
                            "file's encoding (save it as CSV UTF-8)"]
    for encoding in ("cp1252", "utf-8", "utf-8-sig"):
        path.write_bytes((HEADER + "\r\n" + _row("KNO-4", "REF-4", ethnicity="Café “x”")).encode(encoding))
        result = read_csv_return(path, "notifications", {})
        assert (result.tables["notifications"]["ethnicity"].tolist(), result.notes) == (["Café “x”"], []), encoding


@pytest.mark.parametrize("pad", ["", "x"])  # either way, one é's two bytes fall across the 1 MiB chunk edge
def test_a_character_split_between_chunks_is_read_whole(tmp_path, pad):
    path = tmp_path / "n.csv"
    before = "".join(_row(f"KNO-{i}", f"REF-{i}") + "\r\n" for i in range(14000))  # over 1 MiB
    assert len(before) > 1 << 20
    cell = "é" * 100
    after = "".join(_row(f"KNO-{i}{pad}", f"REF-{i}", ethnicity=cell) + "\r\n" for i in range(400))
    path.write_bytes((HEADER + "\r\n" + before[: (1 << 20) - len(HEADER) - 2 - 150]).encode()
                     + b"\r\n" + after.encode())
    result = read_csv_return(path, "notifications", {})
    assert result.tables["notifications"]["ethnicity"].tolist()[-400:] == [cell] * 400 and result.notes == []


def test_the_encoding_note_reaches_the_files_record(tmp_path, cfg):
    folder = tmp_path / "inbox" / "knowsley"
    folder.mkdir(parents=True)
    (folder / "notifications_2024-07-01.csv").write_bytes(
        (HEADER + "\r\n" + _row("KNO-1", "REF-1", ethnicity="Café")).encode("utf-8") + b"\r\n"
        + _row("KNO-2", "REF-2", ethnicity="Café").encode("cp1252") + b"\r\n")
    engine = wh.make_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    try:
        _ingest(engine, cfg, tmp_path)
        [record] = _files(engine).values()
        assert "the file mixes UTF-8 with another encoding: 1 character(s)" in record["notes"]
        with engine.connect() as conn:
            assert conn.execute(sa.text("select ethnicity from notifications order by 1")).scalars().all() == [
                "Café", "Café"]
    finally:
        engine.dispose()


# ------------------------------------------------------------- links, pipes, sockets, folders


def test_links_pipes_sockets_and_folders_are_skipped_with_a_log_line_each(tmp_path, cfg, logs, monkeypatch):
    folder = _three_files(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "notifications_2024-07-05.csv").write_text(_csv(_row("KNO-L1", "REF-L1")))
    (folder / "notifications_2024-07-04.csv").symlink_to("/etc/passwd")
    (folder / "notifications_2024-07-05.csv").symlink_to(elsewhere / "notifications_2024-07-05.csv")
    os.mkfifo(folder / "notifications_2024-07-06.csv")
    monkeypatch.chdir(folder)  # a Unix socket's path must be short: bound relative to the folder
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind("notifications_2024-07-07.csv")
    (folder / "notifications_2024-07-08.csv").mkdir()
    (folder / "notifications_2024-07-08.csv" / "notifications_2024-07-09.csv").write_text(_csv(_row("KNO-D1", "D")))
    (folder / "\x1bsub").mkdir()
    engine = wh.make_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    try:
        started = time.monotonic()
        summary = _ingest(engine, cfg, tmp_path)
        assert time.monotonic() - started < 60  # the pipe was never opened (it would block)
    finally:
        sock.close()
        engine.dispose()
    assert (summary.files_seen, summary.rows_loaded) == (3, 3)
    skipped = [m for m in logs.messages() if " skipped " in m]
    assert sorted(skipped) == [
        "knowsley: skipped _sub: a folder (a drop folder holds files only; sub-folders are not read)",
        "knowsley: skipped notifications_2024-07-04.csv: a symbolic link (links are never followed)",
        "knowsley: skipped notifications_2024-07-05.csv: a symbolic link (links are never followed)",
        "knowsley: skipped notifications_2024-07-06.csv: a named pipe, not a regular file",
        "knowsley: skipped notifications_2024-07-07.csv: a socket, not a regular file",
        "knowsley: skipped notifications_2024-07-08.csv: a folder (a drop folder holds files only; sub-folders are "
        "not read)",
    ]
    passwd = Path("/etc/passwd").read_bytes()
    for kept in (tmp_path / "raw").rglob("*"):
        assert kept.is_dir() or kept.read_bytes() != passwd
    assert _ids(engine) == ["KNO-A1", "KNO-B1", "KNO-C1"]


@pytest.mark.parametrize("swap", ["link", "pipe"])
def test_a_file_swapped_after_listing_is_never_read(tmp_path, cfg, logs, swap, monkeypatch):
    folder = _three_files(tmp_path)
    found = landing.discover(folder, "knowsley")
    target = folder / "notifications_2024-07-02.csv"
    target.unlink()
    if swap == "link":
        target.symlink_to("/etc/passwd")
    else:
        os.mkfifo(target)
    with pytest.raises(OSError) as opening:  # opened without following the link, or seen not to be a file
        landing.open_regular(target)
    assert type(opening.value) is (OSError if swap == "link" else landing.NotARegularFile)
    with pytest.raises(OSError):
        landing.keep_raw(found[1], tmp_path / "raw")
    assert not any(p.is_file() for p in (tmp_path / "raw").rglob("*"))
    # Through ingest (the swap between discover and the copy): that file fails, the others load.
    from reviews.returns import ingest

    monkeypatch.setattr(ingest, "discover", lambda *a, **k: found)  # the listing from before the swap
    engine = wh.make_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    try:
        summary = _ingest(engine, cfg, tmp_path)
        assert (summary.files_failed, summary.rows_loaded) == (1, 2)
        error = _files(engine)["notifications_2024-07-02.csv"]["error"]
    finally:
        engine.dispose()
    kind = "OSError" if swap == "link" else "NotARegularFile"  # O_NOFOLLOW's ELOOP; fstat after opening
    assert error == f"{kind} while copying the file: it was not kept or read"
    passwd = Path("/etc/passwd").read_bytes()
    assert all(p.read_bytes() != passwd for p in (tmp_path / "raw").rglob("*") if p.is_file())


def test_sftp_entries_that_are_not_files_are_skipped_with_a_log_line(tmp_path, logs):
    import stat as st
    from types import SimpleNamespace

    from reviews.returns.sources import fetch_sftp

    class Client:
        def listdir_attr(self, path):
            return [SimpleNamespace(filename=n, st_mode=m, st_size=5, st_mtime=0, st_atime=0) for n, m in (
                ("notifications_2024-07-01.csv", st.S_IFREG | 0o644), ("link.csv", st.S_IFLNK | 0o777),
                ("sub", st.S_IFDIR | 0o755), ("pipe\x07", st.S_IFIFO | 0o644), (".hidden", st.S_IFREG | 0o644))]

        def get(self, remote, local):
            Path(local).write_text("a,b\r\n")

    got = fetch_sftp(Client(), "/returns", tmp_path / "sftp")
    assert got.fetched == ["notifications_2024-07-01.csv"]
    assert sorted(m for m in logs.messages() if "skipped" in m) == [
        "SFTP _returns: skipped .hidden: a hidden file",
        "SFTP _returns: skipped link.csv: a symbolic link (links are never followed)",
        "SFTP _returns: skipped pipe_: a named pipe, not a regular file",
        "SFTP _returns: skipped sub: a folder (sub-folders are not read)",
    ]


def test_inbox_entries_that_are_no_partnerships_folder_are_logged_once_each(tmp_path, logs):
    from reviews.returns.sources import unknown_inbox_entries

    inbox = tmp_path / "inbox"
    for name in ("knowsley", "sefton", "old_returns", ".sync"):
        (inbox / name).mkdir(parents=True)
    (inbox / "notifications_2024-07-01.csv").write_text("x")
    (inbox / "wirral").symlink_to(tmp_path)  # a partnership's folder may be a link (a mount): its own
    (inbox / "elsewhere").symlink_to(tmp_path)
    assert unknown_inbox_entries(inbox, ["knowsley", "sefton", "wirral"]) == [
        "elsewhere", "notifications_2024-07-01.csv", "old_returns"]
    assert [m for m in logs.messages() if m.startswith("inbox: skipped")] == [
        "inbox: skipped elsewhere: a symbolic link (links are never followed)",
        "inbox: skipped notifications_2024-07-01.csv: not a partnership's folder (returns go in "
        "inbox/{partnership}/): not read",
        "inbox: skipped old_returns: a folder named after no partnership in the config: not read",
    ]
    assert unknown_inbox_entries(tmp_path / "none", ["knowsley"]) == []
