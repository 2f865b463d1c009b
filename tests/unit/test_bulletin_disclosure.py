"""The learning-first bulletin's figures at realistic volumes give nothing away between its parts.

The email shows short figures (In numbers over 12 months, actions in three states, overdue actions
by agency); the XLSX holds the full tables. Where two parts publish the same count, or one adds up
to another, they must read the same suppressed grid or be linked (docs/bulletins.md, Disclosure
control). Five years of single-digit cases (tests.bulletin_data.build_realistic), four histories
(12 and 18 were the hardest of 20 for the share of c).
"""
from __future__ import annotations

import pytest

from reviews.core.config import load_config
from reviews.core.warehouse import make_engine
from reviews.learning.bulletin import PUBLISHED_ACTION_STATES, REGION, TOTAL, _Builder, _Grids
from reviews.learning.summary import compile_summary
from tests.bulletin_data import REALISTIC_QUARTER, build_realistic, published_figures


@pytest.fixture(scope="module", params=[17, 7, 12, 18])
def summary(request, tmp_path_factory):
    cfg = load_config()
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('disclosure') / 'w.db'}")
    build_realistic(engine, cfg, seed=request.param)
    start, end = REALISTIC_QUARTER
    return compile_summary(engine, cfg, start, end, end), cfg


def _built(summary, cfg, audience=REGION, grids=None):
    b = _Builder(summary, cfg, audience, grids)
    b.build()
    return b


def test_twelve_month_timeliness_never_leaves_one_trend_cell_to_subtraction(summary):
    """The four quarters of the XLSX trend fill the 12 months of In numbers: where exactly one of a
    partnership's 16 trend cells (4 stages x 4 quarters) is hidden, its 12-month figure is hidden."""
    s, cfg = summary
    b = _built(s, cfg)
    trend, year = s["trend_periods"], s["rolling"]
    assert (trend[0]["start"], trend[-1]["end"]) == (year["start"], year["end"])
    grids = [g for key, g in b.g._made.items() if key[0][0] == "trend"]
    assert len(grids) == len(s["categories"]["timeliness_stage"]) * len(trend)
    rolling = next(g for key, g in b.g._made.items() if key[0] == ("rolling", "timeliness"))
    for row in [*b.g.codes, TOTAL]:
        for col in ("met", TOTAL):
            hidden = sum(str(g.loc[row, col]) == cfg.suppression_symbol for g in grids)
            if hidden == 1:
                assert rolling.loc[row, col] == cfg.suppression_symbol, (row, col)
            if rolling.loc[row, col] != cfg.suppression_symbol:  # shown: it is the true sum
                parts = [int(g.loc[row, col]) for g in grids if str(g.loc[row, col]) != cfg.suppression_symbol]
                assert int(rolling.loc[row, col]) >= sum(parts)


def test_actions_in_the_email_are_the_xlsx_table(summary):
    """Overdue, not yet due and completed: the same figures in the learning section, the XLSX and
    on every partnership's page; no total of all actions (it would hide the overdue count)."""
    s, cfg = summary
    grids = _Grids(s, cfg)
    region = _built(s, cfg, REGION, grids)
    table = next(t for t in region.workbook_tables if t.sheet == "Actions")
    assert table.header[1:] == ["Overdue", "Not yet due (open or in progress)", "Completed"]
    region_row = table.rows[-1][1]
    figures = next(v for sec in region.sections for k, v in sec.blocks if k == "figures"
                   and v and v[0][0] == "Overdue")
    assert [pairs[0][1] for _, pairs in figures] == region_row
    for code in grids.codes:
        page = _built(s, cfg, code, grids)
        mine = next(v for sec in page.sections for k, v in sec.blocks if k == "figures" and v and v[0][0] == "Overdue")
        row = next(cells for name, cells, _ in table.rows if name == grids.names[code])
        assert [pairs[1][1] for _, pairs in mine] == row and [pairs[0][1] for _, pairs in mine] == region_row
    raw = {k: sum(s["region"]["actions"][x] for x in v) for k, v in PUBLISHED_ACTION_STATES.items()}
    for value, state in zip(region_row, PUBLISHED_ACTION_STATES):
        assert value == cfg.suppression_symbol or int(value) == raw[state]


def test_overdue_by_agency_in_the_email_is_the_xlsx_table(summary):
    s, cfg = summary
    b = _built(s, cfg)
    table = next((t for t in b.workbook_tables if t.sheet == "Overdue by agency"), None)
    sec = next(sec for sec in b.sections if sec.title == "Overdue actions by agency")
    if table is None:  # no agency has an overdue action
        assert not s["categories"]["owner_agency"]
        return
    region_col = {name: cells[-1] for name, cells, _ in table.rows}
    figures = [v for k, v in sec.blocks if k == "figures"]
    sentence = " ".join(v for k, v in sec.blocks if k == "p")
    for agency, value in region_col.items():
        if agency == "All agencies" or value == "0":
            continue
        if value == cfg.suppression_symbol:  # named in words, never as a line of c
            assert agency in sentence
        else:
            assert [(agency, [(b.region, value)])] == [f for f in figures[0] if f[0] == agency]


def test_a_lone_hidden_trend_cell_hides_its_twelve_month_figure(summary):
    """At realistic volumes each row has several hidden trend cells; here every trend cell is
    shown but one of Liverpool's, so its 12-month "due" would give that one away."""
    s, cfg = summary
    b = _built(s, cfg)
    sym = cfg.suppression_symbol
    trend_keys = [key for key in b.g._made if key[0][0] == "trend"]
    for key in trend_keys:
        grid = b.g._made[key]
        b.g._made[key] = grid.mask(grid == sym, "0")  # every trend cell shown...
    lone = trend_keys[0]
    b.g._made[lone].loc["liverpool", TOTAL] = sym  # ...but one
    for key in [k for k in b.g._made if k[0] == ("rolling", "timeliness")]:
        del b.g._made[key]
    assert b.trend_components(None) == {("liverpool", TOTAL)}
    b.in_numbers()
    rolling = next(g for key, g in b.g._made.items() if key[0] == ("rolling", "timeliness"))
    assert rolling.loc["liverpool", TOTAL] == sym
    # and the column still adds up without giving it away: another partnership's is hidden too
    assert sum(rolling.loc[c, TOTAL] == sym for c in b.g.codes) >= 2


def test_fewer_than_a_quarter_of_the_regional_figures_are_c(summary):
    """The done-when of issue 17 on more than the browser test's one history: table cells and bold
    figures of the regional bulletin's HTML (tests/browser/test_bulletin_reading.py counts the same)."""
    from reviews.learning.bulletin import render_bulletin

    s, cfg = summary
    figures = published_figures(render_bulletin(s, cfg, REGION).html)
    assert len(figures) >= 10, figures
    assert figures.count(cfg.suppression_symbol) / len(figures) < 0.25, figures
