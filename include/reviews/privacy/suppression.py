"""Small-number suppression for any table that leaves the business unit.

Why: a partnership sees only a few serious incidents a year, so a count of 1 to 5 could point to
a child. We follow DfE practice (docs/domain.md): counts in the configured range are shown as a symbol
("c"), zero is shown, and secondary suppression hides further cells so that no suppressed cell
can be worked out from the row and column totals that are published beside it.

Method, for a grid of counts with optional row totals (a "Total" column) and column totals (a
"Total" row). Every row and every column of the full grid, totals included, is one equation
`sum(parts) == total`.
1. Primary: every cell, totals included, whose value is in [low, high].
2. Line rule (the classic one): while some equation has exactly one hidden cell, also hide the
   smallest non-zero shown cell of that equation (inner cells before totals).
3. Audit: the line rule alone misses chains (a hidden cell fixed by combining several equations).
   So we solve the published system: a hidden cell is recoverable when it lies outside every
   null-space direction of the hidden cells' equations. While one is recoverable, hide the
   smallest non-zero shown cell sharing an equation with it and repeat from step 2. This ends:
   once every non-zero cell is hidden, nothing is recoverable.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

DEFAULT_LOW = 1
DEFAULT_HIGH = 5
DEFAULT_SYMBOL = "c"
TOTAL = "Total"

Cell = tuple[int, int]
# One equation: (parts, total cell) meaning sum(parts) == total.
Line = tuple[tuple[Cell, ...], Cell]


def suppress_value(n: int, low: int = DEFAULT_LOW, high: int = DEFAULT_HIGH, symbol: str = DEFAULT_SYMBOL) -> str:
    """One count as published: the symbol when it is small, the number otherwise (zero shown)."""
    n = int(n)
    if n < 0:
        raise ValueError(f"counts cannot be negative: {n}")
    return symbol if low <= n <= high else str(n)


def with_totals(values: np.ndarray, total_row: bool = True, total_col: bool = True) -> np.ndarray:
    """The full grid: inner counts plus a totals column and/or a totals row (grand total in the corner)."""
    grid = np.asarray(values, dtype=np.int64)
    if total_col:
        grid = np.hstack([grid, grid.sum(axis=1, keepdims=True)])
    if total_row:
        grid = np.vstack([grid, grid.sum(axis=0, keepdims=True)])
    return grid


def table_lines(shape: tuple[int, int], total_row: bool, total_col: bool) -> list[Line]:
    """The equations a reader can write down from the published totals of a full grid."""
    n_rows, n_cols = shape
    lines: list[Line] = []
    if total_col:  # each row (the totals row too) adds up to its row total
        for i in range(n_rows):
            lines.append((tuple((i, j) for j in range(n_cols - 1)), (i, n_cols - 1)))
    if total_row:  # each column (the totals column too) adds up to its column total
        for j in range(n_cols):
            lines.append((tuple((i, j) for i in range(n_rows - 1)), (n_rows - 1, j)))
    return lines


def recoverable_cells(grid: np.ndarray, hidden: np.ndarray, lines: list[Line]) -> list[Cell]:
    """Hidden cells whose value follows exactly from the shown cells and the equations."""
    unknown = [tuple(map(int, c)) for c in np.argwhere(hidden)]
    if not unknown or not lines:
        return []
    col_of = {c: k for k, c in enumerate(unknown)}
    a = np.zeros((len(lines), len(unknown)))
    for r, (parts, total) in enumerate(lines):
        for c in parts:
            if c in col_of:
                a[r, col_of[c]] += 1.0
        if total in col_of:
            a[r, col_of[total]] -= 1.0
    a = a[np.any(a != 0, axis=1)]
    if a.size == 0:
        return []
    _, s, vt = np.linalg.svd(a, full_matrices=True)
    rank = int((s > 1e-9).sum())
    null = vt[rank:].T  # unknowns x nullity
    if null.size == 0:
        return list(unknown)
    fixed = np.all(np.abs(null) < 1e-9, axis=1)
    return [c for c, f in zip(unknown, fixed) if f]


def _is_total(cell: Cell, shape: tuple[int, int], total_row: bool, total_col: bool) -> bool:
    return (total_row and cell[0] == shape[0] - 1) or (total_col and cell[1] == shape[1] - 1)


def _pick(grid, hidden, cells, shape, total_row, total_col, keep=frozenset()) -> Cell | None:
    """The cell to hide next among `cells`: smallest non-zero shown one, inner cells before totals
    (never one in `keep`: published elsewhere)."""
    options = [c for c in cells if not hidden[c] and grid[c] > 0 and c not in keep]
    if not options:
        return None
    return min(options, key=lambda c: (_is_total(c, shape, total_row, total_col), int(grid[c]), c))


_MASKS: dict[tuple, np.ndarray] = {}  # suppression_mask's answers, by grid and settings
_MASKS_KEPT = 512


def suppression_mask(
    grid: np.ndarray,
    low: int = DEFAULT_LOW,
    high: int = DEFAULT_HIGH,
    total_row: bool = True,
    total_col: bool = True,
    shown: frozenset[Cell] = frozenset(),
    hidden: frozenset[Cell] = frozenset(),
    unpublished: frozenset[Cell] = frozenset(),
) -> np.ndarray:
    """Boolean mask of the cells to hide in a full grid (totals already in place, see with_totals).

    `unpublished`: cells no output shows (e.g. "all other outcomes" beside the one published).
    They are hidden, so they keep the published cells of their lines from giving each other away,
    and they need protecting only when small themselves (a large one worked out discloses nothing).

    `shown` and `hidden` link the grid to another published table holding some of its cells (e.g.
    its totals): a cell shown there is public, so it is never chosen here for secondary suppression
    (and the audit counts it as known); a cell hidden there is hidden here too.

    The answer depends on the grid and the settings only, so it is remembered (a copy is handed
    out): a period's bulletins suppress the same grids once per audience, 153 times at national
    scale, and the audit below is the costly part.
    """
    grid = np.asarray(grid, dtype=np.int64)
    key = (grid.shape, grid.tobytes(), int(low), int(high), bool(total_row), bool(total_col),
           tuple(sorted(shown)), tuple(sorted(hidden)), tuple(sorted(unpublished)))
    known = _MASKS.get(key)
    if known is None:
        known = _suppression_mask(grid, low, high, total_row, total_col, frozenset(shown), frozenset(hidden),
                                  frozenset(unpublished))
        if len(_MASKS) >= _MASKS_KEPT:
            _MASKS.pop(next(iter(_MASKS)))
        _MASKS[key] = known
    return known.copy()


def _suppression_mask(grid: np.ndarray, low: int, high: int, total_row: bool, total_col: bool,
                      keep: frozenset[Cell] = frozenset(), force: frozenset[Cell] = frozenset(),
                      unpublished: frozenset[Cell] = frozenset()) -> np.ndarray:
    if (grid < 0).any():
        raise ValueError("counts cannot be negative")
    shape = grid.shape
    hidden = (grid >= low) & (grid <= high)
    for c in (*force, *unpublished):
        hidden[c] = True
    # unpublished cells that may be worked out: not small, and not hidden for a linked table
    free = {c for c in unpublished if not (low <= grid[c] <= high) and c not in force}
    lines = table_lines(shape, total_row, total_col)
    while True:
        changed = True
        while changed:  # step 2: the line rule, until stable
            changed = False
            for parts, total in lines:
                cells = (*parts, total)
                alone = [c for c in cells if hidden[c]]
                if len(alone) == 1 and alone[0] not in free:
                    pick = _pick(grid, hidden, cells, shape, total_row, total_col, keep)
                    if pick is not None:
                        hidden[pick] = True
                        changed = True
        exposed = [c for c in recoverable_cells(grid, hidden, lines) if c not in free]  # step 3: the audit
        if not exposed:
            return hidden
        target = exposed[0]
        near = [c for parts, total in lines if target in (*parts, total) for c in (*parts, total)]
        pick = _pick(grid, hidden, near, shape, total_row, total_col, keep)
        if pick is None:  # nothing shown beside it: widen to the whole grid
            pick = _pick(grid, hidden, [tuple(map(int, c)) for c in np.argwhere(~hidden)], shape, total_row,
                         total_col, keep)
        if pick is None:  # cannot happen for consistent counts; never loop forever
            return hidden
        hidden[pick] = True


def suppress_table(
    df: pd.DataFrame,
    low: int = DEFAULT_LOW,
    high: int = DEFAULT_HIGH,
    symbol: str = DEFAULT_SYMBOL,
    total_row: bool = True,
    total_col: bool = True,
    total_label: str = TOTAL,
    shown: frozenset[Cell] = frozenset(),
    hidden: frozenset[Cell] = frozenset(),
    unpublished: frozenset[Cell] = frozenset(),
) -> pd.DataFrame:
    """Publishable strings for a table of counts: totals added, primary and secondary suppression
    (`shown`, `hidden`: cells of the full grid published, or hidden, in a linked table;
    `unpublished`: cells never shown; see suppression_mask).

    `df` holds the inner counts only (blank counts as 0); the totals are computed here from the
    unsuppressed counts so they are always consistent. The result has a `total_label` row and/or
    column, and every value is a string: a number, "0", or `symbol`.
    """
    values = df.fillna(0).astype("int64").to_numpy()
    grid = with_totals(values, total_row, total_col)
    mask = suppression_mask(grid, low, high, total_row, total_col, frozenset(shown), frozenset(hidden),
                            frozenset(unpublished))
    index = list(df.index) + ([total_label] if total_row else [])
    columns = list(df.columns) + ([total_label] if total_col else [])
    cells = [
        [symbol if mask[i, j] else str(int(grid[i, j])) for j in range(grid.shape[1])]
        for i in range(grid.shape[0])
    ]
    out = pd.DataFrame(cells, index=index, columns=columns, dtype=object)
    out.index.name = df.index.name
    out.columns.name = df.columns.name
    return out


def suppress_counts(
    counts: Mapping[str, int],
    low: int = DEFAULT_LOW,
    high: int = DEFAULT_HIGH,
    symbol: str = DEFAULT_SYMBOL,
    total_label: str = TOTAL,
) -> dict[str, str]:
    """A one-way list of counts with its total (e.g. by type), suppressed as a one-column table."""
    df = pd.DataFrame({"n": pd.Series(dict(counts), dtype="int64")})
    out = suppress_table(df, low, high, symbol, total_row=True, total_col=False, total_label=total_label)
    return {str(k): str(v) for k, v in out["n"].items()}
