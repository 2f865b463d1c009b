"""Reading CSV text line by line, cleaning a table column by column on its distinct values and
reading the dates of all its date columns together (issue 8) give exactly what csv.reader and the
step-by-step cleaning give: the same rows, errors, frames (values, types, dtypes, units).
The references are csv.reader itself and the cell-by-cell code of test_fast_paths_reading.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import random
from datetime import date
from itertools import islice

import numpy as np
import pandas as pd
import pytest

from reviews.returns import cleaning

from reviews.returns import readers
from reviews.returns.cleaning import clean_table
from reviews.core.dates import parse_dates, reads_at_one_unit
from reviews.returns.mapping import map_columns
from reviews.returns.readers import EXTRA_COLUMN, ROW_COLUMN, ReadError
from reviews.core.template import DATASETS
from tests.unit.test_fast_paths_reading import (
    _reference_clean_table,
    _reference_map_columns,
    _reference_to_frame,
    _same,
)

KEY = b"unit-test-key-for-read-and-clean0"
PIECES = ['"', '""', ",", ";", "\t", "\r", "\n", "\r\n", "a", " ", "\x00", "\x0b", "\x85", "\u2028", "é", "b c",
          '"x,y"', '"p\nq"', '"r""s"']


# ------------------------------------------------------------------------------ CSV records


def _reference_rows(text: str, delimiter: str, most: int):
    """csv.reader's first `most` records, or the error read_csv_return words from it."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        return list(islice(reader, most))
    except csv.Error as exc:
        return f"the CSV is malformed at line {reader.line_num} ({exc})"


def _rows(text: str, delimiter: str, most: int):
    try:
        return readers._csv_rows(text, delimiter, most)
    except ReadError as exc:
        return str(exc).split(": check")[0]


@pytest.mark.parametrize("pieces", [PIECES, [p for p in PIECES if '"' not in p and "\x00" not in p]],
                         ids=["any text", "no quotes"])
def test_csv_lines_are_read_as_csv_reader_reads_them(pieces):
    rnd = random.Random(len(pieces))
    errors = 0
    for _ in range(20000):
        text = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 30)))
        delimiter, most = rnd.choice([",", ";", "\t"]), rnd.choice([1, 2, 3, 100])
        expected = _reference_rows(text, delimiter, most)
        assert _rows(text, delimiter, most) == expected, (text, delimiter, most)
        errors += isinstance(expected, str)
    assert errors > 1000 or '"' not in pieces  # unclosed quotes and stray ones were compared too


def test_a_cell_over_csvs_field_limit_fails_as_csv_reader_fails():
    rnd = random.Random(3)
    before = csv.field_size_limit()
    try:
        csv.field_size_limit(12)
        errors = 0
        for _ in range(5000):
            text = "".join(rnd.choice(PIECES[2:] + ["abcdefgh", "abcd"]) for _ in range(rnd.randint(0, 25)))
            expected = _reference_rows(text, ",", 100)
            assert _rows(text, ",", 100) == expected, text
            errors += isinstance(expected, str) and "field limit" in expected
        assert errors > 100
    finally:
        csv.field_size_limit(before)


CELLS = ["", " ", "x", " y ", "N-1", "03/04/2024", "a,b", 'say "hi"', "line\nbreak", "_row", "notification_id",
         "child_ref", "incident_date", "Aware Date", "sex", "\u00a0"]


def _csv_text(rnd: random.Random) -> str:
    def cell(value: str) -> str:
        return f'"{value.replace(chr(34), chr(34) * 2)}"' if any(ch in value for ch in ',"\n') else value
    rows = [[rnd.choice(CELLS) for _ in range(rnd.randint(0, 8))] for _ in range(rnd.randint(0, 12))]
    if rnd.random() < 0.7:
        rows.insert(rnd.randint(0, 2), ["notification_id", "child_ref", "incident_date", "aware_date", "sex", ""])
    eol = rnd.choice(["\n", "\r\n", "\r"])
    text = eol.join(",".join(map(cell, row)) for row in rows) + rnd.choice(["", eol, eol * 3])
    return text + rnd.choice(["", "", 'x,"unclosed'])


