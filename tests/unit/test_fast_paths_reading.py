"""Reading, mapping, cleaning and screening by columns and distinct values (issue 8) give exactly
what the straightforward cell-by-cell code gave: the same frames (values, types, dtypes, row
numbers), redactions and counts. The references below are that code, kept here to compare with.
"""
from __future__ import annotations

import random
from collections import Counter
from datetime import date

import numpy as np
import pandas as pd
import pytest

from reviews.returns import cleaning

from reviews.privacy import ingest_redaction as freetext

from reviews.returns import mapping

from reviews.returns import readers
from reviews.returns.cleaning import DT_SUFFIX, RAW_SUFFIX, RETURN_DATE_COLUMN, clean_table
from reviews.core.config import normalise_word
from reviews.core.dates import parse_dates, to_iso
from reviews.privacy.pseudonymise import child_key, pseudonymise_series
from reviews.returns.readers import EXTRA_COLUMN, ROW_COLUMN, ReadError
from reviews.privacy.screening import screen
from reviews.core.template import DATASETS

KEY = b"unit-test-key-for-fast-reading-0"


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert list(a.dtypes) == list(b.dtypes)
    for col in range(a.shape[1]):  # None stays None, an int stays an int
        assert [type(v) for v in a.iloc[:, col]] == [type(v) for v in b.iloc[:, col]]


# ------------------------------------------------------------------------------ the references


def _reference_to_frame(rows, known, first_row_number=1):
    h = readers._find_header(rows, known)
    header = [f"{c.strip()} (column {i + 1})" if c.strip() in (ROW_COLUMN, EXTRA_COLUMN) else c.strip()
              for i, c in enumerate(rows[h])]
    while header and header[-1] == "":
        header.pop()
    width = len(header)
    records, numbers = [], []
    for offset, row in enumerate(rows[h + 1 :], start=h + 1):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        extra = sum(1 for c in cells[width:] if c)
        cells = (cells + [""] * width)[:width]
        records.append(cells + [extra])
        numbers.append(offset + first_row_number)
    keep = [i for i, n in enumerate(header) if n or any(r[i] for r in records)]
    names = [header[i] if header[i] else f"column_{i + 1}" for i in keep]
    records = [[r[i] for i in keep] + [r[-1]] for r in records]
    frame = pd.DataFrame(records, columns=names + [EXTRA_COLUMN], dtype=object)
    frame[ROW_COLUMN] = numbers
    return frame


def _reference_map_columns(frame, dataset, partnership):
    template = DATASETS[dataset].column_names
    lookup = {normalise_word(c): c for c in template}
    for theirs, ours in partnership.header_map(dataset).items():
        lookup.setdefault(normalise_word(theirs), ours)
    chosen = {}
    for header in frame.columns:
        if header in (ROW_COLUMN, EXTRA_COLUMN):
            continue
        target = lookup.get(normalise_word(header))
        if target is not None:
            chosen[header] = target
    out = frame[list(chosen)].rename(columns=chosen)
    for col in [c for c in template if c not in out.columns]:
        out[col] = ""
    out = out[template].copy()
    out[ROW_COLUMN] = frame[ROW_COLUMN].to_numpy()
    out[EXTRA_COLUMN] = frame[EXTRA_COLUMN].to_numpy() if EXTRA_COLUMN in frame else 0
    return out


