"""Replace child references with a keyed hash at ingest, so the raw reference is never stored.

HMAC-SHA256 with a secret key (from an Airflow connection or the environment, never the repo),
over the partnership code and the reference with case and spaces folded: the same child in the
same partnership always gets the same key, and nobody without the key can reverse or recompute it.
"""
from __future__ import annotations

import hashlib
import hmac

import pandas as pd

KEY_MIN_LENGTH = 16


class PseudonymisationKeyError(ValueError):
    """The key is missing or too short to be a secret."""


def check_key(key: str | bytes | None) -> bytes:
    if not key:
        raise PseudonymisationKeyError(
            "no pseudonymisation key: set the Airflow connection 'reviews_pseudonymisation' "
            "(password field) or the environment variable REVIEWS_PSEUDONYMISATION_KEY"
        )
    raw = key.encode("utf-8") if isinstance(key, str) else key
    if len(raw) < KEY_MIN_LENGTH:
        raise PseudonymisationKeyError(f"the pseudonymisation key must be at least {KEY_MIN_LENGTH} characters")
    return raw


def normalise_ref(ref: str) -> str:
    return "".join(str(ref).split()).upper()


def child_key(ref: str | None, partnership_code: str, key: bytes) -> str | None:
    """The keyed hash of one reference (None stays None: unknown is not a child)."""
    if ref is None or str(ref).strip() == "":
        return None
    msg = f"{partnership_code}|{normalise_ref(ref)}".encode("utf-8")
    return hmac.new(key, msg, hashlib.sha256).hexdigest()[:32]


def pseudonymise_series(refs: pd.Series, partnership_code: str, key: bytes) -> pd.Series:
    """child_key of every reference, each distinct reference hashed once (a child is in many
    rows and in every cumulative return). Only text and None are looked up by value: anything
    else (a NaN is not equal to itself) is hashed cell by cell."""
    cells = refs.tolist()
    if set(map(type, cells)) <= {str, type(None)}:
        keys = {r: child_key(r, partnership_code, key) for r in dict.fromkeys(cells)}
        return pd.Series(list(map(keys.__getitem__, cells)), index=refs.index, dtype=object)
    return pd.Series([child_key(r, partnership_code, key) for r in refs], index=refs.index, dtype=object)
