"""Bad input: every kind of broken or hostile file gets a clear error naming the partnership, the
file, the row (where there is one) and the rule or limit, and nothing else is lost.

One drop folder holds a good return and every bad file at once; one ingest run must load the
good rows, record each bad file with its reason, quarantine each bad row with its rule, write
nothing outside the raw folder, and escape everything it shows in its reports.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
import zipfile
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from reviews.returns import landing
from reviews.core import warehouse as wh
from reviews.core.config import Limits
from reviews.learning.exports import build_workbook
from reviews.returns.quality_reports import build_quality_reports
from reviews.returns.ingest import ingest_partnership
from reviews.returns.readers import ReadError, read_csv_return, read_xlsx_return
from reviews.returns.sources import fetch_sftp

KEY = b"bad-input-test-key-0123456789"
AS_OF = date(2024, 7, 31)
CLOCK = lambda: datetime(2030, 1, 1, tzinfo=timezone.utc)  # noqa: E731
HEADER = ("notification_id,child_ref,incident_date,aware_date,notified_date,incident_type,age_years,sex,"
          "ethnicity,disability,looked_after,cp_plan,cin_plan,known_to_csc")
SQL = "'; DROP TABLE notifications; --"
SCRIPT = '<script>alert("x")</script>'


def _row(nid: str, ref: str, **over) -> str:
    values = {"notification_id": nid, "child_ref": ref, "incident_date": "01/05/2024", "aware_date": "02/05/2024",
              "notified_date": "08/05/2024", "incident_type": "death", "age_years": "7", "sex": "female",
              "ethnicity": "", "disability": "N", "looked_after": "N", "cp_plan": "N", "cin_plan": "N",
              "known_to_csc": "Y", **over}
    return ",".join(values[c] for c in HEADER.split(","))


def _csv(*rows: str) -> str:
    return HEADER + "\r\n" + "\r\n".join(rows) + "\r\n"


# --------------------------------------------------------------------------- workbooks by hand

_CT = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
       '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
       '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
       '<Default Extension="xml" ContentType="application/xml"/>'
       '<Override PartName="/xl/workbook.xml" '
       'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
       '<Override PartName="/xl/worksheets/sheet1.xml" '
       'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>')
_RELS = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
         '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
         '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
         'officeDocument" Target="xl/workbook.xml"/></Relationships>')
_WB = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
       '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
       'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
       '<sheets><sheet name="notifications" sheetId="1" r:id="rId1"/></sheets></workbook>')
_WBRELS = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
           '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
           '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
           'worksheet" Target="worksheets/sheet1.xml"/></Relationships>')
_SHEET_HEAD = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
               '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">{dimension}<sheetData>'
               '<row r="1"><c r="A1" t="inlineStr"><is><t>notification_id</t></is></c>'
               '<c r="B1" t="inlineStr"><is><t>aware_date</t></is></c></row>')


def _workbook_by_hand(path: Path, rows: int, *, extra: dict[str, bytes] | None = None, sheet_head: str | None = None) -> None:
    """A minimal .xlsx whose sheet has a header and `rows` numbered rows (streamed: 1,000,000 is fine)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", _CT)
        zf.writestr("_rels/.rels", _RELS)
        zf.writestr("xl/workbook.xml", _WB)
        zf.writestr("xl/_rels/workbook.xml.rels", _WBRELS)
        with zf.open("xl/worksheets/sheet1.xml", "w") as fh:
            head = sheet_head or _SHEET_HEAD.format(dimension=f'<dimension ref="A1:B{rows + 1}"/>')
            fh.write(head.encode())
            chunk = []
            for i in range(2, rows + 2):
                chunk.append(f'<row r="{i}"><c r="A{i}"><v>{i}</v></c></row>')
                if len(chunk) == 50_000:
                    fh.write("".join(chunk).encode())
                    chunk = []
            fh.write(("".join(chunk) + "</sheetData></worksheet>").encode())
        for name, data in (extra or {}).items():
            with zf.open(name, "w") as fh:  # streamed, so a huge part costs no memory
                for i in range(0, len(data) if isinstance(data, bytes) else data, 1 << 20):
                    fh.write(data[i:i + (1 << 20)] if isinstance(data, bytes) else b"\0" * min(1 << 20, data - i))