def _reference_clean_table(mapped, dataset, partnership, cfg, key, return_date):
    ds = DATASETS[dataset]
    out = pd.DataFrame(index=mapped.index)
    for col in mapped.columns:
        out[col] = (pd.Series([cleaning._cell(v) for v in mapped[col]], index=mapped.index, dtype=object)
                    if col in ds.column_names else mapped[col])
    out = out.copy()
    themes = cfg.theme_lookup()
    for col in ds.columns:
        if col.kind != "code":
            continue
        lookup = themes if col.name == "theme" else {
            **{normalise_word(c): c for c in col.codes}, **cfg.code_synonyms.get(col.name, {})}
        out[col.name] = out[col.name].astype(object).map(
            lambda v, lookup=lookup: lookup.get(normalise_word(v), v) if isinstance(v, str) and v.strip() else v)
    for col in ds.of_kind("age"):
        out[col] = out[col].map(cleaning._whole_number)
    for col in ds.of_kind("date"):
        parsed, bad = parse_dates(out[col].fillna(""), partnership.date_format)
        out[col + RAW_SUFFIX] = out[col]
        out[col + DT_SUFFIX] = parsed
        out[col] = to_iso(parsed).where(~bad, out[col])
    if "child_ref" in out.columns:
        out["child_key"] = pd.Series([child_key(r, partnership.code, key) for r in out["child_ref"]],
                                     index=out.index, dtype=object)
        out = out.drop(columns=["child_ref"])
    out[RETURN_DATE_COLUMN] = pd.Timestamp(return_date)
    return out


def _reference_redact(frame, dataset):
    found = Counter()
    out = frame.copy()
    for col in freetext.screened_columns(dataset):
        if col not in frame.columns:
            continue
        for index, value in frame[col].items():
            if isinstance(value, str) and any(ch.isdigit() and ch in "0123456789" or ch == "@" for ch in value):
                result = screen(value)
                if result.hits:
                    found.update(h.kind for h in result.hits)
                    out.at[index, col] = result.text
    return out, found


# ------------------------------------------------------------------------------ reading


CELLS = ["", " ", "x", " y ", "\t", "_row", "_extra_cells", "1", "\u00a0", "z z", "notification_id", "child_ref",
         "incident_date", " aware date ", "Notified-Date"]


@pytest.mark.slow  # about 3 s of CPU
def test_rows_become_the_table_the_row_by_row_reader_built():
    rnd = random.Random(8)
    known = readers.known_headers("notifications", {})
    compared = 0
    for _ in range(3000):
        rows = [[rnd.choice(CELLS) for _ in range(rnd.randint(0, 7))] for _ in range(rnd.randint(0, 8))]
        if rnd.random() < 0.8:  # most tables have a header
            header = [rnd.choice(["notification_id", "child_ref", "incident_date", "", "_row", "note"])
                      for _ in range(rnd.randint(2, 7))]
            rows.insert(rnd.randint(0, len(rows)), header)
        try:
            expected = _reference_to_frame(rows, known, 3)
        except ReadError as exc:
            with pytest.raises(ReadError, match=str(exc)):
                readers._to_frame(rows, known, 3)
            continue
        _same(readers._to_frame(rows, known, 3), expected)
        compared += 1
    assert compared > 1000


def test_the_first_lines_are_those_splitlines_gives():
    rnd = random.Random(9)
    pieces = ["\n", "\r\n", "\r", "\x0b", "\x85", "\u2028", "a", "bb;", " "]
    for _ in range(2000):
        text = "".join(rnd.choice(pieces) * rnd.choice([1, 2, 700, 3000]) for _ in range(rnd.randint(0, 60)))
        n = rnd.randint(0, 40)
        assert readers._first_lines(text, n) == text.splitlines()[:n]


def test_mapping_in_one_go_gives_the_general_steps_table(cfg):
    text = ("NotificationID,ChildID,IncidentDate,Unknown,AwareDate,NotifiedDate,Category,AgeAtIncident,Gender,"
            "EthnicOrigin,Disabled,CLA,CPP,CIN,KnownToCSC\r\n"
            "N-1, C-1 ,01/02/2024,secret,02/02/2024,03/02/2024,Death,7,F,White,N,N,N,N,Y,extra\r\n"
            ",,,,,,,,,,,,,,\r\n"
            "N-2,C-2,x,,,,SH,,M,,,,,,\r\n")
    partnership = cfg.partnership("sefton")
    table = readers._to_frame([r.split(",") for r in text.split("\r\n")], readers.known_headers(
        "notifications", partnership.header_map("notifications")))
    mapped, dropped, absent = mapping.map_columns(table, "notifications", partnership)
    assert dropped == ["Unknown"] and absent == []
    _same(mapped, _reference_map_columns(table, "notifications", partnership))
    short = table.drop(columns=["Gender"])  # a template column absent: the general steps
    _same(mapping.map_columns(short, "notifications", partnership)[0],
          _reference_map_columns(short, "notifications", partnership))


