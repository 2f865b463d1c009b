"""The analysts' workbook: safe to open (no formula runs), suppressed, numbers as numbers."""
from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from reviews.learning.bulletin import TableView
from reviews.learning.exports import build_workbook, neutralise


@pytest.mark.parametrize("text, expected", [
    ("=1+1", "'=1+1"), ("+44 151", "'+44 151"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("c", "c"), ("Knowsley", "Knowsley"), ("'quoted", "'quoted"),
])
def test_neutralise(text, expected):
    assert neutralise(text) == expected


TABLE = TableView(
    "Rapid reviews by outcome", ["Partnership", "LCSPR", "Total", "Rate"],
    [("=HYPERLINK(\"http://evil\",\"x\")", ["c", "12", "45%"], False), ("@Region", ["7", "=2+3", "-"], True)],
    "Rapid reviews",
)


def test_workbook_cells():
    wb = load_workbook(io.BytesIO(build_workbook([TABLE], title="=Title", notes=["+note"])))
    assert wb.sheetnames == ["About", "Rapid reviews"]
    about = wb["About"]
    assert about["A1"].value == "'=Title" and about["A3"].value == "'+note"
    ws = wb["Rapid reviews"]
    assert ws["A1"].value == "Rapid reviews by outcome"
    assert [c.value for c in ws[3]] == ["Partnership", "LCSPR", "Total", "Rate"]
    assert ws["A4"].value.startswith("'=HYPERLINK") and ws["A4"].data_type == "s"
    assert ws["B4"].value == "c" and ws["C4"].value == 12 and ws["D4"].value == pytest.approx(0.45)
    assert ws["D4"].number_format == "0%"
    assert ws["A5"].value == "'@Region" and ws["C5"].value == "'=2+3" and ws["D5"].value == "'-"
    for row in wb["Rapid reviews"].iter_rows():
        for cell in row:
            assert cell.data_type != "f", cell.coordinate  # no formula anywhere


def test_workbook_is_byte_stable():
    import time

    first = build_workbook([TABLE], title="t")
    time.sleep(1.1)  # openpyxl stamps the save time: two builds a second apart must still match
    assert build_workbook([TABLE], title="t") == first


def test_bulletin_workbook_is_suppressed(tmp_path):
    """Every table of a real bulletin, as written: no count from 1 to 5 anywhere."""
    from reviews.learning.bulletin import render_bulletin
    from reviews.core.config import load_config
    from reviews.learning.summary import compile_summary
    from reviews.core.warehouse import make_engine
    from tests.bulletin_data import JUNE, build

    cfg = load_config()
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    build(engine, cfg)
    summary = compile_summary(engine, cfg, *JUNE, JUNE[1])
    for audience in ("region", "knowsley"):
        rendered = render_bulletin(summary, cfg, audience)
        wb = load_workbook(io.BytesIO(build_workbook(rendered.tables, title=rendered.subject)))
        assert len(wb.sheetnames) == len(rendered.tables) + 1
        cells = [c for name in wb.sheetnames[1:] for row in wb[name].iter_rows(min_row=4, min_col=2) for c in row]
        assert "c" in [c.value for c in cells]
        counts = [c.value for c in cells if c.number_format != "0%" and isinstance(c.value, (int, float))]
        assert counts and not [v for v in counts if 1 <= v <= 5], audience
