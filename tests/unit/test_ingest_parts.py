"""The ingest building blocks on their own: dates, names, readers, mapping, keys, periods."""
from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from reviews.core.config import ConfigError, load_config
from reviews.core.connections import smtp_settings, sqlalchemy_url
from reviews.core.dates import parse_dates, to_iso
from reviews.returns.landing import discover, keep_raw, parse_name, safe_name
from reviews.returns.mapping import map_columns, normalise_codes
from reviews.core.run_dates import as_of_date, period_bounds
from reviews.privacy.pseudonymise import PseudonymisationKeyError, check_key, child_key
from reviews.returns.readers import EXTRA_COLUMN, ROW_COLUMN, ReadError, read_csv_return, read_xlsx_return
from reviews.core.warehouse import ddl

ROOT = Path(__file__).resolve().parents[2]


def test_dates_day_first_iso_and_excel_serials():
    parsed, bad = parse_dates(pd.Series(["03/04/2024", "2024-04-03", "45385", "", "31/02/2024", "n/a", None]), "%d/%m/%Y")
    assert to_iso(parsed).tolist() == ["2024-04-03", "2024-04-03", "2024-04-03", None, None, None, None]
    assert bad.tolist() == [False, False, False, False, True, True, False]


def test_dates_partnership_format():
    parsed, bad = parse_dates(pd.Series(["03-04-2024", "3-4-2024"]), "%d-%m-%Y")
    assert to_iso(parsed).tolist() == ["2024-04-03", "2024-04-03"]
    assert not bad.any()


@pytest.mark.parametrize(
    "name,expected",
    [
        ("notifications_2024-07-10.csv", ("csv", "notifications", date(2024, 7, 10), None)),
        ("RAPID_REVIEWS_2024-07-10.CSV", ("csv", "rapid_reviews", date(2024, 7, 10), None)),
        ("return_2024-07-10.xlsx", ("xlsx", None, date(2024, 7, 10), None)),
    ],
)
def test_template_file_names(name, expected):
    assert parse_name(name) == expected


@pytest.mark.parametrize("name", ["../notifications_2024-07-10.csv", "notes.txt", "notifications_2024-02-30.csv", "return.xlsx"])
def test_other_file_names_are_refused_with_a_reason(name):
    kind, dataset, d, error = parse_name(name)
    assert kind is None and error


def test_safe_name_replaces_control_characters():
    assert safe_name("bad\x1b[2Jname\n.csv") == "bad__2Jname_.csv"


def test_discover_and_keep_raw(tmp_path):
    folder = tmp_path / "inbox" / "knowsley"
    folder.mkdir(parents=True)
    (folder / "learning_2024-07-10.csv").write_text("a\n")
    (folder / "notifications_2024-07-10.csv").write_text("b\n")
    (folder / "notifications_2024-04-10.csv").write_text("c\n")
    (folder / ".hidden").write_text("x")
    (folder / "sub").mkdir()
    found = discover(folder, "knowsley")
    assert [f.safe_name for f in found] == [
        "notifications_2024-04-10.csv", "notifications_2024-07-10.csv", "learning_2024-07-10.csv"]
    raw = keep_raw(found[0], tmp_path / "raw")
    assert raw.read_text() == "c\n" and raw.name.startswith(found[0].sha256)
    assert not (raw.stat().st_mode & 0o222)  # read-only
    assert keep_raw(found[0], tmp_path / "raw") == raw  # landing twice keeps one copy


def test_discover_missing_folder_names_the_partnership(tmp_path):
    with pytest.raises(FileNotFoundError, match="wirral"):
        discover(tmp_path / "nope", "wirral")


def test_csv_reader_handles_bom_semicolons_title_lines_and_ragged_rows(tmp_path, cfg):
    text = ("Sefton return for Q1;;\r\n\r\nNotificationID;ChildID;AwareDate\r\n"
            "SEF-1;C1;01/05/2024\r\nSEF-2;C2;02/05/2024;extra\r\n;;\r\n\r\n")
    path = tmp_path / "n.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    table = read_csv_return(path, "notifications", cfg.partnership("sefton").header_map("notifications")).tables["notifications"]
    assert table["NotificationID"].tolist() == ["SEF-1", "SEF-2"]
    assert table[ROW_COLUMN].tolist() == [4, 5]
    assert table[EXTRA_COLUMN].tolist() == [0, 1]


def test_csv_reader_windows_1252(tmp_path):
    path = tmp_path / "n.csv"
    path.write_bytes("notification_id,ethnicity\r\nK-1,Caf\xe9 owner\r\n".encode("latin-1"))
    table = read_csv_return(path, "notifications", {}).tables["notifications"]
    assert table["ethnicity"].tolist() == ["Caf\u00e9 owner"]


def test_csv_reader_refuses_binary_and_headerless_files(tmp_path):
    binary = tmp_path / "b.csv"
    binary.write_bytes(b"\x00\x01\x02PK")
    with pytest.raises(ReadError, match="binary"):
        read_csv_return(binary, "notifications", {})
    other = tmp_path / "o.csv"
    other.write_text("colour,size\nred,2\n")
    with pytest.raises(ReadError, match="no header row"):
        read_csv_return(other, "notifications", {})


