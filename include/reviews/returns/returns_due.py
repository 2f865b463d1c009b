"""Late and missing returns: is each partnership's return for each period in, and was it on time?

The config's `returns` says how often returns are due (monthly, or quarterly on calendar quarters)
and how many days after the period ends, from the period ending `expected_from`. Judged as of a
run's as-of date, never the wall clock, so a backfill gives the same answer every time:

  received  the first return the partnership sent for the period: a file, not failed, dated (by
            its file name, or an SQL pull by its run's as-of date) on or after the period's last
            day and before the next period's last day, and not after the as-of date
  on_time   received on or before the due date
  late      received after the due date
  failed    received but not loaded: every file of the period's return was recorded as failed,
            or files for it are in the partnership's folder (drop folder, or the SFTP/SQL staging
            folder) but nothing was recorded (its load failed before recording them, e.g. a
            configuration error); nothing for the period loaded
  missing   nothing received, and the due date has passed (a period not yet due, with nothing
            received, has no row)

`return_expectations` holds one row per partnership and period for each as-of date (a run
replaces its own as-of date's rows). Each late, missing or failed flag is written up once as a
notice to the business unit (a `bulletins` row with audience `returns:{code}` and period = the
period's last day), sent by feedback.send_feedback: a flag that is still there the next day is not
sent again; a missing return that then arrives late (or arrives and fails) is a new flag. A failed
return is flagged once its due date has passed (before that the partnership's data quality report
tells it, and it may send a corrected one in time); its notice says it arrived and could not be
loaded, never that it is missing.
"""
from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import Engine, insert, select

from reviews.core import warehouse as wh
from reviews.core.audit import audit_now
from reviews.core.config import Config, Partnership, ReturnsRule
from reviews.core.rendering import templates
from reviews.core.run_dates import LONDON
from reviews.returns.landing import parse_name, safe_name, sha256_of, unread_digest
from reviews.returns.quality_reports import RETURNS, store_feedback

ON_TIME, LATE, MISSING, FAILED = "on_time", "late", "missing", "failed"
FLAGS = (LATE, MISSING, FAILED)
STATUSES = (ON_TIME, LATE, MISSING, FAILED)


@dataclass(frozen=True)
class Arrival:
    """A file of a return that arrived but was not loaded (no cell of it, only where and when)."""

    return_date: date
    file_id: int | None  # its return_files row; None: in the folder but never recorded
    file_name: str  # the safe form of its name
    arrived_on: date | None  # when it was landed (recorded) or written to the folder (not recorded)

    @property
    def recorded(self) -> bool:
        return self.file_id is not None


def _month_end(d: date) -> date:
    nxt = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    return nxt - timedelta(days=1)