# ------------------------------------------------------------------------------ cleaning

DATES = ["01/02/2024", " 01/02/2024 ", "2024-02-01", "2024-02-01 00:00:00", "45000", "45000.0", "45000.5", "1e309",
         "99999999999999999999", "31/02/2024", "1/2/24", "01-02-2024", "", "  ", "today", "-45000", "0", "21916",
         "73050", "73051"]
CODES = ["Death", "death", " D ", "SH", "serious harm", "Serious-Harm", "other", "nonsense", "", " ", "F", "girl",
         "Yes", "NK", "u", "Not known"]
REFS = ["C-1", "c-1", " C 1 ", "C-2", "", " ", "c\t2"]
TEXTS = ["Seen at home", "Call 0151 123 4567", "email a.b@x.org", "born 01/02/2015", "CH41 5LH", "no digits",
         "", "NHS 943 476 5919", "2 visits"]


def _text(values) -> pd.Series:
    """A column of text as the readers give it (object dtype: a list would become dtype str)."""
    return pd.Series(values, dtype=object)


def _mapped_notifications(rnd, n):
    return pd.DataFrame({
        "notification_id": _text([f"N-{rnd.randint(1, 40)}" for _ in range(n)]),
        "child_ref": _text([rnd.choice(REFS) for _ in range(n)]),
        "incident_date": _text([rnd.choice(DATES) for _ in range(n)]),
        "aware_date": _text([rnd.choice(DATES[:3]) for _ in range(n)]),
        "notified_date": _text([rnd.choice(["", " "]) for _ in range(n)]),  # all blank
        "incident_type": _text([rnd.choice(CODES) for _ in range(n)]),
        "age_years": _text([rnd.choice(["7", "07", "7.0", "+7", "x", "", "-1"]) for _ in range(n)]),
        "sex": _text([rnd.choice(CODES) for _ in range(n)]),
        "ethnicity": _text([rnd.choice(TEXTS) for _ in range(n)]),
        "disability": _text([rnd.choice(CODES) for _ in range(n)]),
        "looked_after": _text(["Y"] * n),
        "cp_plan": _text([rnd.choice(["", "N"]) for _ in range(n)]),
        "cin_plan": _text([""] * n),
        "known_to_csc": _text([rnd.choice(CODES) for _ in range(n)]),
        ROW_COLUMN: np.arange(2, n + 2),
        EXTRA_COLUMN: _text([0] * n),
    })


@pytest.mark.parametrize("code", ["knowsley", "wirral"])
def test_cleaning_by_distinct_values_gives_the_cell_by_cell_table(cfg, code):
    rnd = random.Random(code)
    partnership = cfg.partnership(code)
    for n in (0, 1, 7, 400):
        mapped = _mapped_notifications(rnd, n)
        assert n == 0 or mapping.distinct_codes(mapped["incident_date"]) is not None  # the fast path
        got = clean_table(mapped, "notifications", partnership, cfg, KEY, date(2024, 4, 10))
        _same(got, _reference_clean_table(mapped, "notifications", partnership, cfg, KEY, date(2024, 4, 10)))


def test_cells_that_are_not_all_text_are_cleaned_cell_by_cell(cfg):
    partnership = cfg.partnership("knowsley")
    mapped = _mapped_notifications(random.Random(1), 30)
    mapped.loc[3, "incident_date"] = None
    mapped.loc[4, "incident_date"] = float("nan")
    mapped.loc[5, "child_ref"] = float("nan")
    mapped.loc[6, "sex"] = 1
    mapped.loc[7, "age_years"] = 7.0
    mapped["ethnicity"] = mapped["ethnicity"].astype("string")  # not object: the general path
    got = clean_table(mapped, "notifications", partnership, cfg, KEY, date(2024, 4, 10))
    _same(got, _reference_clean_table(mapped, "notifications", partnership, cfg, KEY, date(2024, 4, 10)))
    assert got.loc[5, "child_key"] is None  # a missing reference is not the hash of 'nan'