def _formula_workbook(path: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "notifications"
    ws.append(HEADER.split(","))
    ws.append(["KNO-F1", "REF-F1", "01/05/2024", "02/05/2024", "08/05/2024", "death", 7, "F", "=1+1",
               "N", "N", "N", "N", "Y"])
    ws.append(["KNO-F2", "REF-F2", "01/05/2024", "=TODAY()", "08/05/2024", "death", 7, "F",
               '=HYPERLINK("http://evil.example/","click")', "N", "N", "N", "N", "Y"])
    wb.save(path)


# ------------------------------------------------------------------------------ the drop folder

GOOD = "notifications_2024-07-01.csv"


def _drop_everything(folder: Path) -> dict[str, str]:
    """Write every bad file beside a good one; return {file name as recorded: expected error text}."""
    folder.mkdir(parents=True)
    (folder / GOOD).write_text(_csv(_row("KNO-G1", "REF-G1"), _row("KNO-G2", "REF-G2")), encoding="utf-8")
    expected = {}

    name = "notifications_2024-07-02.csv"  # unbalanced quote: the rest of the file is one cell
    (folder / name).write_text(_csv(_row("KNO-Q1", "REF-Q1"), _row("KNO-Q2", '"REF-Q2'), _row("KNO-Q3", "REF-Q3")))
    expected[name] = "the CSV is malformed at line 4 (unexpected end of data)"
    name = "notifications_2024-07-03.csv"  # binary junk
    (folder / name).write_bytes(os.urandom(2048) + b"\x00" + os.urandom(2048))
    expected[name] = "the file contains binary data and is not a CSV text file"
    name = "notifications_2024-07-04.csv"  # UTF-16 without a byte-order mark cannot be told from binary
    (folder / name).write_bytes(_csv(_row("KNO-U1", "REF-U1")).encode("utf-16-le"))
    expected[name] = "the file contains binary data"
    name = "notifications_2024-07-05.xlsx"  # a zip bomb: one part compressed a thousand times
    _workbook_by_hand(folder / name, 3, extra={"xl/media/image1.bin": 8 * 1024 * 1024})
    expected[name] = "looks like a zip bomb and was not opened"
    name = "notifications_2024-07-06.xlsx"  # a zip bomb: would unpack to more than the limit
    _workbook_by_hand(folder / name, 3, extra={"xl/media/image1.bin": Limits().max_xlsx_uncompressed_bytes + 1})
    expected[name] = "(config limits.max_xlsx_uncompressed_bytes): it was not opened"
    name = "notifications_2024-07-07.xlsx"  # 1,000,000 rows
    _workbook_by_hand(folder / name, 1_000_000)
    expected[name] = "the table has more than 100,000 rows (config limits.max_rows)"
    name = "notifications_2024-07-08.csv"  # several GB: a sparse file, no real disk used
    with (folder / name).open("wb") as fh:
        fh.truncate(5 * 1024**3)
    expected[name] = "the file is 5.0 GB, over the size limit of 100.0 MB (config limits.max_file_bytes): it was not read or copied"
    name = "notifications_2024-07-09.xlsx"  # XML entity expansion ("billion laughs") in the sheet
    laughs = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
              + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
              + ']><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
              '<row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c></row>')
    _workbook_by_hand(folder / name, 0, sheet_head=laughs)
    expected[name] = "(ParseError)"  # the parser's own limit on entity expansion
    name = "notifications_2024-07-10.csv"  # a trailing newline in the name: not the template
    (folder / (name + "\n")).write_text(_csv(_row("KNO-N1", "REF-N1")))
    expected["notifications_2024-07-10.csv_"] = "the file name does not follow the template"
    (folder / "returns\\..\\..\\notifications_2024-07-11.csv").write_text(_csv(_row("KNO-N2", "REF-N2")))
    expected["returns_.._.._notifications_2024-07-11.csv"] = "the file name does not follow the template"
    (folder / "..\\notifications_2024-07-11.csv").write_text(_csv(_row("KNO-N4", "REF-N4")))  # hidden: ignored
    (folder / "\x1b[31mnotifications_2024-07-12.csv").write_text(_csv(_row("KNO-N3", "REF-N3")))
    expected["__31mnotifications_2024-07-12.csv"] = "the file name does not follow the template"
    return expected


