"""Small-number suppression: primary, secondary, and that no hidden count can be recovered."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reviews.privacy.suppression import (
    TOTAL,
    recoverable_cells,
    suppress_counts,
    suppress_table,
    suppress_value,
    suppression_mask,
    table_lines,
    with_totals,
)


def test_suppress_value_hides_one_to_five_and_shows_zero():
    assert [suppress_value(n) for n in range(8)] == ["0", "c", "c", "c", "c", "c", "6", "7"]
    assert suppress_value(3, low=1, high=2, symbol="*") == "3"
    assert suppress_value(2, low=1, high=2, symbol="*") == "*"
    with pytest.raises(ValueError):
        suppress_value(-1)


def test_one_small_cell_in_a_row_forces_a_second():
    df = pd.DataFrame({"a": [3, 20], "b": [10, 30], "c": [12, 40]}, index=["x", "y"])
    out = suppress_table(df)
    # 3 is primary; row x's next smallest (10) and column a's next smallest (20) are secondary,
    # and then column b / row y need a partner too.
    assert out.loc["x", "a"] == "c"
    assert out.loc["x", "b"] == "c"
    assert out.loc["y", "a"] == "c"
    assert out.loc["y", "b"] == "c"
    assert out.loc["x", "c"] == "12"
    assert out.loc[TOTAL, TOTAL] == "115"
    assert list(out.columns) == ["a", "b", "c", TOTAL]
    assert list(out.index) == ["x", "y", TOTAL]


def test_zero_is_shown_and_never_chosen_for_secondary():
    df = pd.DataFrame({"a": [0, 9], "b": [2, 8], "c": [9, 7]}, index=["x", "y"])
    out = suppress_table(df)
    assert out.loc["x", "a"] == "0"
    assert out.loc["x", "b"] == "c"
    assert (out == "c").to_numpy().sum() >= 4


def test_no_small_counts_means_nothing_hidden():
    df = pd.DataFrame({"a": [0, 9], "b": [6, 8]}, index=["x", "y"])
    out = suppress_table(df)
    assert not (out == "c").to_numpy().any()
    assert out.loc[TOTAL, "b"] == "14"


def test_small_totals_are_hidden_too():
    df = pd.DataFrame({"a": [2, 0], "b": [0, 0]}, index=["x", "y"])
    out = suppress_table(df)
    assert out.loc["x", "a"] == "c" and out.loc["x", TOTAL] == "c" and out.loc[TOTAL, TOTAL] == "c"
    assert out.loc["y", TOTAL] == "0"


def test_one_way_counts():
    out = suppress_counts({"death": 4, "serious_harm": 12, "other": 0})
    assert out == {"death": "c", "serious_harm": "c", "other": "0", TOTAL: "16"}


def test_without_totals_only_primary_applies():
    df = pd.DataFrame({"a": [3, 20], "b": [10, 30]}, index=["x", "y"])
    out = suppress_table(df, total_row=False, total_col=False)
    assert out.to_numpy().tolist() == [["c", "10"], ["20", "30"]]


def test_line_rule_misses_a_chain_and_the_audit_catches_it():
    # Hidden cells (1-5) form two 2x2 blocks joined by cell (1, 2): every row and column holds 0,
    # 2 or 3 of them, so the line rule finds nothing, yet rows 0+1 minus columns 0+1 give (1, 2).
    grid = np.array([[2, 3, 9, 8], [4, 1, 2, 7], [9, 8, 3, 4], [7, 9, 5, 1]])
    full = with_totals(grid)
    lines = table_lines(full.shape, True, True)
    primary = (full >= 1) & (full <= 5)
    assert recoverable_cells(full, primary, lines) == [(1, 2)]
    mask = suppression_mask(full)
    assert mask.sum() > primary.sum()
    assert recoverable_cells(full, mask, lines) == []


# --- the disclosure proof: from the published table alone, no hidden value can be worked out ---

def _published_equations(out: pd.DataFrame, symbol: str = "c"):
    """Unknowns and the linear system a reader can write from the published strings only."""
    values = out.to_numpy()
    n_rows, n_cols = values.shape
    unknown = [(i, j) for i in range(n_rows) for j in range(n_cols) if values[i, j] == symbol]
    idx = {c: k for k, c in enumerate(unknown)}
    a_rows, b = [], []
    lines = [[(i, j) for j in range(n_cols)] for i in range(n_rows)] + [
        [(i, j) for i in range(n_rows)] for j in range(n_cols)
    ]
    for cells in lines:
        coeff = np.zeros(len(unknown))
        rhs = 0.0
        for k, c in enumerate(cells):
            sign = -1.0 if k == len(cells) - 1 else 1.0  # parts minus the total == 0
            if c in idx:
                coeff[idx[c]] += sign
            else:
                rhs -= sign * float(values[c])
        a_rows.append(coeff)
        b.append(rhs)
    return unknown, np.array(a_rows), np.array(b)


def _recoverable_by_reader(out: pd.DataFrame) -> list[tuple[int, int]]:
    """Hidden cells pinned down by the totals: by subtraction in one line, or any combination."""
    unknown, a, _ = _published_equations(out)
    found = []
    for k, cell in enumerate(unknown):
        e = np.zeros(len(unknown))
        e[k] = 1.0
        if np.linalg.matrix_rank(np.vstack([a, e])) == np.linalg.matrix_rank(a):
            found.append(cell)
    return found


def _single_hidden_lines(out: pd.DataFrame) -> int:
    v = out.to_numpy() == "c"
    return int(((v.sum(axis=0) == 1).sum()) + ((v.sum(axis=1) == 1).sum()))


@pytest.mark.parametrize("seed", range(60))
def test_no_suppressed_value_can_be_recovered_from_totals(seed):
    rng = np.random.default_rng(seed)
    n_rows, n_cols = int(rng.integers(2, 7)), int(rng.integers(2, 6))
    # Small-area counts: many zeros and small numbers, some larger ones.
    values = rng.choice([0, 0, 1, 2, 3, 4, 5, 6, 7, 9, 12, 20], size=(n_rows, n_cols))
    df = pd.DataFrame(values, index=[f"r{i}" for i in range(n_rows)], columns=[f"k{j}" for j in range(n_cols)])
    out = suppress_table(df)
    full = with_totals(values)
    shown = out.to_numpy()
    # Every count from 1 to 5 is hidden, zero is shown, shown numbers are the true ones.
    for (i, j), n in np.ndenumerate(full):
        if 1 <= n <= 5:
            assert shown[i, j] == "c"
        elif shown[i, j] != "c":
            assert shown[i, j] == str(n)
    assert "c" not in shown[full == 0]
    # No row or column has exactly one hidden cell: nothing falls out by one subtraction...
    assert _single_hidden_lines(out) == 0
    # ...and no combination of the published totals pins a hidden cell down either.
    assert _recoverable_by_reader(out) == []


def test_reader_check_would_catch_a_leak():
    """The proof above is not vacuous: primary suppression alone leaks through the totals."""
    df = pd.DataFrame({"a": [3, 20], "b": [10, 30]}, index=["x", "y"])
    full = with_totals(df.to_numpy())
    naive = pd.DataFrame(np.where((full >= 1) & (full <= 5), "c", full.astype(str)))
    assert _recoverable_by_reader(naive) == [(0, 0)]
    assert _recoverable_by_reader(suppress_table(df)) == []


@pytest.mark.parametrize("seed", range(40))
def test_an_unpublished_column_protects_small_counts_and_spares_the_cells_beside_it(seed):
    """An outcome published beside "all others" (never shown): no small count, the unpublished
    ones included, can be worked out from what is shown; a large unpublished one may be."""
    rng = np.random.default_rng(1000 + seed)
    n_rows = int(rng.integers(2, 7))
    values = rng.choice([0, 0, 1, 2, 3, 4, 5, 6, 7, 9, 12, 20], size=(n_rows, 3))
    df = pd.DataFrame(values, index=[f"r{i}" for i in range(n_rows)], columns=["shown_a", "shown_b", "rest"])
    rows = n_rows + 1
    unpublished = frozenset((i, 2) for i in range(rows))
    out = suppress_table(df, unpublished=unpublished)
    full = with_totals(values)
    grid = out.to_numpy().copy()
    for i in range(rows):
        grid[i, 2] = "c"  # the reader never sees the rest
    unknown, a, _ = _published_equations(pd.DataFrame(grid))
    for k, cell in enumerate(unknown):
        e = np.zeros(len(unknown))
        e[k] = 1.0
        if np.linalg.matrix_rank(np.vstack([a, e])) == np.linalg.matrix_rank(a):
            assert not 1 <= full[cell] <= 5, (cell, full[cell], grid)
    for (i, j), n in np.ndenumerate(full):
        if 1 <= n <= 5:
            assert out.to_numpy()[i, j] == "c"


def test_an_unpublished_column_hides_less_than_publishing_it():
    """The reason for it: a rare small outcome no longer hides the published figure beside it."""
    df = pd.DataFrame({"lcspr": [7, 9], "national": [1, 0], "rest": [10, 12]}, index=["x", "y"])
    assert suppress_table(df).loc["x", "lcspr"] == "c"  # national 1 alone in its row: lcspr goes too
    spared = suppress_table(df, unpublished=frozenset((i, 2) for i in range(3)))
    assert spared.loc["x", "national"] == "c"
    assert spared.loc["x", "lcspr"] == "7" and spared.loc["x", TOTAL] == "18"