@pytest.mark.parametrize("values", [
    ["a", "B", None, "a", " b ", "", None],
    ["x"] * 5,
    [None, None],
    ["1", 1, 1.0, True, float("nan"), None, "1"],  # equal but not the same: mapped cell by cell
])
def test_mapping_distinct_values_gives_series_map(values):
    series = pd.Series(values, dtype=object, index=range(10, 10 + len(values)), name="c")

    def fold(v):
        return v.strip().lower() if isinstance(v, str) else v

    got, expected = mapping.map_distinct(series, fold), series.map(fold)
    pd.testing.assert_series_equal(got, expected, check_exact=True)
    assert [type(v) for v in got] == [type(v) for v in expected]


def test_hashing_each_distinct_reference_once_gives_each_cells_key():
    refs = pd.Series(REFS * 3 + [None, float("nan"), 12], dtype=object, index=range(5, 29))
    expected = [child_key(r, "la", KEY) for r in refs]
    assert pseudonymise_series(refs, "la", KEY).tolist() == expected
    text_only = refs.iloc[:21]
    assert pseudonymise_series(text_only, "la", KEY).tolist() == expected[:21]


def test_screening_distinct_texts_gives_the_cell_by_cell_redactions_and_counts():
    rnd = random.Random(4)
    n = 300
    frame = pd.DataFrame({
        "finding_id": _text([f"F-{i}" for i in range(n)]),
        "finding": _text([rnd.choice(TEXTS + [None]) for _ in range(n)]),
        "recommendation": _text([rnd.choice(TEXTS[5:] + [None]) for _ in range(n)]),
        "owner_agency": _text(["police"] * n),
    }).set_axis(range(100, 100 + n))
    got, found = freetext.redact_free_text(frame, "learning")
    expected, expected_found = _reference_redact(frame, "learning")
    _same(got, expected)
    assert found == expected_found and sum(found.values()) > 50
    assert list(found) == list(expected_found)  # counted in the same order


def test_cleaning_all_files_at_once_gives_each_files_own_cleaning(tmp_path, cfg):
    from reviews.returns import ingest
    from reviews.returns.landing import discover

    folder = tmp_path / "knowsley"
    folder.mkdir()
    header = ",".join(DATASETS["notifications"].column_names)
    for i, day in enumerate(["2024-04-10", "2024-07-10", "2024-10-10"]):
        rows = [f"N-{k},C-{k % 3},0{k % 9 + 1}/02/2024,2024-02-0{k % 9 + 1},45000,Death,7.0,F,White,Y,N,N,N,Y"
                for k in range(i * 5, i * 5 + 4 + i)]
        (folder / f"notifications_{day}.csv").write_text("\r\n".join([header, *rows]) + "\r\n")
        learning = ",".join(DATASETS["learning"].column_names)
        lines = [f"F-{i}-{k},R-1,escalation,Seen on 0{k + 1}/03/2023 at CH41 5LH,Ring 0151 123 4567,police,"
                 f"01/01/2025,open," for k in range(i + 1)]
        (folder / f"learning_{day}.csv").write_text("\r\n".join([learning, *lines, "no,digits,here"]) + "\r\n")
    partnership = cfg.partnership("knowsley")
    one_by_one, batched = [], []
    for inc in discover(folder, "knowsley"):
        for prepared, clean in ((one_by_one, True), (batched, False)):
            prep = ingest._Prepared(inc, inc.path)
            ingest._read(prep, partnership, cfg, KEY, clean=clean)
            prepared.append(prep)
    ingest._clean_all(batched, partnership, cfg, KEY)
    for a, b in zip(one_by_one, batched, strict=True):
        assert (a.error, a.notes, a.redactions, a.dropped) == (b.error, b.notes, b.redactions, b.dropped)
        assert a.tables.keys() == b.tables.keys()
        for dataset in a.tables:
            _same(b.tables[dataset], a.tables[dataset])
    assert sum(sum(p.redactions.values()) for p in batched) > 5