def _hostile_rows(folder: Path) -> None:
    """Files that load: formulas, HTML, SQL meta-characters, ragged rows, other encodings."""
    _formula_workbook(folder / "notifications_2024-07-13.xlsx")
    (folder / "notifications_2024-07-14.csv").write_text(_csv(
        _row("KNO-S1", SQL, ethnicity=f'"{SQL}"'),                                  # loads, as data
        ",".join([f'"{SQL}"'] * 14),                                                # every field: quarantined
        _row("KNO-H1", "REF-H1", incident_type=SCRIPT.replace('"', "'"), sex="<img src=x onerror=alert(1)>"),
        _row("KNO-R1", "REF-R1") + ",extra,values",                                 # ragged: quarantined
        _row("KNO-R2", "REF-R2").rsplit(",", 10)[0],                                # short: blanks
        "=cmd|' /C calc'!A0," + _row("X", "REF-X").split(",", 1)[1],                # a formula-looking id: withheld
    ), encoding="utf-8")
    (folder / "notifications_2024-07-15.csv").write_bytes(  # Excel's "Unicode text": UTF-16, tabs
        b"\xff\xfe" + _csv(_row("KNO-U2", "REF-U2", ethnicity="Caf\u00e9")).replace(",", "\t").encode("utf-16-le"))
    (folder / "notifications_2024-07-16.csv").write_bytes(  # Windows-1252 with a byte it does not define
        _csv(_row("KNO-W1", "REF-W1", ethnicity="Caf\xe9 \x81")).encode("latin-1"))


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """One ingest run over the whole folder (module-scoped: the 1,000,000-row workbook is made once)."""
    from reviews.core.config import load_config

    tmp_path = tmp_path_factory.mktemp("bad-input")
    cfg = load_config()
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield from _ingest(tmp_path, cfg, monkeypatch)


def _ingest(tmp_path, cfg, monkeypatch):
    inbox, raw = tmp_path / "inbox", tmp_path / "raw"
    folder = inbox / "knowsley"
    expected = _drop_everything(folder)
    _hostile_rows(folder)
    big = folder / "notifications_2024-07-08.csv"
    real_sha, real_copy = landing.sha256_of, landing.shutil.copyfile

    def sha(path, *a, **k):
        assert Path(path) != big, "the oversized file was read"
        return real_sha(path, *a, **k)

    def copy(src, dst, *a, **k):
        assert Path(src) != big, "the oversized file was copied"
        return real_copy(src, dst, *a, **k)

    monkeypatch.setattr(landing, "sha256_of", sha)
    monkeypatch.setattr(landing.shutil, "copyfile", copy)
    before = {p for p in tmp_path.rglob("*")}
    engine = wh.make_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    caplog = _Records()
    logger = logging.getLogger("reviews")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(caplog)
    started = time.monotonic()
    try:
        summary = ingest_partnership(engine, cfg, "knowsley", inbox, raw, KEY, AS_OF, clock=CLOCK,
                                     docs_dir=tmp_path / "docs")
    finally:
        logger.removeHandler(caplog)
        logger.setLevel(level)
    took = time.monotonic() - started
    reports = build_quality_reports(engine, cfg, "knowsley", tmp_path / "quality", AS_OF, clock=CLOCK)
    created = {p for p in tmp_path.rglob("*")} - before
    yield engine, summary, expected, took, created, reports, tmp_path, caplog
    engine.dispose()


