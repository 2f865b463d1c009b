"""A DataFrame column as the Python values the warehouse binds: `date`s for datetimes, `int`s for
nullable integers, None for every kind of blank (NaT, NA, NaN, None). timeliness.to_records and
warehouse.insert_frame both write frames through this, so both store the same values."""
from __future__ import annotations

import numpy as np
import pandas as pd


def column_values(series: pd.Series) -> list:
    if series.dtype.kind == "M":
        return series.to_numpy().astype("datetime64[D]").astype(object).tolist()  # NaT -> None
    if isinstance(series.dtype, pd.Int64Dtype):
        return series.to_numpy(dtype=object, na_value=None).tolist()
    values = series.astype(object).to_numpy()
    return np.where(pd.isna(values), None, values).tolist()