def period_end_of(d: date, frequency: str) -> date:
    """The last day of the period (month, or calendar quarter) that contains `d`."""
    if frequency == "monthly":
        return _month_end(d)
    return _month_end(date(d.year, ((d.month - 1) // 3 + 1) * 3, 1))


def periods(rule: ReturnsRule, upto: date) -> list[tuple[date, date]]:
    """(first day, last day) of every period from the one ending `expected_from` that ends by `upto`."""
    out = []
    end = period_end_of(rule.expected_from, rule.frequency)
    while end <= upto:
        start = end.replace(day=1) if rule.frequency == "monthly" else date(end.year, end.month - 2, 1)
        out.append((start, end))
        end = period_end_of(end + timedelta(days=1), rule.frequency)
    return out


def window(rule: ReturnsRule, end: date) -> tuple[date, date]:
    """[first, last) return dates that count as the return for the period ending `end`."""
    return end, period_end_of(end + timedelta(days=1), rule.frequency)


def window_of(rule: ReturnsRule, day: date) -> date:
    """The last day of the period a return dated `day` would be for: the latest period end on or
    before `day` (the inverse of `window`)."""
    end = period_end_of(day, rule.frequency)
    if end == day:
        return end
    first = end.replace(day=1) if rule.frequency == "monthly" else date(end.year, end.month - 2, 1)
    return first - timedelta(days=1)


def judge(rule: ReturnsRule, returns: list[tuple[date, int]], as_of: date,
          failed: Iterable[Arrival] = ()) -> list[dict]:
    """The period rows for one partnership, from its loaded returns' (return date, file id) pairs
    and the arrivals that were not loaded (`failed`) (see module doc)."""
    rows = []
    dated = sorted((d, fid) for d, fid in returns if d is not None and d <= as_of)
    not_loaded = sorted(((a.return_date, a.file_id is None, a.file_id or 0) for a in failed
                         if a.return_date is not None and a.return_date <= as_of))
    for start, end in periods(rule, as_of):
        lo, hi = window(rule, end)
        due = end + timedelta(days=rule.due_days_after_period_end)
        first = next(((d, fid) for d, fid in dated if lo <= d < hi), None)
        if first is None:
            bad = next(((d, None if unrecorded else fid) for d, unrecorded, fid in not_loaded if lo <= d < hi), None)
            if bad is not None:
                rows.append({"period_start": start, "period_end": end, "due_date": due, "status": FAILED,
                             "received_date": bad[0], "file_id": bad[1]})
                continue
        if first is not None:
            status = ON_TIME if first[0] <= due else LATE
        elif as_of > due:
            status = MISSING
        else:
            continue
        rows.append({"period_start": start, "period_end": end, "due_date": due, "status": status,
                     "received_date": first[0] if first else None, "file_id": first[1] if first else None})
    return rows


def source_folder(partnership: Partnership, inbox: Path, staging: Path) -> Path:
    """The local folder a partnership's files are read from (sources.gather puts them there)."""
    kind = partnership.source.get("kind", "folder")
    if kind in ("sftp", "sql"):
        return Path(staging) / partnership.code / kind
    return Path(inbox) / partnership.code


def unrecorded_arrivals(folder: Path, recorded: set[str], as_of: date,
                        wanted: Callable[[date], bool], *, max_bytes: int | None = None,
                        recorded_names: set[str] = frozenset()) -> list[Arrival]:
    """Files in the partnership's folder, named as a return dated on or before `as_of` for which
    `wanted(return date)`, whose content (sha256, or the stand-in digest ingest records for a
    file over the size limit) is not in `recorded`: they arrived, and no load recorded them.

    A missing folder is no arrival. Hidden files, links and sub-folders are ignored, as ingest
    ignores them. A file that cannot be read to checksum it has arrived all the same, unless a
    file of that (safe) name is recorded (`recorded_names`: ingest records an unreadable file as
    failed under a stand-in digest).
    """
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:  # no folder (yet), or not listable: nothing known to have arrived
        return []
    out = []
    for entry in entries:
        try:
            if entry.name.startswith(".") or entry.is_symlink() or not entry.is_file(follow_symlinks=False):
                continue
            _kind, _dataset, day, err = parse_name(entry.name)
            if err is not None or day is None or day > as_of or not wanted(day):
                continue
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        try:
            if max_bytes is not None and st.st_size > max_bytes:
                digest = unread_digest(entry.name, st.st_size, st.st_mtime_ns)
            else:
                digest, _ = sha256_of(Path(entry.path))
        except OSError:
            digest = None
        if digest in recorded if digest is not None else safe_name(entry.name) in recorded_names:
            continue
        out.append(Arrival(day, None, safe_name(entry.name), _as_date(datetime.fromtimestamp(st.st_mtime, timezone.utc))))
    return out


def _as_date(value) -> date | None:
    """A landing time as the day it was in the UK."""
    if value is None or not isinstance(value, datetime):
        return value
    return (value.astimezone(LONDON) if value.tzinfo is not None else value).date()


def check_returns(
    engine: Engine, cfg: Config, as_of: date, out_dir: Path, clock: Callable[[], datetime] = audit_now,
    *, folders: dict[str, Path] | None = None,
) -> dict:
    """Replace the `return_expectations` rows for `as_of`, write up new flags; return counts only.

    `folders`: each partnership's local folder (`source_folder`); files there that no load
    recorded count as arrived but not loaded (`failed`). Without it only recorded files count.
    """
    rule = cfg.returns
    if rule is None:
        return {"checked": False}
    rf, rx = wh.return_files.c, wh.return_expectations
    codes = list(cfg.partnerships)
    with engine.connect() as conn:
        files = conn.execute(
            select(rf.partnership_code, rf.return_date, rf.file_id, rf.status, rf.file_name, rf.received_at, rf.sha256)
            .where(rf.partnership_code.in_(codes))
        ).all()
    by_code: dict[str, list[tuple[date, int]]] = {code: [] for code in codes}
    failed: dict[str, list[Arrival]] = {code: [] for code in codes}
    recorded: dict[str, set[str]] = {code: set() for code in codes}
    names: dict[str, set[str]] = {code: set() for code in codes}
    for code, d, fid, status, name, received_at, sha in files:
        recorded[code].add(sha)
        names[code].add(name)
        if d is None:
            continue
        if status == "failed":
            failed[code].append(Arrival(d, fid, name, _as_date(received_at)))
        else:
            by_code[code].append((d, fid))
    for code, folder in (folders or {}).items():
        if code not in by_code:
            continue
        loaded = frozenset(window_of(rule, d) for d, _ in by_code[code])
        failed[code] += unrecorded_arrivals(Path(folder), recorded[code], as_of,
                                            lambda day, _loaded=loaded: window_of(rule, day) not in _loaded,
                                            max_bytes=cfg.limits.max_file_bytes, recorded_names=names[code])
    rows = [{"partnership_code": code, "as_of_date": as_of, **r}
            for code in codes for r in judge(rule, by_code[code], as_of, failed[code])]
    now = clock()
    notices = []
    with engine.begin() as conn:
        conn.execute(rx.delete().where(rx.c.as_of_date == as_of, rx.c.partnership_code.in_(codes)))
        if rows:
            conn.execute(insert(rx), rows)
        for r in rows:
            if r["status"] in FLAGS and (r["status"] != FAILED or as_of > r["due_date"]):
                stored = _notice(conn, cfg, r, rule, Path(out_dir), now, failed[r["partnership_code"]])
                if stored.new:
                    notices.append(stored.bulletin_id)
    counts = Counter(r["status"] for r in rows)
    return {"checked": True, "as_of": as_of.isoformat(), **{s: counts.get(s, 0) for s in STATUSES},
            "new_notices": notices}


def _d(day: date) -> str:
    return f"{day:%d %B %Y}"


def _failed_lines(p: Partnership, row: dict, rule: ReturnsRule, period: str, arrivals: list[Arrival]) -> list[str]:
    """What the notice of a return that arrived but was not loaded says: when, which files (their
    safe names), and where to read why (never an error text: a reader's message may quote a cell)."""
    lo, hi = window(rule, row["period_end"])
    mine = sorted((a for a in arrivals if lo <= a.return_date < hi and a.return_date <= row["as_of_date"]),
                  key=lambda a: (a.return_date, a.file_name))
    first = mine[0] if mine else None
    arrived = f" arrived on {_d(first.arrived_on)}" if first is not None and first.arrived_on else " arrived"
    recorded = [a for a in mine if a.recorded]
    unrecorded = [a for a in mine if not a.recorded]
    lines = [f"The return from {p.name} for the {period} {_d(row['period_start'])} to {_d(row['period_end'])}, "
             f"dated {_d(row['received_date'])},{arrived} but could not be loaded. It is not missing, but no "
             f"return for the {period} has been loaded, and it was due on {_d(row['due_date'])}."]
    if mine:
        names = ", ".join(a.file_name for a in mine[:5]) + (f" and {len(mine) - 5} more" if len(mine) > 5 else "")
        lines.append(f"File{'s' if len(mine) != 1 else ''} received: {names}.")
    if recorded:
        lines.append(f"Why each file could not be loaded is in {p.name}'s data quality report for the return of "
                     f"{_d(recorded[0].return_date)} (sent to the partnership's data contact; also table "
                     "return_files, column error). The partnership needs to send a corrected return.")
    if unrecorded:
        many = len(unrecorded) != 1
        lines.append(f"{len(unrecorded)} file{'s are' if many else ' is'} in the partnership's folder but no load "
                     f"recorded {'them' if many else 'it'}: the partnership's load failed before it could (see the failure "
                     f"alert and the Airflow log of partnership_returns.ingest for {p.code}). Once that is put "
                     "right the next run loads them; the partnership need not send them again.")
    return lines


def _notice(conn, cfg: Config, row: dict, rule: ReturnsRule, out_dir: Path, now: datetime,
            arrivals: list[Arrival] = ()):
    p = cfg.partnership(row["partnership_code"])
    period = "month" if rule.frequency == "monthly" else "quarter"
    end = row["period_end"]
    if row["status"] == MISSING:
        subject = f"Return missing: {p.name}, {period} ending {end:%d %B %Y}"
        lines = [f"No return from {p.name} for the {period} {row['period_start']:%d %B %Y} to {end:%d %B %Y} "
                 f"had been received by its due date, {row['due_date']:%d %B %Y}."]
    elif row["status"] == FAILED:
        subject = f"Return not loaded: {p.name}, {period} ending {end:%d %B %Y}"
        lines = _failed_lines(p, row, rule, period, list(arrivals))
    else:
        days = (row["received_date"] - row["due_date"]).days
        subject = f"Return late: {p.name}, {period} ending {end:%d %B %Y}"
        lines = [f"The return from {p.name} for the {period} {row['period_start']:%d %B %Y} to {end:%d %B %Y} "
                 f"was due on {row['due_date']:%d %B %Y} and is dated {row['received_date']:%d %B %Y}: "
                 f"{days} day{'s' if days != 1 else ''} late."]
    lines.append(f"Returns are due {rule.due_days_after_period_end} days after the end of each {period} "
                 "(config: returns). This notice is sent once; the table return_expectations has the "
                 "state as of each run.")
    context = {"subject": subject, "lines": lines, "contact": ", ".join(p.data_contact) or "none configured",
               "status": row["status"]}
    html = templates().get_template("return_notice.html.j2").render(context)
    text = templates().get_template("return_notice.txt.j2").render(context)
    return store_feedback(conn, kind=RETURNS, code=p.code, period_start=end, period_end=end, subject=subject,
                          html=html, text=text, folder=out_dir / p.code, stem=f"{end.isoformat()}_{row['status']}",
                          now=now, unless_subject_exists=True)
