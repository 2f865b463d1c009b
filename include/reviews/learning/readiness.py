"""Is a reporting period's data in? Bulletins are built from complete data, or say what is missing.

A bulletin period is covered, for each partnership, by the return for the returns period that
contains its last day (config `returns`: with quarterly returns, July's bulletin waits for the
July-to-September return, due 10 October). Per partnership, from the returns loaded so far:

  in        a return dated on or after that returns period's last day has loaded, by its due date
  late      ... loaded, dated after its due date
  unusable  such a return arrived but nothing of it could be loaded (every file failed or rejected)
  missing   no such return, and its due date has passed
  not_due   no such return yet, and it is not due yet

The period is ready (its bulletins may be built) when every partnership is `in` or `late`, or when
the as-of date is more than `summary.wait_for_returns_days` after the due date and at least one
partnership's return is in: then the bulletin says, at the top and in words, whose data is missing
or late (`notices`). With no return in at all, the period keeps waiting. The same loaded data
always gives the same words, so a rebuild changes nothing until a return arrives.

`bulletin_periods` keeps what each summary run found (waiting or built, and each partnership's
status), so later runs know which periods still wait, and which were built without someone's data
and must be rebuilt (an updated version, signed off again) when it arrives.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Engine, func, select

from reviews.core import warehouse as wh
from reviews.core.audit import audit_now
from reviews.core.config import RETURN_PERIOD_KIND, Config, returns_due_for
from reviews.core.reporting_periods import long_date, period_containing, period_label

IN, LATE, UNUSABLE, MISSING, NOT_DUE = "in", "late", "unusable", "missing", "not_due"
HAVE_DATA = (IN, LATE)
WAITING, BUILT = "waiting", "built"
USABLE_FILE_STATUSES = ("loaded", "partial")


@dataclass(frozen=True)
class PartnershipData:
    code: str
    name: str
    status: str
    due: date | None
    received: date | None  # the date of the first return covering the period (its file name's)

    def to_json(self) -> dict:
        return {"status": self.status, "due": self.due.isoformat() if self.due else None,
                "received": self.received.isoformat() if self.received else None}


@dataclass(frozen=True)
class Readiness:
    period_start: date
    period_end: date
    as_of: date
    due: date | None  # when the returns covering the period were due (None: returns are not checked)
    wait_until: date | None  # the last day bulletins wait for a missing return
    partnerships: tuple[PartnershipData, ...]

    @property
    def label(self) -> str:
        return period_label(self.period_start, self.period_end)

    @property
    def complete(self) -> bool:
        return all(p.status in HAVE_DATA for p in self.partnerships)

    @property
    def ready(self) -> bool:
        """Everyone's data is in; or the wait is over and someone's is (a bulletin of no new data
        at all would only say that: the period waits, and the status page shows it)."""
        waited = self.wait_until is not None and self.as_of > self.wait_until
        return self.complete or (waited and len(self.without_data) < len(self.partnerships))

    @property
    def without_data(self) -> list[PartnershipData]:
        return [p for p in self.partnerships if p.status not in HAVE_DATA]

    def data_status(self) -> dict[str, dict]:
        """Each partnership's status, as stored (bulletins.data_status, bulletin_periods.data_status)."""
        return {p.code: p.to_json() for p in self.partnerships}

    def notices(self) -> list[str]:
        """What a reader must know about the data, in words, for the top of the bulletin."""
        return [n for p in self.partnerships if (n := notice(p, self.label))]

    def describe(self) -> str:
        """One line for logs: whose returns the period waits for, or why it is ready."""
        if self.complete:
            return f"{self.label}: every partnership's return is in"
        names = ", ".join(f"{p.name} ({p.status.replace('_', ' ')})" for p in self.without_data)
        if self.ready:
            return f"{self.label}: built without {names}: waited until {long_date(self.wait_until)}"
        if self.as_of > self.wait_until:
            return (f"{self.label}: no partnership's return is in ({names}; due {long_date(self.due)}): "
                    "built when the first arrives")
        return (f"{self.label}: waiting for the returns of {names}, due {long_date(self.due)}; built when they are "
                f"in, or after {long_date(self.wait_until)} without them")


def notice(p: PartnershipData, label: str) -> str | None:
    """The sentence a bulletin carries about one partnership's data (None: on time, nothing to say)."""
    due = long_date(p.due) if p.due else "its due date"
    if p.status == LATE:
        days = (p.received - p.due).days if p.received and p.due else 0
        return (f"{p.name}'s return for {label} arrived late, on {long_date(p.received)} "
                f"({days} day{'s' if days != 1 else ''} after it was due on {due}).")
    if p.status == UNUSABLE:
        return (f"{p.name}'s return for {label} arrived but could not be loaded: {p.name}'s figures here are "
                f"from earlier returns only and may be incomplete.")
    if p.status in (MISSING, NOT_DUE):
        return (f"{p.name}'s return for {label}, due {due}, had not arrived when this bulletin was built: "
                f"{p.name}'s figures here are from earlier returns only and may be incomplete.")
    return None