def _rows(engine, sql: str, **params) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]


def test_each_bad_file_fails_alone_with_its_reason(ingested):
    engine, summary, expected, took, created, _reports, tmp_path, caplog = ingested
    files = {f["file_name"]: f for f in _rows(engine, "select * from return_files where partnership_code = 'knowsley'")}
    for name, reason in expected.items():
        assert name in files, name
        assert files[name]["status"] == "failed" and reason in files[name]["error"], (name, files[name]["error"])
        assert files[name]["rows_loaded"] == 0
    # ... and is named, with its reason, in the task log (the partnership, the file, the rule).
    for name, reason in expected.items():
        assert any(r.getMessage().startswith(f"knowsley: {name} failed") and reason in r.getMessage()
                   for r in caplog.records), name
    # The good return and the hostile-but-readable ones loaded around them.
    assert files[GOOD]["status"] == "loaded" and files[GOOD]["rows_loaded"] == 2
    assert not any("KNO-N4" in str(f) for f in files) and len(files) == len(expected) + 5  # a hidden file is ignored
    assert summary.files_failed == len(expected)
    assert took < 60
    # The oversized file: neither read (no sha256 of it) nor copied; the record says so.
    big = files["notifications_2024-07-08.csv"]
    assert big["raw_path"] == landing.NOT_KEPT and big["size_bytes"] == 5 * 1024**3
    # Nothing was written outside the raw folder, the Data Docs and the reports, whatever the names.
    allowed = (tmp_path / "raw", tmp_path / "docs", tmp_path / "quality")
    stray = [p for p in created if not any(p == a or a in p.parents for a in allowed)
             and not p.name.startswith("warehouse.db")]
    assert stray == []
    assert all(p.parent.name == "knowsley" and len(p.stem) == 64 for p in (tmp_path / "raw").rglob("*.*"))
    # No control character reached the log.
    assert not any(c in r.getMessage() for r in caplog.records for c in ("\x1b", "\x07"))


def test_hostile_values_are_stored_as_data_and_never_run(ingested):
    engine, _summary, _expected, _took, _created, _reports, _tmp, _log = ingested
    # SQL meta-characters in every field: one row loaded as data, one quarantined as data; the
    # table is still there (every statement is parameterised).
    loaded = _rows(engine, "select * from notifications where notification_id like 'KNO-S1%'")
    assert [(r["notification_id"], r["ethnicity"]) for r in loaded] == [("KNO-S1", SQL)]
    # ... an id is letters, digits and - _ / . only: this row's is withheld ("withheld: row 3").
    quarantined = _rows(engine, "select * from quarantine where file_name = 'notifications_2024-07-14.csv' "
                                "and row_number = 3")
    assert len(quarantined) == 1 and json.loads(quarantined[0]["raw_values"])["incident_type"] == SQL
    assert quarantined[0]["record_id"] == "withheld: row 3"
    assert SQL in quarantined[0]["failed_checks"] and "notification_id is not a valid identifier" in quarantined[0]["failed_checks"]
    assert {t for t in sa.inspect(engine).get_table_names()} >= {"notifications", "learning", "return_files"}
    # Formula cells: read as their text, never evaluated, and stored as text (or quarantined
    # with the formula quoted, where a date is needed).
    f1 = _rows(engine, "select ethnicity from notifications where notification_id = 'KNO-F1'")
    assert f1 == [{"ethnicity": "=1+1"}]
    [f2] = _rows(engine, "select failed_checks from quarantine where record_id = 'KNO-F2'")
    assert "aware_date '=TODAY()' is not a date" in f2["failed_checks"]
    # A formula-looking id is not an id (quarantined, withheld); as text elsewhere it is never run
    # here, and exports neutralise it.
    [x] = _rows(engine, "select record_id, failed_rules from quarantine where file_name = 'notifications_2024-07-14.csv' "
                        "and row_number = 7")
    assert x == {"record_id": "withheld: row 7", "failed_rules": "identifier:notification_id"}
    # Ragged and short rows: by row and rule, the rest of the file loaded.
    [ragged] = _rows(engine, "select row_number, failed_rules from quarantine where record_id = 'KNO-R1'")
    assert ragged == {"row_number": 5, "failed_rules": "ragged_row"}
    [short] = _rows(engine, "select failed_checks from quarantine where record_id = 'KNO-R2'")
    assert "is blank (it is required)" in short["failed_checks"]
    # Other encodings: UTF-16 with a byte-order mark, and Windows-1252.
    assert _rows(engine, "select ethnicity from notifications where notification_id = 'KNO-U2'") == [{"ethnicity": "Café"}]
    assert _rows(engine, "select count(*) n from notifications where notification_id = 'KNO-W1'") == [{"n": 1}]