def test_reading_a_csv_file_gives_the_table_csv_reader_gave(tmp_path):
    rnd = random.Random(5)
    known = readers.known_headers("notifications", {})
    path = tmp_path / "notifications_2024-04-10.csv"
    compared = 0
    for _ in range(1500):
        text = _csv_text(rnd)
        path.write_bytes(rnd.choice([b"", b"\xef\xbb\xbf"]) + text.encode("utf-8"))
        try:
            rows = _reference_rows(text, readers._sniff_delimiter(text), 10**6)
            if isinstance(rows, str):
                raise ReadError(rows)
            expected = _reference_to_frame(rows, known)
        except ReadError as exc:
            with pytest.raises(ReadError) as got:
                readers.read_csv_return(path, "notifications", {})
            assert str(got.value).startswith(str(exc))
            continue
        _same(readers.read_csv_return(path, "notifications", {}).tables["notifications"], expected)
        compared += 1
    assert compared > 500


def test_mapping_many_files_gives_the_general_steps_table(cfg):
    partnership = cfg.partnership("sefton")
    header = ["NotificationID", "ChildID", "IncidentDate", "Note", "AwareDate", "NotifiedDate", "Category",
              "AgeAtIncident", "Gender", "EthnicOrigin", "Disabled", "CLA", "CPP", "CIN", "KnownToCSC"]
    rnd = random.Random(6)
    known = readers.known_headers("notifications", partnership.header_map("notifications"))
    for n in (0, 1, 5):
        rows = [header] + [[rnd.choice(CELLS) for _ in header] for _ in range(n)]
        table = readers._to_frame(rows, known)
        mapped = map_columns(table, "notifications", partnership)[0]
        _same(mapped, _reference_map_columns(table, "notifications", partnership))
        assert mapped.columns is not table.columns


# ------------------------------------------------------------------------------ cleaning

DATES = ["01/02/2024", " 01/02/2024 ", "2024-02-01", "2024-02-01 00:00:00", "2024-02-01 10:11:12", "45000",
         "45000.0", "45000.5", "1e309", "31/02/2024", "1/2/24", "01-02-2024", "02-01-2024", "2024.02.01", "", "  ",
         "today", "-45000", "21916", "73051", "01/02/2024 10:30", "01.02.24", "0001-01-01", "9999-12-31"]
FORMATS = ["%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%m-%d-%Y", "%d.%m.%y", "%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S.%f",
           "%Y-%m-%d %H:%M:%S%z", "%d %b %Y"]


def _text(values) -> pd.Series:
    return pd.Series(values, dtype=object)


def _mapped(rnd: random.Random, dataset: str, n: int, dates: list[str]) -> pd.DataFrame:
    """A mapped table of text: each date column draws from its own part of `dates` (so some
    columns have no date in the partnership's format, some only blanks), other columns anything."""
    columns = {}
    for col in DATASETS[dataset].columns:
        if col.kind == "date":
            own = rnd.sample(dates, rnd.randint(1, 5))
            columns[col.name] = _text([rnd.choice(own) for _ in range(n)])
        elif col.kind == "code":
            columns[col.name] = _text([rnd.choice(list(col.codes) + ["", " x ", "Death", "sh", "Y", "nk"])
                                       for _ in range(n)])
        elif col.kind == "age":
            columns[col.name] = _text([rnd.choice(["7", "07", "7.0", "", " 3 ", "x"]) for _ in range(n)])
        else:
            columns[col.name] = _text([rnd.choice(["C-1", " c 1 ", "", "  ", "Seen 01/02/2024", "x"]) for _ in range(n)])
    columns[ROW_COLUMN] = np.arange(2, n + 2)
    columns[EXTRA_COLUMN] = _text([0] * n)
    return pd.DataFrame(columns).set_axis(range(10, 10 + n))


