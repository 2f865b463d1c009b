"""Files as they really come, at the reader and landing level."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from reviews.core import warehouse as wh
from reviews.returns.landing import parse_name
from reviews.privacy.pseudonymise import check_key
from reviews.returns.readers import ReadError, read_csv_return, read_xlsx_return


def test_dataset_workbook_names():
    assert parse_name("notifications_2024-07-10.xlsx") == ("xlsx", "notifications", date(2024, 7, 10), None)
    assert parse_name("Learning_2024-07-10.XLSX") == ("xlsx", "learning", date(2024, 7, 10), None)
    assert parse_name("return_2024-07-10.csv")[3]  # a whole return is a workbook, never a CSV


def test_dataset_workbook_prefers_the_sheet_named_after_it(tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.title = "Cover"
    wb.active.append(["notification_id", "aware_date"])  # looks like a header, but another sheet is named
    wb.active.append(["WRONG", "2024-01-01"])
    ws = wb.create_sheet("Notifications")
    ws.append(["notification_id", "aware_date", None, "age_years"])  # a spacer column with no header
    ws.append(["N-1", datetime(2024, 5, 2), None, "7"])
    ws.append(["N-2", 45420, None, 12.0])
    path = tmp_path / "notifications_2024-07-10.xlsx"
    wb.save(path)
    result = read_xlsx_return(path, {}, "notifications")
    table = result.tables["notifications"]
    assert table["notification_id"].tolist() == ["N-1", "N-2"]
    assert table["aware_date"].tolist() == ["2024-05-02", "45420"]  # the serial is parsed later, with the others
    assert table["age_years"].tolist() == ["7", "12"]
    assert "column_3" not in table.columns  # empty spacer: not a column, not "dropped"
    assert result.notes == ["read the notifications from sheet 'Notifications'; other sheets were ignored: Cover"]


def test_dataset_workbook_without_a_header_anywhere(tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(["colour", "size"])
    path = tmp_path / "learning_2024-07-10.xlsx"
    wb.save(path)
    with pytest.raises(ReadError, match="no sheet of the workbook has a header row with the learning column names"):
        read_xlsx_return(path, {}, "learning")


def test_spacer_columns_with_values_are_kept_to_be_dropped_by_name(tmp_path):
    path = tmp_path / "n.csv"
    path.write_text("notification_id,,aware_date,,\r\nN-1,secret,2024-05-02,,\r\n", encoding="utf-8")
    table = read_csv_return(path, "notifications", {}).tables["notifications"]
    assert [c for c in table.columns if not c.startswith("_")] == ["notification_id", "column_2", "aware_date"]


def test_a_reader_crash_fails_the_file_not_the_partnership(tmp_path, sqlite_url, cfg, monkeypatch):
    from reviews.returns import ingest

    def boom(*args, **kwargs):
        raise ValueError("could not convert 'CHILD-SECRET-9' to a number")

    folder = tmp_path / "inbox" / "knowsley"
    folder.mkdir(parents=True)
    (folder / "notifications_2024-07-10.csv").write_text("notification_id\r\nN-1\r\n")
    (folder / "rapid_reviews_2024-07-10.csv").write_text("rapid_review_id,notification_id\r\nR-1,N-1\r\n")
    real = ingest.read_csv_return
    monkeypatch.setattr(ingest, "read_csv_return",
                        lambda path, dataset, h, **kw: boom() if dataset == "notifications" else real(path, dataset, h, **kw))
    engine = wh.make_engine(sqlite_url)
    summary = ingest.ingest_partnership(engine, cfg, "knowsley", tmp_path / "inbox", tmp_path / "raw",
                                        check_key("unit-test-key-for-readers-000"), date(2024, 7, 15),
                                        clock=lambda: datetime(2030, 1, 1, tzinfo=timezone.utc))
    outcome = {f.file_name: (f.status, f.error) for f in summary.files}
    assert outcome["notifications_2024-07-10.csv"] == ("failed", "the file could not be read (ValueError)")
    assert outcome["rapid_reviews_2024-07-10.csv"][0] == "rejected"  # read; its notification is unknown
    engine.dispose()