def test_html_and_script_are_escaped_in_reports_and_data_docs(ingested):
    _engine, _summary, _expected, _took, _created, reports, tmp_path, _log = ingested
    pages = [Path(r["path"]) for r in reports] + sorted((tmp_path / "docs").rglob("*.html"))
    assert len(pages) >= 2
    seen_escaped = False
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert "<script>alert" not in html and "<img src=x" not in html, page
        seen_escaped |= "&lt;script&gt;alert" in html or "&lt;img src=x" in html
    assert seen_escaped  # the values are shown, as text


def test_formulas_are_neutralised_in_the_xlsx_export():
    from io import BytesIO

    from openpyxl import load_workbook

    @dataclasses.dataclass
    class Table:
        sheet: str
        caption: str
        header: list
        rows: list

    data = build_workbook([Table("=1+1", "=HYPERLINK(\"http://x\")", ["=A1", "@SUM(1)"],
                                 [("=cmd|' /C calc'!A0", ["+1", "-1"], False)])], title="=title")
    with zipfile.ZipFile(BytesIO(data)) as zf:
        xml = b"".join(zf.read(n) for n in zf.namelist() if n.startswith("xl/worksheets/"))
    assert b"<f>" not in xml and b"<f " not in xml  # no formula anywhere
    wb = load_workbook(BytesIO(data))
    cells = [c for ws in wb.worksheets for row in ws.iter_rows() for c in row if isinstance(c.value, str)]
    assert all(c.data_type == "s" and not c.value.startswith(("=", "+", "-", "@")) for c in cells)


def test_row_limit_and_size_limit_from_config_apply_to_csv(tmp_path):
    path = tmp_path / "notifications_2024-07-01.csv"
    path.write_text(_csv(*[_row(f"N-{i}", f"R-{i}") for i in range(60)]))
    with pytest.raises(ReadError, match=r"more than 50 rows \(config limits.max_rows\)"):
        read_csv_return(path, "notifications", {}, limits=Limits(max_rows=50))
    assert len(read_csv_return(path, "notifications", {}, limits=Limits(max_rows=60)).tables["notifications"]) == 60
    with pytest.raises(ReadError, match="over the size limit"):
        read_csv_return(path, "notifications", {}, limits=Limits(max_file_bytes=100))
    with pytest.raises(ReadError, match="over the size limit"):
        read_xlsx_return(path, {}, "notifications", limits=Limits(max_file_bytes=100))


def test_limits_are_checked_in_the_config(tmp_path):
    import yaml

    from reviews.core.config import ConfigError, load_config
    from tests.integration.returns_support import write_config

    path = write_config(tmp_path, {"knowsley": {}}, limits={"max_rows": 10, "max_file_bytes": 1000})
    assert load_config(path).limits == Limits(max_file_bytes=1000, max_rows=10)
    for bad in ({"max_rows": 0}, {"max_rows": "many"}, {"max_bytes": 10}):
        raw = yaml.safe_load(path.read_text())
        raw["limits"] = bad
        path.write_text(yaml.safe_dump(raw))
        with pytest.raises(ConfigError, match="limits"):
            load_config(path)


