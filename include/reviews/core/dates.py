"""Parse the dates partnerships write: their own format, ISO always, Excel serials in workbooks.

Day first is never guessed from the data: `03/04/2024` is 3 April because the partnership's
configured format says so. Blank means unknown (NaT), and is not an error; text that is not a
date in any accepted form is an error the quality checks report with the original text.
"""
from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import pandas as pd

ISO_FORMAT = "%Y-%m-%d"
EXCEL_EPOCH = pd.Timestamp("1899-12-30")
# Excel serials we accept: 1 Jan 1960 .. 31 Dec 2099 (anything else is not a plausible case date).
_SERIAL_MIN, _SERIAL_MAX = 21916, 73050


def parse_dates(values: pd.Series, date_format: str, *, excel_serials: bool = True) -> tuple[pd.Series, pd.Series]:
    """Return (parsed datetime64 series, mask of cells that are non-blank but not a date)."""
    parsed, bad, _ = parse_dates_by_format(values, date_format, excel_serials=excel_serials)
    return parsed, bad


def parse_dates_by_format(values: pd.Series, date_format: str, *,
                          excel_serials: bool = True) -> tuple[pd.Series, pd.Series, pd.Series]:
    """parse_dates, and the mask of cells read with the partnership's own format.

    The result takes its unit from that first reading alone (later readings only fill it in):
    pandas gives a unit to the dates it read, and NaT-only readings the unit of `unread_unit`.
    """
    text = values.astype("string").str.strip()
    blank = text.isna() | (text == "")
    parsed = pd.to_datetime(text.where(~blank), format=date_format, errors="coerce")
    by_format = parsed.notna()
    if date_format != ISO_FORMAT:
        iso = pd.to_datetime(text.where(parsed.isna() & ~blank), format=ISO_FORMAT, errors="coerce")
        parsed = parsed.fillna(iso)
    # Workbooks hand over datetimes as ISO text with a time part ("2024-04-03 00:00:00").
    stamp = pd.to_datetime(text.where(parsed.isna() & ~blank), format="%Y-%m-%d %H:%M:%S", errors="coerce")
    parsed = parsed.fillna(stamp)
    if excel_serials:
        # Plain float64 (NaN for not-a-number): pandas' nullable Float64 keeps the numbers behind
        # its mask, and to_timedelta would overflow on a huge one even where it is masked.
        num = pd.to_numeric(text.where(parsed.isna() & ~blank), errors="coerce").astype("float64")
        ok = num.notna() & (num == num.round()) & num.between(_SERIAL_MIN, _SERIAL_MAX)
        serial = EXCEL_EPOCH + pd.to_timedelta(num.where(ok), unit="D")
        parsed = parsed.fillna(serial)
    parsed = parsed.dt.normalize()
    bad = ~blank & parsed.isna()
    return parsed, bad, by_format


@lru_cache(maxsize=64)
def unread_unit(date_format: str) -> np.dtype:
    """The dtype parse_dates gives cells none of which its first reading (the partnership's format) reads."""
    return pd.to_datetime(pd.Series([pd.NA], dtype="string"), format=date_format, errors="coerce").dtype


def to_iso(parsed: pd.Series) -> pd.Series:
    """ISO strings for parsed dates, None for NaT."""
    out = parsed.dt.strftime(ISO_FORMAT)
    return out.astype(object).where(parsed.notna(), None)


# Directives that say nothing finer than a second and no time zone: pandas reads every date
# written in a format made of these alone at one unit (its finest, fractions of a second, never
# comes into it), so dates read apart share the unit they would have been read with together.
_ONE_UNIT_DIRECTIVES = frozenset("aAbBdHIjmMpSyY")


def reads_at_one_unit(date_format: str) -> bool:
    """Whether every date the format reads gets the same unit (see _ONE_UNIT_DIRECTIVES)."""
    directives = re.findall(r"%(.?)", date_format.replace("%%", ""))
    return set(directives) <= _ONE_UNIT_DIRECTIVES