def _returns_by_partnership(engine: Engine, codes: list[str]) -> dict[str, list[tuple[date, str]]]:
    rf = wh.return_files.c
    out: dict[str, list[tuple[date, str]]] = {c: [] for c in codes}
    with engine.connect() as conn:
        for code, day, status in conn.execute(
            select(rf.partnership_code, rf.return_date, rf.status)
            .where(rf.partnership_code.in_(codes), rf.return_date.is_not(None))
        ):
            out[code].append((day if isinstance(day, date) else date.fromisoformat(str(day)), status))
    return out


def period_readiness(engine: Engine, cfg: Config, period_start: date, period_end: date, as_of: date) -> Readiness:
    """Each partnership's data for the period as the warehouse holds it, judged as of `as_of`."""
    codes = list(cfg.partnerships)
    if cfg.returns is None:  # returns are not checked: whatever is loaded is all there is
        parts = tuple(PartnershipData(c, cfg.partnerships[c].name, IN, None, None) for c in codes)
        return Readiness(period_start, period_end, as_of, None, None, parts)
    covering_end = period_containing(period_end, RETURN_PERIOD_KIND[cfg.returns.frequency]).end
    due = returns_due_for(cfg, period_end)
    files = _returns_by_partnership(engine, codes)
    parts = []
    for code in codes:
        dated = sorted(files[code])
        usable = next((d for d, s in dated if d >= covering_end and s in USABLE_FILE_STATUSES), None)
        arrived = next((d for d, _ in dated if d >= covering_end), None)
        if usable is not None:
            status, received = (IN if usable <= due else LATE), usable
        elif arrived is not None:
            status, received = UNUSABLE, arrived
        else:
            status, received = (MISSING if as_of > due else NOT_DUE), None
        parts.append(PartnershipData(code, cfg.partnerships[code].name, status, due, received))
    wait_until = due + timedelta(days=cfg.summary.wait_for_returns_days)
    return Readiness(period_start, period_end, as_of, due, wait_until, tuple(parts))


def data_as_of(engine: Engine, as_of: date) -> date:
    """The date a run judges readiness as of: its own as-of date, or the newest return loaded if
    later (a backfill of an old period runs "in the past", but its returns have long arrived)."""
    rf = wh.return_files.c
    with engine.connect() as conn:
        newest = conn.execute(select(func.max(rf.return_date)).where(rf.status.in_(USABLE_FILE_STATUSES))).scalar()
    if newest is not None and not isinstance(newest, date):
        newest = date.fromisoformat(str(newest))
    return max(as_of, newest) if newest else as_of


# ---------------------------------------------------------------------------------------------
# bulletin_periods: what summary runs found


def record(engine: Engine, r: Readiness, status: str, *, signoff_wanted: bool | None = None,
           clock=audit_now) -> None:
    """Upsert the period's row (status waiting | built); signoff_wanted None keeps the stored value."""
    t = wh.bulletin_periods
    key = (t.c.period_start == r.period_start) & (t.c.period_end == r.period_end)
    values = {"status": status, "data_status": json.dumps(r.data_status(), sort_keys=True),
              "checked_as_of": r.as_of, "updated_at": clock()}
    with engine.begin() as conn:
        found = conn.execute(select(t.c.signoff_wanted).where(key)).first()
        if found is None:
            conn.execute(t.insert(), {"period_start": r.period_start, "period_end": r.period_end,
                                      "signoff_wanted": bool(signoff_wanted), **values})
        else:
            if signoff_wanted is not None:
                values["signoff_wanted"] = signoff_wanted
            conn.execute(t.update().where(key).values(**values))


def periods_to_recheck(engine: Engine) -> list[tuple[date, date]]:
    """Periods still waiting for returns, and periods built without someone's data (a return that
    arrives for them gives an updated version)."""
    t = wh.bulletin_periods.c
    out = []
    with engine.connect() as conn:
        for start, end, status, data in conn.execute(select(t.period_start, t.period_end, t.status, t.data_status)):
            parts = json.loads(data or "{}")
            if status == WAITING or any(v.get("status") not in HAVE_DATA for v in parts.values()):
                out.append((start, end))
    return sorted(out)


def take_signoff_wanted(engine: Engine) -> list[tuple[date, date]]:
    """The periods whose new version waits for a sign-off request, marking them taken."""
    t = wh.bulletin_periods
    with engine.begin() as conn:
        rows = [(r.period_start, r.period_end) for r in conn.execute(
            select(t.c.period_start, t.c.period_end).where(t.c.signoff_wanted.is_(True)))]
        if rows:
            conn.execute(t.update().where(t.c.signoff_wanted.is_(True)).values(signoff_wanted=False))
    return sorted(rows)


def stored_status(engine: Engine, period_start: date, period_end: date) -> dict | None:
    """The period's bulletin_periods row as a dict (None: no summary run has looked at it)."""
    t = wh.bulletin_periods.c
    with engine.connect() as conn:
        row = conn.execute(select(t.status, t.data_status, t.checked_as_of, t.signoff_wanted)
                           .where(t.period_start == period_start, t.period_end == period_end)).first()
    if row is None:
        return None
    return {"status": row.status, "data_status": json.loads(row.data_status or "{}"),
            "checked_as_of": row.checked_as_of, "signoff_wanted": bool(row.signoff_wanted)}