class _Entry:
    def __init__(self, name: str, size: int = 10):
        self.filename, self.st_size, self.st_mode = name, size, 0o100644
        self.st_mtime = self.st_atime = 1_700_000_000


class _HostileSftp:
    """An SFTP server whose listing tries to escape the staging folder."""

    def __init__(self):
        self.fetched: list[str] = []

    def listdir_attr(self, path):
        return [_Entry(n) for n in ("../escape_2024-07-01.csv", "..", ".", "sub/notifications_2024-07-01.csv",
                                    "..\\..\\win_2024-07-01.csv", "notifications_2024-07-01.csv\x07",
                                    "learning_2024-07-01.csv")] + [_Entry("big_2024-07-01.csv", 10**10)]

    def get(self, remote, local):
        self.fetched.append(remote)
        Path(local).write_text("notification_id\r\n")


def test_sftp_names_never_become_paths(tmp_path):
    client = _HostileSftp()
    got = fetch_sftp(client, "/returns", tmp_path / "staging" / "sftp", max_bytes=1000)
    assert sorted(p.name for p in (tmp_path / "staging" / "sftp").iterdir()) == [
        "learning_2024-07-01.csv", "notifications_2024-07-01.csv_"]
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == [
        "staging/sftp/learning_2024-07-01.csv", "staging/sftp/notifications_2024-07-01.csv_"]
    assert client.fetched == ["/returns/learning_2024-07-01.csv", "/returns/notifications_2024-07-01.csv\x07"]
    assert got.notes == ["big_2024-07-01.csv was not fetched: 10000000000 bytes is over the size limit "
                         "(config limits.max_file_bytes)"]


# Values that SQL, or PostgreSQL's COPY text format (which ingest uses on PostgreSQL), give meaning to.
META_VALUES = ["'; DROP TABLE notifications; --", 'say "hello"', "tab\there", "back\\slash", "\\N", "\\.",
               "two\nlines", "cr\rhere", "100% _under_ %s {0} $1 :name ?", "emoji \U0001F9D2 and caf\u00e9"]


@pytest.mark.parametrize("url", ["sqlite_url", pytest.param("postgres_url", marks=pytest.mark.postgres)])
def test_meta_characters_load_as_data_on_both_databases(url, request, tmp_path, cfg):
    import csv
    import io

    url = request.getfixturevalue(url)
    folder = tmp_path / "inbox" / "knowsley"
    folder.mkdir(parents=True)
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(HEADER.split(","))
    for i, value in enumerate(META_VALUES):
        writer.writerow(_row(f"KNO-M{i}", f"REF-M{i}", ethnicity=value).split(",")[:8] + [value] + ["N"] * 4 + ["Y"])
    (folder / "notifications_2024-07-01.csv").write_text(buf.getvalue(), encoding="utf-8")
    engine = wh.make_engine(url)
    try:
        summary = ingest_partnership(engine, cfg, "knowsley", tmp_path / "inbox", tmp_path / "raw", KEY, AS_OF,
                                     clock=CLOCK)
        assert summary.rows_loaded == len(META_VALUES), summary.files
        got = {r["notification_id"]: r["ethnicity"] for r in _rows(engine, "select * from notifications")}
        history = {r["record_id"]: json.loads(r["values_json"])["ethnicity"]
                   for r in _rows(engine, "select record_id, values_json from record_history")}
    finally:
        engine.dispose()
    for i, value in enumerate(META_VALUES):
        assert got[f"KNO-M{i}"] == value.strip(), (i, got[f"KNO-M{i}"])
        assert history[f"KNO-M{i}"] == value.strip(), i