def test_xlsx_reader_reads_sheets_by_dataset(tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "Notifications"
    ws.append(["Notification Ref", "Date LA Aware"])
    ws.append(["LIV-1", datetime(2024, 4, 3)])
    ws.append(["LIV-2", "03/04/2024"])
    wb.create_sheet("Notes").append(["anything"])
    path = tmp_path / "return_2024-07-10.xlsx"
    wb.save(path)
    result = read_xlsx_return(path, {"notifications": {"Notification Ref": "notification_id", "Date LA Aware": "aware_date"}})
    table = result.tables["notifications"]
    assert table["Date LA Aware"].tolist() == ["2024-04-03", "03/04/2024"]
    assert "notes" in result.notes[0]


def test_xlsx_reader_refuses_a_broken_workbook(tmp_path):
    path = tmp_path / "return_2024-07-10.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ReadError, match="cannot be opened"):
        read_xlsx_return(path, {})


def test_mapping_drops_unknown_columns_and_maps_words(cfg):
    frame = pd.DataFrame({"Notification Ref": ["L-1"], "Child Name": ["Child A"], "Incident Type": ["Serious Harm"],
                          "Looked After": ["Yes"], ROW_COLUMN: [2], EXTRA_COLUMN: [0]})
    mapped, dropped, absent = map_columns(frame, "notifications", cfg.partnership("liverpool"))
    assert dropped == ["Child Name"]
    assert "Child Name" not in mapped.columns and "aware_date" in absent
    coded = normalise_codes(mapped, "notifications", cfg)
    assert coded.loc[0, "incident_type"] == "serious_harm" and coded.loc[0, "looked_after"] == "Y"


def test_template_headers_are_accepted_from_any_partnership(cfg):
    frame = pd.DataFrame({"notification_id": ["W-1"], "AWARE_DATE": ["2024-01-01"], ROW_COLUMN: [2], EXTRA_COLUMN: [0]})
    mapped, dropped, _ = map_columns(frame, "notifications", cfg.partnership("wirral"))
    assert dropped == [] and mapped.loc[0, "aware_date"] == "2024-01-01"


def test_themes_map_synonyms(cfg):
    frame = pd.DataFrame({"theme": ["DA", "Safer sleep", "weather"]})
    for col in ("finding_id", "review_id", "finding", "recommendation", "owner_agency", "action_due_date",
                "action_status", "action_completed_date"):
        frame[col] = None
    assert normalise_codes(frame, "learning", cfg)["theme"].tolist() == ["domestic_abuse", "sudi_safer_sleep", "weather"]


def test_child_key_is_keyed_stable_and_folds_case_and_spaces():
    key = check_key("a-secret-of-sufficient-length")
    a = child_key("kno-c-000123", "knowsley", key)
    assert a == child_key(" KNO-C-000123 ", "knowsley", key)
    assert a != child_key("KNO-C-000123", "sefton", key)
    assert a != child_key("KNO-C-000123", "knowsley", check_key("another-secret-of-length"))
    assert "000123" not in a and child_key("", "knowsley", key) is None


def test_missing_or_short_key_is_refused():
    with pytest.raises(PseudonymisationKeyError, match="reviews_pseudonymisation"):
        check_key(None)
    with pytest.raises(PseudonymisationKeyError, match="at least"):
        check_key("short")


def test_as_of_and_periods_come_from_the_interval():
    june = (datetime(2024, 5, 31, 23, tzinfo=timezone.utc), datetime(2024, 6, 30, 23, tzinfo=timezone.utc))
    assert as_of_date(*june) == date(2024, 6, 30)
    assert period_bounds(*june) == (date(2024, 6, 1), date(2024, 6, 30))
    point = datetime(2024, 6, 30, tzinfo=timezone.utc)
    assert as_of_date(point, point) == date(2024, 6, 30)
    assert period_bounds(point, point) == (date(2024, 6, 1), date(2024, 6, 30))
    mid = datetime(2024, 7, 15, tzinfo=timezone.utc)
    assert period_bounds(mid, mid) == (date(2024, 6, 1), date(2024, 6, 30))


def test_connection_fields_become_urls():
    assert sqlalchemy_url("sqlite", "", "/data/w.db", None, None, None) == "sqlite:////data/w.db"
    assert sqlalchemy_url("postgres", "db", "wh", "u", "p@ss", 5433) == "postgresql+psycopg://u:p%40ss@db:5433/wh"
    with pytest.raises(ValueError, match="not supported"):
        sqlalchemy_url("mysql", "h", "s", None, None, None)
    s = smtp_settings("mail", None, "u", "p", {"security": "ssl"})
    assert (s.host, s.port, s.security) == ("mail", 465, "ssl")


def test_yaml_booleans_in_synonyms_are_refused(tmp_path):
    text = (ROOT / "config" / "reviews.yaml").read_text().replace('"Yes": "Y"', "Yes: Y")
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="quotes"):
        load_config(path)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_sql_ddl_matches_the_metadata(dialect):
    """sql/ is generated from warehouse.py (`make schema`): one source of truth, no drift."""
    assert (ROOT / "sql" / f"schema.{dialect}.sql").read_text() == ddl(dialect)