@pytest.mark.parametrize("date_format", FORMATS)
@pytest.mark.parametrize("dataset", ["notifications", "practice_reviews"])
@pytest.mark.parametrize("kept", [100_000, 4], ids=["dates remembered", "dates forgotten"])
def test_cleaning_on_distinct_values_gives_the_step_by_step_table(cfg, dataset, date_format, kept, monkeypatch):
    monkeypatch.setattr(cleaning, "_DATES_KEPT", kept)  # 4: the dates read are forgotten on every table
    monkeypatch.setattr(cleaning, "_DATES_READ", {})
    partnership = dataclasses.replace(cfg.partnership("knowsley"), date_format=date_format)
    rnd = random.Random(f"{dataset}{date_format}")
    units = set()
    for n in (1, 2, 9, 60):
        for _ in range(4):
            mapped = _mapped(rnd, dataset, n, DATES)
            if n == 9:
                mapped = mapped.set_axis([10 + i // 2 for i in range(n)])  # labels twice: kept as they are
            assert cleaning._by_distinct_values(mapped, dataset, partnership, cfg, KEY) is not None
            got = clean_table(mapped, dataset, partnership, cfg, KEY, date(2024, 4, 10))
            _same(got, _reference_clean_table(mapped, dataset, partnership, cfg, KEY, date(2024, 4, 10)))
            units.update(str(got[c + cleaning.DT_SUFFIX].dtype) for c in DATASETS[dataset].of_kind("date"))
    if date_format in ("%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y"):
        assert len(units) > 1  # columns read apart got different units, and reading together kept them
        assert cleaning._DATES_READ[date_format] if kept > 4 else len(cleaning._DATES_READ[date_format]) < 30


def test_tables_the_distinct_values_do_not_clean_are_cleaned_step_by_step(cfg):
    partnership = cfg.partnership("knowsley")
    rnd = random.Random(7)
    base = _mapped(rnd, "notifications", 30, DATES)
    odd = [base.assign(sex=base["sex"].astype("string")), base.drop(columns=["sex"]), base.iloc[:0]]
    for value in (None, float("nan"), 7):
        for col in ("incident_date", "ethnicity"):
            frame = base.copy()
            frame.loc[12, col] = value
            odd.append(frame)
    for mapped in odd:
        assert cleaning._by_distinct_values(mapped, "notifications", partnership, cfg, KEY) is None
        if "sex" not in mapped.columns:
            with pytest.raises(KeyError):
                clean_table(mapped, "notifications", partnership, cfg, KEY, date(2024, 4, 10))
            continue
        got = clean_table(mapped, "notifications", partnership, cfg, KEY, date(2024, 4, 10))
        _same(got, _reference_clean_table(mapped, "notifications", partnership, cfg, KEY, date(2024, 4, 10)))


def test_text_of_a_str_subclass_is_cleaned_as_str(cfg):
    """numpy's str_ is text too: its cells come out as the str they are equal to."""
    partnership = cfg.partnership("knowsley")
    mapped = _mapped(random.Random(8), "notifications", 20, DATES)
    for col, value in (("incident_date", " 01/02/2024"), ("ethnicity", " x "), ("child_ref", "C-1"), ("sex", "F ")):
        mapped[col] = mapped[col].astype(object)
        mapped.loc[[11, 12], col] = [np.str_(value), value]
    got = clean_table(mapped, "notifications", partnership, cfg, KEY, date(2024, 4, 10))
    _same(got, _reference_clean_table(mapped, "notifications", partnership, cfg, KEY, date(2024, 4, 10)))


@pytest.mark.parametrize("date_format", FORMATS)
def test_dates_read_together_get_the_unit_and_values_they_get_read_apart(date_format):
    rnd = random.Random(date_format)
    for i in range(50):
        if i % 10 == 0:
            cleaning._DATES_READ.clear()  # read from nothing, then from what earlier tables read
        columns = [np.array(rnd.sample(DATES + [None], rnd.randint(1, 6)), dtype=object) for _ in range(3)]
        together = cleaning._distinct_dates(columns, date_format)
        for values, (parsed, shown) in zip(columns, together, strict=True):
            apart = cleaning._distinct_dates_apart(values, date_format)
            assert parsed.dtype == apart[0].dtype
            np.testing.assert_array_equal(parsed, apart[0])
            assert list(shown) == list(apart[1])


def test_formats_that_read_at_one_unit():
    assert reads_at_one_unit("%d/%m/%Y") and reads_at_one_unit("%Y-%m-%d %H:%M:%S") and reads_at_one_unit("%d%%%m")
    assert not reads_at_one_unit("%d/%m/%Y %H:%M:%S.%f") and not reads_at_one_unit("%Y-%m-%dT%H:%M%z")
    assert not reads_at_one_unit("%d/%m/%Y%")
    # The unit of a format's dates does not depend on which dates: one date or many, the same.
    for fmt, text in (("%d/%m/%Y", "01/02/2024"), ("%Y-%m-%d", "2024-02-01"), ("%d %b %Y", "01 Feb 2024")):
        one = parse_dates(_text([text]), fmt)[0].dtype
        assert parse_dates(_text([text, "31/12/1999", "1999-12-31", "31 Dec 1999", ""]), fmt)[0].dtype == one
