"""The one place the package reads the wall clock: audit timestamps (received, loaded, sent).

Business decisions never use it: timeliness and periods come from the run's data interval.
"""
from __future__ import annotations

from datetime import datetime, timezone


def audit_now() -> datetime:
    return datetime.now(timezone.utc)
